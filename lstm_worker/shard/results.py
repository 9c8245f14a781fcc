"""One shard's chosen results as Arrow tables: the schemas of the Parquet outputs.

    forecasts   id, time, y_hat, y_lo_L, y_hi_L, y_hat_lstm, y_hat_table,   per forecast
                y_hat_series, cutoff                                     series and step
    backtest    id, time, target, y_hat, y_hat_lstm, window, cutoff   per series, window, step
    candidates  id, model, setting, window, metrics       per series, candidate and window
    metrics     id, status, reason, ..., shard            one row per series, whatever happened

A forecast series is one whose status is ``ok`` (an LSTM, or a mean of several, mixed with
the table model's at ``table_share`` and combined with the statistical forecast at
``lstm_weight``; ``y_hat_lstm`` is the LSTMs' own, before that combination, and
``y_hat_table`` and ``y_hat_series`` its two parts where it has a table forecast) or
``fallback`` (a baseline; ``model`` says which). ``attempts`` counts trainings,
``filled`` the points the input cleaning filled. Window 0 is the most recent backtest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lstm_worker import WorkerConfig
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.layout import BACKTEST, CANDIDATES, FORECASTS, METRICS_FILE
from lstm_worker.data.table import SeriesTable, future_times
from lstm_worker.metrics import METRICS
from lstm_worker.names import FORECAST_STATUSES, Status

if TYPE_CHECKING:  # select loads torch, which the driver does without
    from lstm_worker.shard.select import Choice

    _Rows = Sequence[tuple[int, Choice]]  # (position in the table, its choice)

_METRIC_COLUMNS = [f"{prefix}{m}" for prefix in ("", "naive_", "snaive_") for m in METRICS]
_INPUT_COLUMNS = (
    "lookback",
    "skip",
    "val_size",
    "deseasonalised",
    "calendar",
    "init",
    "init_reason",
)  # lstm_worker.result.view_details
METRICS_SCHEMA = {  # metrics.parquet after the id column
    "status": pa.string(),
    "reason": pa.string(),
    "attempts": pa.int64(),
    "model": pa.string(),
    "lstm_weight": pa.float64(),
    "table_share": pa.float64(),
    "setting": pa.string(),
    "n_points": pa.int64(),
    "filled": pa.int64(),
    "lookback": pa.int64(),
    "skip": pa.string(),
    "val_size": pa.int64(),
    "deseasonalised": pa.int64(),
    "calendar": pa.string(),
    "init": pa.string(),
    "init_reason": pa.string(),
    **{name: pa.float64() for name in _METRIC_COLUMNS},
    "epochs": pa.int64(),
    "train_seconds": pa.float64(),
    "forecast_seconds": pa.float64(),
    "device": pa.string(),
    "gpu_id": pa.string(),
    "node_id": pa.string(),
    "shard": pa.int64(),
}


def shard_tables(
    spec: InputSpec,
    table: SeriesTable,
    shard_index: int,
    choices: list[Choice],
    cfg: WorkerConfig,
) -> dict[str, pa.Table]:
    """The outputs of one finished shard; ``table`` and ``choices`` hold its series."""
    return _tables(spec, table, list(enumerate(choices)), shard_index, cfg, table.schema)


def _tables(
    spec: InputSpec,
    table: SeriesTable | None,
    rows: _Rows,
    shard_index: int,
    cfg: WorkerConfig,
    schema: pa.Schema,
) -> dict[str, pa.Table]:
    """The four outputs of ``rows`` (position in ``table``, choice); ``schema``: the
    input's, whose id and time types the outputs keep."""
    return {
        FORECASTS: _forecasts_table(spec, table, rows, cfg.forecast.levels, schema),
        BACKTEST: _backtest_table(spec, table, rows, cfg, schema),
        CANDIDATES: _candidates_table(spec, table, rows, schema),
        METRICS_FILE: _metrics_table(spec, table, shard_index, rows, cfg.forecast.levels, schema),
    }


