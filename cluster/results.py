"""One shard's results as Arrow tables: the schemas of the three Parquet outputs.

    forecasts  id, time, y_hat, cutoff          one row per forecast series and future step
    backtest   id, time, target, y_hat, cutoff  one row per forecast series and held-out step
    metrics    id, status, reason, ... shard    one row per series, whatever happened

A forecast series is one whose status is ``ok`` (the LSTM) or ``fallback`` (seasonal
naive, ``model`` says which). ``attempts`` counts trainings, ``filled`` the points the
input cleaning filled.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cluster.dispatch import ShardOutcome
from cluster.output import BACKTEST, FORECASTS, METRICS_FILE
from cluster.plan import Shard
from cluster.spec import JobSpec
from cluster.table import SeriesTable, future_times
from lstm_worker.metrics import METRICS

_METRIC_COLUMNS = [f"{prefix}{m}" for prefix in ("", "naive_", "snaive_") for m in METRICS]
_FORECAST_STATUSES = {"ok": "lstm", "fallback": "snaive"}  # status: model that forecast
METRICS_SCHEMA = {  # metrics.parquet after the id column
    "status": pa.string(), "reason": pa.string(), "attempts": pa.int64(),
    "model": pa.string(), "n_points": pa.int64(), "filled": pa.int64(),
    **{name: pa.float64() for name in _METRIC_COLUMNS},
    "epochs": pa.int64(), "train_seconds": pa.float64(), "device": pa.string(),
    "gpu_id": pa.string(), "node_id": pa.string(), "shard": pa.int64(),
}


def shard_tables(
    spec: JobSpec, table: SeriesTable, shard: Shard, outcome: ShardOutcome
) -> dict[str, pa.Table]:
    """The forecasts, backtest and metrics rows of one finished shard."""
    ordered = [(shard, outcome)]
    return {
        FORECASTS: _forecasts_table(spec, table, ordered),
        BACKTEST: _backtest_table(spec, table, ordered),
        METRICS_FILE: _metrics_table(spec, table, ordered),
    }


def _time_array(times: list[np.ndarray], table: SeriesTable) -> pa.Array:
    kind = pa.timestamp("ns") if pa.types.is_date(table.time_type) else table.time_type
    if not times:
        return pa.array([], type=kind)
    return pa.array(np.concatenate(times)).cast(kind)


def _forecasts_table(spec: JobSpec, table: SeriesTable, ordered) -> pa.Table:
    ids, times, y_hat, cutoffs = [], [], [], []
    for shard, outcome in ordered:
        for position, result in zip(range(shard.start, shard.stop), outcome.results):
            if result.status not in _FORECAST_STATUSES:
                continue
            last = table.times[position][-1]
            ids.extend([table.ids[position]] * len(result.forecast))
            times.append(future_times(last, len(result.forecast), table.freq))
            cutoffs.append(np.full(len(result.forecast), last))
            y_hat.append(result.forecast)
    return pa.table({
        spec.input.id_col: pa.array(ids, type=table.id_type),
        spec.input.time_col: _time_array(times, table),
        "y_hat": pa.array(np.concatenate(y_hat) if y_hat else [], pa.float64()),
        "cutoff": _time_array(cutoffs, table),
    })


def _backtest_table(spec: JobSpec, table: SeriesTable, ordered) -> pa.Table:
    ids, times, actual, y_hat, cutoffs = [], [], [], [], []
    for shard, outcome in ordered:
        for position, result in zip(range(shard.start, shard.stop), outcome.results):
            steps = len(result.backtest)
            if result.status not in _FORECAST_STATUSES or steps == 0:
                continue
            series_times = table.times[position]
            ids.extend([table.ids[position]] * steps)
            times.append(series_times[-steps:])
            cutoffs.append(np.full(steps, series_times[-steps - 1]))
            actual.append(table.values[position][-steps:])
            y_hat.append(result.backtest)
    return pa.table({
        spec.input.id_col: pa.array(ids, type=table.id_type),
        spec.input.time_col: _time_array(times, table),
        spec.input.target_col: pa.array(np.concatenate(actual) if actual else [], pa.float64()),
        "y_hat": pa.array(np.concatenate(y_hat) if y_hat else [], pa.float64()),
        "cutoff": _time_array(cutoffs, table),
    })


def _metrics_table(spec: JobSpec, table: SeriesTable, ordered) -> pa.Table:
    rows: dict[str, list] = {name: [] for name in METRICS_SCHEMA}
    ids = []
    for shard, outcome in ordered:
        gpu = ",".join(outcome.gpu_ids)
        for position, result in zip(range(shard.start, shard.stop), outcome.results):
            ids.append(table.ids[position])
            rows["status"].append(result.status)
            rows["reason"].append(result.reason)
            rows["attempts"].append(result.attempts)
            rows["model"].append(_FORECAST_STATUSES.get(result.status))
            rows["n_points"].append(len(table.values[position]))
            rows["filled"].append(table.filled[position])
            for name in _METRIC_COLUMNS:
                value = result.metrics.get(name, np.nan)
                rows[name].append(value if np.isfinite(value) else None)
            rows["epochs"].append(result.epochs)
            rows["train_seconds"].append(result.train_seconds)
            rows["device"].append(f"{result.device} (ray gpu {gpu})" if gpu else result.device)
            rows["gpu_id"].append(gpu or None)
            rows["node_id"].append(outcome.node_id)
            rows["shard"].append(shard.index)
    columns = {spec.input.id_col: pa.array(ids, type=table.id_type)}
    columns.update({name: pa.array(rows[name], kind) for name, kind in METRICS_SCHEMA.items()})
    return pa.table(columns)
