"""The numbers of a finished run, computed once (``summarize``) from its outputs and its
manifest, for ``runner run``'s closing lines, the report page, MLflow and ``Result``:
counts, accuracy against the baselines, interval coverage, devices, time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import ValidationError

from cluster.manifest import Manifest, load_manifest
from lstm_worker.data.layout import MANIFEST, METRICS_FILE
from lstm_worker.data.place import Place, read_schema, read_table
from lstm_worker.errors import OutputError
from lstm_worker.names import Status

_MODELS = {"forecast": "", "naive": "naive_", "seasonal naive": "snaive_"}  # name: prefix
_SUMMARY_COLUMNS = (
    "status",
    "attempts",
    "device",
    "node_id",
    "gpu_id",
    *(prefix + m for prefix in _MODELS.values() for m in ("smape", "mase", "mae")),
)
_COVERAGE = "coverage_"  # metrics.parquet's coverage_L: a series' interval coverage at L%
_STATUSES = (Status.OK, Status.SKIPPED, Status.FAILED)  # always shown, in this order; others follow


@dataclass(frozen=True)
class Outputs:
    path: Place
    manifest: Manifest
    metrics: pd.DataFrame
    id_col: str
    time_col: str
    target_col: str


def load_outputs(output_dir: str | Path | Place, columns: tuple[str, ...] | None = None) -> Outputs:
    """The manifest and metrics.parquet (only ``columns`` of it, if given, besides the id
    and the interval coverage columns)."""
    out = Place(output_dir)
    missing = [name for name in (MANIFEST, METRICS_FILE) if not (out / name).is_file()]
    if missing:
        raise OutputError(
            f"{out}: not a job's output directory (no {' or '.join(missing)}); "
            "give the output.path of a finished `runner run`"
        )
    try:
        manifest = load_manifest(out)
        named = manifest.spec["input"]
        id_col, time_col, target_col = named["id_col"], named["time_col"], named["target_col"]
        selected: list[str] | None = None  # every column
        if columns is not None:
            present = read_schema(out / METRICS_FILE).names
            selected = [c for c in (id_col, *columns) if c in present]
            selected += [c for c in present if c.startswith(_COVERAGE)]
        metrics = read_table(out / METRICS_FILE, columns=selected).to_pandas()
    except (OSError, ValueError, KeyError, TypeError, ValidationError, pa.ArrowException) as error:
        raise OutputError(f"{out}: cannot read the job's outputs: {error}") from None
    if id_col not in metrics.columns or "status" not in metrics.columns:
        raise OutputError(f"{out / METRICS_FILE}: no {id_col!r} or 'status' column")
    return Outputs(out, manifest, metrics, id_col, time_col, target_col)


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A float column, all NaN when an older or newer output lacks it."""
    if name in frame.columns:
        return frame[name].astype("float64")
    return pd.Series(np.nan, index=frame.index)


@dataclass(frozen=True)
class Accuracy:
    """One model's backtest accuracy over the ok series."""

    smape_mean: float
    smape_median: float
    mase_mean: float
    mase_median: float
    scored: int  # the series with a score


@dataclass(frozen=True)
class RunSummary:
    """What ``runner run`` and ``runner forecast`` end with, the report's summary and
    what MLflow logs: one computation, whether or not a report is written."""

    name: str | None
    output: str
    series: int
    counts: dict[str, int]  # series by status: ok, skipped, failed, then any other
    wall_seconds: float | None
    series_per_second: float | None
    accuracy: dict[str, Accuracy]  # forecast, naive, seasonal naive
    beat_snaive: float  # the share of compared series whose forecast beat seasonal naive
    beat_snaive_of: int
    coverage: dict[int, float]  # level -> mean over ok series of their backtest coverage
    devices: list[str]
    nodes: int
    gpus: int
    ledger: dict[str, Any] | None  # the night's ledger scores, when it scored an earlier run
    lstm_weight: float | None
    table_share: float | None
    promised_by: str = ""  # forecast-only: the run whose backtest the accuracy is ("" this)


