"""The numbers of a finished run, computed once for ``runner run``'s closing lines and
for the report page: counts, accuracy against the baselines, devices, time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import ValidationError

from cluster.manifest import Manifest
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
    """The manifest and metrics.parquet (only ``columns`` of it, if given, besides the id)."""
    out = Place(output_dir)
    missing = [name for name in (MANIFEST, METRICS_FILE) if not (out / name).is_file()]
    if missing:
        raise OutputError(
            f"{out}: not a job's output directory (no {' or '.join(missing)}); "
            "give the output.path of a finished `runner run`"
        )
    try:
        manifest = Manifest.model_validate_json((out / MANIFEST).read_text())
        named = manifest.spec["input"]
        id_col, time_col, target_col = named["id_col"], named["time_col"], named["target_col"]
        selected: list[str] | None = None  # every column
        if columns is not None:
            present = set(read_schema(out / METRICS_FILE).names)
            selected = [c for c in (id_col, *columns) if c in present]
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


def summarize(output_dir: str | Path | Place) -> dict:
    """The job's headline numbers: counts, accuracy over ok series, timing, devices."""
    return summarize_outputs(
        load_outputs(output_dir, _SUMMARY_COLUMNS)
    )  # a million rows: only what it needs


def summarize_outputs(outputs: Outputs) -> dict:
    metrics, manifest = outputs.metrics, outputs.manifest
    found = metrics["status"].value_counts().to_dict()
    counts: dict[str, int] = {s: int(found.pop(s, 0)) for s in _STATUSES}
    counts.update({str(s): int(n) for s, n in sorted(found.items())})
    ok = metrics[metrics["status"] == Status.OK]
    accuracy = {}
    for model, prefix in _MODELS.items():
        # the scored values only: a median of none warns (a forecast-only run scores nothing)
        smape = column(ok, f"{prefix}smape").dropna()
        mase = column(ok, f"{prefix}mase").dropna()
        accuracy[model] = {
            "smape_mean": smape.mean(),
            "smape_median": smape.median(),
            "mase_mean": mase.mean(),
            "mase_median": mase.median(),
            "scored": len(smape),
        }
    # Both MASEs share one in-sample scale, so comparing MAE decides it even where MASE is null.
    lstm_mae, snaive_mae = column(ok, "mae"), column(ok, "snaive_mae")
    compared = lstm_mae.notna() & snaive_mae.notna()
    beat = int((lstm_mae[compared] < snaive_mae[compared]).sum())
    # A series whose trained LSTM lost to a baseline on the backtest fell back: a loss too.
    # (the forecast of an ok series is its LSTM's, combined at the job's LSTM weight)
    lost = metrics[(metrics["status"] == Status.FALLBACK) & (metrics.get("attempts", 0) > 0)]
    compared_total = int(compared.sum()) + len(lost)
    blank = pd.Series(None, index=metrics.index, dtype=object)
    devices, nodes = metrics.get("device", blank).dropna(), metrics.get("node_id", blank)
    gpus: set[tuple[object, str]] = set()  # (node, gpu) pairs: gpu ids are per node
    for node, gpu_ids in zip(nodes, metrics.get("gpu_id", blank), strict=True):
        if isinstance(gpu_ids, str):
            gpus.update((node, gpu) for gpu in gpu_ids.split(",") if gpu)
    return {
        "name": manifest.name,
        "output": str(outputs.path),
        "series": len(metrics),
        "counts": counts,
        "wall_seconds": manifest.wall_seconds,
        "series_per_second": manifest.series_per_second,
        "accuracy": accuracy,
        "beat_snaive": beat / compared_total if compared_total else float("nan"),
        "beat_snaive_of": compared_total,
        "devices": sorted({str(d).split(" (")[0] for d in devices} - {""}),  # "": never trained
        "nodes": int(nodes.dropna().nunique()),
        "gpus": len(gpus),
        "ledger": manifest.ledger,
        "lstm_weight": manifest.lstm_weight,
        "table_share": manifest.table_share,
    }


def fmt(value: float | None, digits: int) -> str:
    """A number as the report and the CLI print it; missing or undefined is 'n/a'."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_share(share: float) -> str:
    return "n/a" if not np.isfinite(share) else f"{share:.0%}"


def _counts_text(summary: dict) -> str:
    return ", ".join(f"{n} {status}" for status, n in summary["counts"].items())


def weight_text(weight: float | None, share: float | None = None) -> str:
    """The combination an ok series' forecast is, as the summary and the report say it:
    the LSTM's weight, and the table model's share of the LSTM's forecast."""
    if weight is None:
        text = "LSTM weight n/a"
    elif weight == 1:
        text = "LSTM weight 1 (the LSTM alone)"
    elif weight == 0:
        text = "LSTM weight 0 (the statistical models alone: damped trend, Theta)"
    else:
        rest = 1 - weight
        text = f"LSTM weight {weight:.2f}, the statistical models (damped trend, Theta) {rest:.2f}"
    if share is None or share == 0 or weight == 0:  # the series' own LSTM, or none
        return text
    if share == 1:
        return text + "; the LSTM's is the table model's"
    return text + f"; of the LSTM's, the table model {share:.2f}, the series' own {1 - share:.2f}"


def devices_text(summary: dict) -> str:
    kinds = ", ".join(summary["devices"]) or "unknown"
    nodes = summary["nodes"]
    where = f" on {nodes} node{'s' * (nodes != 1)}" if nodes else ""
    return kinds + where + (f", {summary['gpus']} GPUs" if summary["gpus"] else "")


def summary_lines(summary: dict) -> list[str]:
    """The lines ``runner run`` ends with: counts, accuracy, devices, and the ledger's
    scores when the run scored a previous one."""
    forecast, snaive = summary["accuracy"]["forecast"], summary["accuracy"]["seasonal naive"]
    scores = summary.get("ledger")
    ledger = (
        [
            f"ledger (run {scores['run']}'s forecasts, {scores['series']} series, "
            f"{scores['steps']} steps): realised sMAPE {fmt(scores['smape'], 2)} MASE "
            f"{fmt(scores['mase'], 3)} | its backtest promised sMAPE "
            f"{fmt(scores['backtest_smape'], 2)} MASE {fmt(scores['backtest_mase'], 3)} | "
            f"{scores['jumped']} series jumped"
        ]
        if scores
        else []
    )
    return [
        f"series: {_counts_text(summary)} in {fmt(summary['wall_seconds'], 1)}s "
        f"({fmt(summary['series_per_second'], 1)} series/s)",
        f"accuracy (backtest, mean): forecast sMAPE {fmt(forecast['smape_mean'], 2)} "
        f"MASE {fmt(forecast['mase_mean'], 3)} | seasonal naive sMAPE "
        f"{fmt(snaive['smape_mean'], 2)} MASE {fmt(snaive['mase_mean'], 3)} | "
        f"it beat seasonal naive on {fmt_share(summary['beat_snaive'])} of series | "
        f"{weight_text(summary['lstm_weight'], summary.get('table_share'))}",
        f"devices: {devices_text(summary)}",
        *ledger,
    ]
