"""What drives the cluster: the CLI, the job spec, reading, planning, Ray dispatch, output."""

from cluster.errors import (FailureLimitError, InputError, OutputError, ResourceError,
                            RunnerError, SpecError)
from cluster.job import JobSummary, run_job, validate_job
from cluster.spec import JobSpec, load_spec

__all__ = [
    "FailureLimitError",
    "InputError",
    "JobSpec",
    "JobSummary",
    "OutputError",
    "ResourceError",
    "RunnerError",
    "SpecError",
    "load_spec",
    "run_job",
    "validate_job",
]
