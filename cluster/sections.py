"""The job spec's model: the driver's own sections (the resources a task asks of Ray, where
the outputs go, the ledger and the tracking) beside ``lstm_worker``'s model, training,
forecast and table sections (``lstm_worker.config``), all together in ``JobSpec``, which
``cluster.spec`` loads and checks and ``cluster.resolve`` resolves."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import Field, field_validator

from lstm_worker.config import ForecastConfig, ModelConfig, Strict, TableConfig, TrainConfig
from lstm_worker.data.contract import InputSpec
from lstm_worker.errors import SpecError
from lstm_worker.search import SearchSpec, Setting

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


class JobSpec(Strict):
    name: str = Field("job", description="a label for the run, kept in manifest.json")
    input: InputSpec
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    forecast: ForecastConfig = ForecastConfig()
    table: TableConfig = TableConfig()
    resources: ResourcesSpec = ResourcesSpec()
    output: OutputSpec
    ledger: LedgerSpec = LedgerSpec()
    search: SearchSpec | None = None
    track: TrackSpec | None = None
    seed: int = Field(
        0, description="seed of everything random; each series' seed derives from it and its id"
    )

    def for_setting(self, setting: Setting) -> JobSpec:
        """This spec with one search setting's model and training fields applied."""
        if not setting.overrides:
            return self
        raw = self.model_dump()  # a fresh dict: this spec stays as it is
        for key, value in setting.overrides.items():
            apply_override(raw, key, value, source="search.grid")
        return JobSpec.model_validate(raw)

    def digest(self) -> str:
        """A hash of everything that changes results (not where they are written)."""
        payload = self.model_dump(
            mode="json", exclude={"output": True, "resources": True, "track": True}
        )
        payload["series_per_task"] = self.resources.series_per_task
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def apply_override(raw: dict, key: str, value: Any, source: str) -> None:
    """Set ``key`` (dotted: ``train.lr``) in a spec's mapping to ``value``."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SpecError(f"{source}: --set {key}: {part!r} is not a section")
        node = child
    node[leaf] = value
