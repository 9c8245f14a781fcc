"""The driver's own sections of the job spec: the resources a task asks of Ray, where the
outputs go, the ledger and the tracking. The model, training, forecast and table sections
are ``lstm_worker``'s (``lstm_worker.config``); ``cluster.spec`` puts them all together."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from lstm_worker.config import Strict

_BUILTIN_RESOURCES = {"CPU", "GPU", "memory", "object_store_memory"}
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"!?(in\({_LABEL}(, ?{_LABEL})*\)|{_LABEL})")


class ResourcesSpec(Strict):
    """What each task asks of Ray, applied with ``.options()``."""

    num_cpus: float = Field(1.0, gt=0.0, description="CPUs per task; torch uses this many threads")
    num_gpus: float = Field(0.0, ge=0.0, description="fractions share one GPU between tasks")
    series_per_task: int = Field(
        64, ge=1, description="series per task (the K one task trains at once)"
    )
    max_retries: int = Field(3, ge=0, description="retries of a task whose worker died")
    max_in_flight: int | None = Field(
        None, ge=1, description="tasks submitted at once; null: twice the tasks that fit"
    )
    memory: int | None = Field(None, gt=0, description="bytes of RAM reserved per task")
    task_timeout: float | None = Field(
        None,
        gt=0.0,
        description="seconds a task may run; past it, its worker ends and Ray retries it "
        "as after a crash (max_retries), then its series fail with the reason; null: none",
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom resources per task, e.g. {'accelerator_type:A100': 0.001}",
    )
    label_selector: dict[str, str] = Field(
        default_factory=dict, description="node labels a task needs, e.g. {'pool': 'gpu'}"
    )

    @field_validator("resources")
    @classmethod
    def _custom_only(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if name in _BUILTIN_RESOURCES:
                raise ValueError(f"{name!r} is set with num_cpus, num_gpus or memory")
            if amount <= 0:
                raise ValueError(f"{name!r}: an amount must be > 0 (got {amount})")
        return value

    @field_validator("label_selector")
    @classmethod
    def _selector_syntax(cls, value: dict[str, str]) -> dict[str, str]:
        for key, selector in value.items():
            if not _SELECTOR.fullmatch(selector):
                raise ValueError(
                    f"{key}: {selector!r} is not a Ray label selector "
                    "('v', '!v', 'in(a,b)' or '!in(a,b)')"
                )
        return value


class OutputSpec(Strict):
    path: str = Field(
        description="directory for every output; created if needed. {date} (UTC day) and "
        "{run_id} name the night: runs/{date}"
    )
    max_failed_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="exit 1 (outputs still written) when more than this share of the series "
        "failed; null: a finished job exits 0 whatever failed",
    )


class LedgerSpec(Strict):
    """The forecast ledger: a previous run's forecasts scored against the actuals that
    arrived since (ledger.parquet)."""

    previous: str | None = Field(
        None,
        description="a previous run's output.path whose forecasts this run scores, or "
        "'latest' (the newest finished run of this job under the runs root); null: none",
    )
    jump: float = Field(
        2.0,
        gt=1.0,
        description="a series' error jumped when its realised MASE exceeds this many times "
        "what its backtest promised over the same steps (the report lists them)",
    )


class TrackSpec(Strict):
    """Where the driver logs the run (``pip install 'runner[mlflow]'``): one MLflow run per
    job, with the resolved spec, the summary's accuracy, counts and timings, and
    manifest.json and report.html. A tracking server that fails fails nothing."""

    mlflow_uri: str = Field(
        description="the MLflow tracking URI: a server (http://host:5000) or a local store"
    )
    experiment: str = Field("runner", description="the MLflow experiment the run goes into")
