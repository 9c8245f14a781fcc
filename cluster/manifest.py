"""manifest.json: what a run is, how it was resolved, how far it got. One typed model that
the job writes and the report, the resume and the output guard read."""

from __future__ import annotations

import importlib.metadata
import platform
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from cluster.resolve import Resolved
from lstm_worker.data.layout import MANIFEST, write_json
from lstm_worker.data.place import Place
from lstm_worker.errors import OutputError


class RunStatus(StrEnum):
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # Ctrl-C: the finished shards are kept, a rerun resumes
    FINISHED = "finished"


class Manifest(BaseModel):
    """Written when the run starts, when a global choice is made, and when it ends."""

    model_config = ConfigDict(extra="ignore")  # a manifest of an older version still reads

    name: str
    run_id: str = ""  # when the run started, and a random suffix; kept by a resume
    spec_digest: str  # with input_fingerprint: the job's key, which a resume must match
    input_fingerprint: str
    status: RunStatus = RunStatus.RUNNING
    spec: dict[str, Any]  # the spec as given, with --set overrides applied
    input_read: str  # the table the tasks read: input.path, or its prepared copy
    input_prepared: dict[str, Any] | None = None  # the re-partition's report, if this run made it
    freq: str
    season_length: int
    resolved: Resolved  # what the spec left to the data, and why
    output_template: str | None = None  # output.path as written, when it names the night
    warm_started_from: str | None = None  # the run whose models train.warm_start began from
    forecast_from: str | None = None  # the run whose models forecast.from_models used
    ledger_of: str | None = Field(  # the run whose forecasts the ledger scored
        None,
        validation_alias=AliasChoices("ledger_of", "scored_run"),  # read under its old name too
    )
    links: dict[str, str] = {}  # how each 'latest' resolved
    ledger: dict[str, Any] | None = Field(  # the night's ledger scores (cluster.ledger)
        None, validation_alias=AliasChoices("ledger", "realised")
    )
    series: int
    rows: int
    shards: int
    shards_resumed: int = 0
    settings: list[str]
    tasks: int = 0
    job_chosen: bool = False  # what is chosen for the whole table is (the two below)
    global_setting: str | None = None  # search.select: global, once chosen
    global_setting_index: int | None = None
    lstm_weight: float | None = None  # forecast.lstm_weight, as given or chosen
    table_share: float | None = None  # table.share, as given or chosen
    blend_scores: dict[str, float] = {}  # 'share/weight': each pair's mean backtest metric
    interval_quantiles: dict[str, list[float]] = {}  # level -> per step: the pooled
    # conformal quantiles of scaled residuals each series' intervals are taken from
    interval_pool: int | None = None  # the backtest residual rows (series x windows) pooled
    table_model: dict[str, Any] | None = None  # how the table model trained, or why not
    started_at: str
    versions: dict[str, str]
    interrupted_at: str | None = None
    counts: dict[str, int] = {}
    input_cleaning: dict[str, int] = {}
    failed_fraction: float | None = None
    failure_limit_exceeded: bool = False
    shards_failed: list[int] = []
    finished_at: str | None = None
    wall_seconds: float | None = None
    timings: dict[str, float] = {}
    task_seconds: float | None = None  # the tasks' own run times, summed: cores (GPUs) held
    series_computed: int | None = None
    series_per_second: float | None = None
    outputs: list[str] = []
    tracking: str | None = None  # track: where the run was logged, or why it was not

    @property
    def key(self) -> dict[str, str]:
        return {"spec_digest": self.spec_digest, "input_fingerprint": self.input_fingerprint}

    def save(self, out: Place) -> None:
        write_json(self.model_dump(mode="json"), out / MANIFEST)


def load_manifest(out: Place | Path | str) -> Manifest:
    """The manifest in ``out`` (manifest.json is read here only); an ``OutputError`` naming
    the file when it is missing or does not read."""
    path = Place(out) / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_text())
    except (OSError, ValueError, ValidationError) as error:
        raise OutputError(f"{path}: cannot read the job's manifest: {error}") from None


def record_tracking(out: Place, tracking: str) -> None:
    """Add where the finished run was logged (or why not) to its manifest."""
    manifest = read_manifest(out)
    if manifest is not None:
        manifest.tracking = tracking
        manifest.save(out)


def read_manifest(out: Place | Path | str) -> Manifest | None:
    """The manifest in ``out``, or None if there is none that reads."""
    try:
        return load_manifest(out)
    except OutputError:
        return None


def now() -> str:
    return datetime.now(UTC).isoformat()


def versions() -> dict[str, str]:
    """Python's and the packages' versions that shape a run's results."""
    found = {"python": platform.python_version()}
    for package in ("runner", "torch", "ray", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