def summarize(output_dir: str | Path | Place) -> RunSummary:
    """The run's summary. A forecast-only run backtests nothing: its accuracy, its share
    that beat seasonal naive and its coverage are those its stored models promised on
    the backtest of the run that stored them."""
    outputs = load_outputs(output_dir, _SUMMARY_COLUMNS)  # a million rows: only these
    return summary_of(outputs, *backtest_outputs(outputs, _SUMMARY_COLUMNS))


def backtest_outputs(
    outputs: Outputs, columns: tuple[str, ...] | None = None
) -> tuple[Outputs, str]:
    """The outputs whose backtest a run's accuracy is: its own, or, for a forecast-only
    run, those of the run whose stored models it forecast with; and that run's name
    ("" for this one, or when that run cannot be read)."""
    source = outputs.manifest.forecast_from
    if not source:
        return outputs, ""
    try:
        stored = load_outputs(source, columns)
    except OutputError:
        return outputs, ""
    return stored, f"run {stored.manifest.run_id or Place(source).name} ({source})"


def summary_of(
    outputs: Outputs, scored: Outputs | None = None, promised_by: str = ""
) -> RunSummary:
    """The summary of ``outputs``, its accuracy that of ``scored``'s backtest (its own)."""
    scored = scored or outputs
    metrics, manifest = outputs.metrics, outputs.manifest
    found = metrics["status"].value_counts().to_dict()
    counts: dict[str, int] = {s: int(found.pop(s, 0)) for s in _STATUSES}
    counts.update({str(s): int(n) for s, n in sorted(found.items())})
    ok = scored.metrics[scored.metrics["status"] == Status.OK]
    accuracy = {}
    for model, prefix in _MODELS.items():
        # the scored values only: a median of none warns
        smape = column(ok, f"{prefix}smape").dropna()
        mase = column(ok, f"{prefix}mase").dropna()
        accuracy[model] = Accuracy(
            smape.mean(), smape.median(), mase.mean(), mase.median(), len(smape)
        )
    coverage = {
        int(name.removeprefix(_COVERAGE)): float(column(ok, name).mean())
        for name in ok.columns
        if name.startswith(_COVERAGE) and column(ok, name).notna().any()
    }
    beat, compared = _beat_snaive(scored.metrics, ok)
    blank = pd.Series(None, index=metrics.index, dtype=object)
    devices, nodes = metrics.get("device", blank).dropna(), metrics.get("node_id", blank)
    gpus: set[tuple[object, str]] = set()  # (node, gpu) pairs: gpu ids are per node
    for node, gpu_ids in zip(nodes, metrics.get("gpu_id", blank), strict=True):
        if isinstance(gpu_ids, str):
            gpus.update((node, gpu) for gpu in gpu_ids.split(",") if gpu)
    return RunSummary(
        name=manifest.name,
        output=str(outputs.path),
        series=len(metrics),
        counts=counts,
        wall_seconds=manifest.wall_seconds,
        series_per_second=manifest.series_per_second,
        accuracy=accuracy,
        beat_snaive=beat / compared if compared else float("nan"),
        beat_snaive_of=compared,
        coverage=dict(sorted(coverage.items())),
        devices=sorted({str(d).split(" (")[0] for d in devices} - {""}),  # "": never trained
        nodes=int(nodes.dropna().nunique()),
        gpus=len(gpus),
        ledger=manifest.ledger,
        lstm_weight=manifest.lstm_weight,
        table_share=manifest.table_share,
        promised_by=promised_by,
    )


def _beat_snaive(metrics: pd.DataFrame, ok: pd.DataFrame) -> tuple[int, int]:
    """How many series' forecasts beat seasonal naive on the backtest, of how many.
    Both MASEs share one in-sample scale, so comparing MAE decides it even where MASE is
    null. A series whose trained LSTM lost to a baseline fell back: a loss too."""
    lstm_mae, snaive_mae = column(ok, "mae"), column(ok, "snaive_mae")
    compared = lstm_mae.notna() & snaive_mae.notna()
    beat = int((lstm_mae[compared] < snaive_mae[compared]).sum())
    lost = metrics[(metrics["status"] == Status.FALLBACK) & (metrics.get("attempts", 0) > 0)]
    return beat, int(compared.sum()) + len(lost)