def failed_shard_tables(
    spec: InputSpec,
    ids: pa.Array,
    reason: str,
    attempts: int,
    shard_index: int,
    cfg: WorkerConfig,
    schema: pa.Schema,
) -> dict[str, pa.Table]:
    """The outputs of a shard whose task failed: every series ``failed`` with ``reason``,
    no forecast; ``schema``: the input's, so the parts' schemas match the others'."""
    tables = _tables(spec, None, [], shard_index, cfg, schema)
    n, kinds = len(ids), _metrics_schema(cfg.forecast.levels)
    columns = {name: pa.nulls(n, kind) for name, kind in kinds.items()}
    columns.update(
        status=pa.array([Status.FAILED.value] * n, pa.string()),
        reason=pa.array([reason] * n, pa.string()),
        attempts=pa.array([attempts] * n, pa.int64()),
        shard=pa.array([shard_index] * n, pa.int64()),
    )
    tables[METRICS_FILE] = pa.table({spec.id_col: ids.cast(schema.field(0).type), **columns})
    return tables


def _metrics_schema(levels: list[int]) -> dict[str, pa.DataType]:
    return {**METRICS_SCHEMA, **{f"coverage_{level}": pa.float64() for level in levels}}


def _time_array(times: list[np.ndarray], schema: pa.Schema) -> pa.Array:
    kind = schema.field(1).type
    kind = pa.timestamp("ns") if pa.types.is_date(kind) else kind
    if not times:
        return pa.array([], type=kind)
    return pa.array(np.concatenate(times)).cast(kind)


def _floats(parts: list[np.ndarray]) -> pa.Array:
    return pa.array(np.concatenate(parts) if parts else [], pa.float64())


def _nullable(parts: list[np.ndarray]) -> pa.Array:
    """Floats with NaN as null: the LSTM's own values, where a series has none."""
    return pa.array(np.concatenate(parts) if parts else [], pa.float64(), from_pandas=True)


def _forecasts_table(
    spec: InputSpec, table: SeriesTable | None, rows: _Rows, levels: list[int], schema: pa.Schema
) -> pa.Table:
    ids, times, y_hat, lstm, cutoffs = [], [], [], [], []
    table_part: list[np.ndarray] = []
    series_part: list[np.ndarray] = []
    bounds: dict[str, list[np.ndarray]] = {
        f"y_{side}_{level}": [] for level in levels for side in ("lo", "hi")
    }
    for position, choice in rows:
        assert table is not None  # only a failed shard, with no rows, has no table
        result = choice.result
        if result.status not in FORECAST_STATUSES:
            continue
        steps, last = len(result.forecast), table.times[position][-1]
        ids.extend([table.ids[position]] * steps)
        times.append(future_times(last, steps, table.freq))
        cutoffs.append(np.full(steps, last))
        y_hat.append(result.forecast)
        own = choice.lstm if choice.lstm_weight is not None else None
        lstm.append(own.forecast if own is not None else np.full(steps, np.nan))
        parts = choice.parts if own is not None else None
        table_part.append(parts[0] if parts is not None else np.full(steps, np.nan))
        series_part.append(parts[1] if parts is not None else np.full(steps, np.nan))
        for level in levels:
            width = choice.widths.get(level, np.full(steps, np.nan))[:steps]
            bounds[f"y_lo_{level}"].append(result.forecast - width)
            bounds[f"y_hi_{level}"].append(result.forecast + width)
    columns = {
        spec.id_col: pa.array(ids, type=schema.field(0).type),
        spec.time_col: _time_array(times, schema),
        "y_hat": _floats(y_hat),
    }
    columns.update({name: _floats(parts) for name, parts in bounds.items()})
    columns["y_hat_lstm"] = _nullable(lstm)
    columns["y_hat_table"] = _nullable(table_part)
    columns["y_hat_series"] = _nullable(series_part)
    columns["cutoff"] = _time_array(cutoffs, schema)
    return pa.table(columns)


