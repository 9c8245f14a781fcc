"""runner's one error tree; ``cluster.cli`` maps it to exit codes in one place. It sits
at the bottom of ``lstm_worker`` because the data layer that tasks share with the driver
(``lstm_worker.data``) raises its input and output errors; the driver raises the rest.

    RunnerError             exit 1: a data or runtime problem
    ├── SpecError           exit 2: bad job spec or command line
    ├── InputError          exit 1: the input table cannot be used
    ├── OutputError         exit 1: the output directory cannot be used
    ├── ResourceError       exit 1: the cluster can never give what the spec asks for
    └── FailureLimitError   exit 1: the job finished, but more series failed than
                            output.max_failed_fraction allows (every output is written)

A problem of one series is none of these: it is that series' row in metrics.parquet.
"""

from __future__ import annotations

from lstm_worker.data.place import Place


class RunnerError(Exception):
    exit_code = 1


class SpecError(RunnerError):
    exit_code = 2


class InputError(RunnerError):
    pass


class OutputError(RunnerError):
    pass


class ResourceError(RunnerError):
    pass


class FailureLimitError(RunnerError):
    """Raised after the outputs and the manifest are written, in ``output``. (It names the
    directory, not the job's summary: the error tree is the lowest layer, and imports no
    module that imports it.)"""

    def __init__(self, message: str, output: Place):
        super().__init__(message)
        self.output = output
