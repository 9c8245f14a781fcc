"""What drives the cluster: the CLI, the job spec, reading, planning, Ray dispatch, output.

From Python: ``Job``, ``forecast`` and ``Result`` (``cluster.api``). The job (and with it
torch and ray) loads on first use, so commands that only read a spec or an output
directory start fast.
"""

from typing import Any

from cluster.sections import JobSpec
from cluster.spec import load_spec
from lstm_worker.errors import (
    FailureLimitError,
    InputError,
    OutputError,
    ResourceError,
    RunnerError,
    SpecError,
)

__all__ = [
    "FailureLimitError",
    "InputError",
    "Job",
    "JobSpec",
    "JobSummary",
    "OutputError",
    "ResourceError",
    "Result",
    "RunnerError",
    "SpecError",
    "forecast",
    "load_spec",
    "run_job",
    "validate_job",
]


def __getattr__(name: str) -> Any:  # the job loads ray: only when asked for
    if name in ("Job", "Result", "forecast"):
        from cluster import api

        return getattr(api, name)
    if name in ("JobSummary", "run_job"):
        from cluster import job

        return getattr(job, name)
    if name == "validate_job":
        from cluster import inputs

        return inputs.validate_job
    raise AttributeError(f"module 'cluster' has no attribute {name!r}")