def _backtest_table(
    spec: InputSpec, table: SeriesTable | None, rows: _Rows, cfg: WorkerConfig, schema: pa.Schema
) -> pa.Table:
    ids, times, actual, y_hat, lstm, windows, cutoffs = [], [], [], [], [], [], []
    holdout = cfg.forecast.holdout_steps
    for position, choice in rows:
        assert table is not None  # only a failed shard, with no rows, has no table
        result = choice.result
        if result.status not in FORECAST_STATUSES or result.backtest.size == 0:
            continue
        series_times, values = table.times[position], table.values[position]
        own = choice.lstm.backtest if choice.lstm and choice.lstm_weight is not None else None
        for window, (cut, backtest) in enumerate(zip(result.cutoffs, result.backtest, strict=True)):
            ids.extend([table.ids[position]] * holdout)
            times.append(series_times[cut : cut + holdout])
            cutoffs.append(np.full(holdout, series_times[cut - 1]))
            actual.append(values[cut : cut + holdout])
            y_hat.append(backtest)
            lstm.append(own[window] if own is not None else np.full(holdout, np.nan))
            windows.append(np.full(holdout, window))
    return pa.table(
        {
            spec.id_col: pa.array(ids, type=schema.field(0).type),
            spec.time_col: _time_array(times, schema),
            spec.target_col: _floats(actual),
            "y_hat": _floats(y_hat),
            "y_hat_lstm": _nullable(lstm),
            "window": pa.array(np.concatenate(windows) if windows else [], pa.int64()),
            "cutoff": _time_array(cutoffs, schema),
        }
    )


def _candidates_table(
    spec: InputSpec, table: SeriesTable | None, rows: _Rows, schema: pa.Schema
) -> pa.Table:
    columns: dict[str, list[Any]] = {
        name: [] for name in ("id", "model", "setting", "window", *METRICS)
    }
    for position, choice in rows:
        assert table is not None  # only a failed shard, with no rows, has no table
        for label, per_window in choice.candidates:
            model, _, setting = label.partition(":")
            for window, metrics in enumerate(per_window):
                columns["id"].append(table.ids[position])
                columns["model"].append(model)
                columns["setting"].append(setting)
                columns["window"].append(window)
                for name in METRICS:
                    value = metrics.get(name, np.nan)
                    columns[name].append(value if np.isfinite(value) else None)
    out = {spec.id_col: pa.array(columns.pop("id"), type=schema.field(0).type)}
    out.update(
        {
            "model": pa.array(columns.pop("model"), pa.string()),
            "setting": pa.array(columns.pop("setting"), pa.string()),
            "window": pa.array(columns.pop("window"), pa.int64()),
        }
    )
    out.update({name: pa.array(columns[name], pa.float64()) for name in METRICS})
    return pa.table(out)


def _metrics_table(
    spec: InputSpec,
    table: SeriesTable | None,
    shard_index: int,
    rows: _Rows,
    levels: list[int],
    schema: pa.Schema,
) -> pa.Table:
    kinds = _metrics_schema(levels)
    columns: dict[str, list[Any]] = {name: [] for name in kinds}
    ids = []
    for position, choice in rows:
        assert table is not None  # only a failed shard, with no rows, has no table
        result, gpu = choice.result, ",".join(choice.placement.gpu_ids)
        ids.append(table.ids[position])
        columns["status"].append(result.status)
        columns["reason"].append(result.reason)
        columns["attempts"].append(result.attempts)
        columns["model"].append(choice.model)
        columns["lstm_weight"].append(choice.lstm_weight)
        columns["table_share"].append(choice.table_share)
        columns["setting"].append(choice.setting or None)
        columns["n_points"].append(len(table.values[position]))
        columns["filled"].append(table.filled[position])
        for name in _INPUT_COLUMNS:
            columns[name].append(result.inputs.get(name))
        for name in _METRIC_COLUMNS:
            value = result.metrics.get(name, np.nan)
            columns[name].append(value if np.isfinite(value) else None)
        columns["epochs"].append(result.epochs)
        columns["train_seconds"].append(result.train_seconds)
        columns["forecast_seconds"].append(result.forecast_seconds)
        columns["device"].append(f"{result.device} (ray gpu {gpu})" if gpu else result.device)
        columns["gpu_id"].append(gpu or None)
        columns["node_id"].append(choice.placement.node_id)
        columns["shard"].append(shard_index)
        for level in levels:
            columns[f"coverage_{level}"].append(choice.coverage.get(level))
    out = {spec.id_col: pa.array(ids, type=schema.field(0).type)}
    out.update({name: pa.array(columns[name], kind) for name, kind in kinds.items()})
    return pa.table(out)
