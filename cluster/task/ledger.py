"""The forecast ledger, a shard's part of it: a previous run's forecasts of this shard's
series scored against the actuals that have arrived since.

    accuracy   run, id, time, cutoff, step, y, y_hat, error, ape, scaled_error,
               hit_L..., backtest_smape, backtest_mase     per series and realised step

``error`` is y - y_hat; ``ape`` the step's sMAPE term, 200|e| / (|y| + |y_hat|);
``scaled_error`` |e| over the series' MASE scale on its history up to the cutoff, so
a series' realised sMAPE and MASE are the means of its rows. ``backtest_*`` is what the
previous run's backtest promised for the same series over the same steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from cluster.data.contract import InputSpec
from cluster.data.output import BACKTEST, FORECASTS
from cluster.data.place import Place, read_schema, read_series
from cluster.data.table import SeriesTable
from lstm_worker.metrics import mase_scale


def _keys(times: np.ndarray) -> np.ndarray:
    """Times as int64 keys that match across files (nanoseconds, or the integer step)."""
    if np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ns]").view(np.int64)
    return times.astype(np.int64)


def _ape(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    denom = np.abs(actual) + np.abs(predicted)
    return np.divide(
        200.0 * np.abs(actual - predicted), denom, out=np.zeros_like(denom), where=denom > 0
    )


def ledger_table(
    table: SeriesTable, source: str, run: str, spec: InputSpec, season: int
) -> pa.Table:
    """The ledger rows of ``table``'s series: the forecasts stored in the run at
    ``source`` (run id ``run``) whose times now have actuals in ``table``."""
    id_col, time_col = spec.id_col, spec.time_col
    levels = [
        int(name.removeprefix("y_lo_"))
        for name in read_schema(Place(source) / FORECASTS).names
        if name.startswith("y_lo_")
    ]
    forecasts = read_series(Place(source) / FORECASTS, id_col, table.ids).to_pandas()
    backtest = read_series(Place(source) / BACKTEST, id_col, table.ids).to_pandas()
    backtests = dict(tuple(backtest.groupby(id_col, sort=False))) if len(backtest) else {}
    position = {series_id: p for p, series_id in enumerate(table.ids)}
    frames = []
    for series_id, previous in forecasts.groupby(id_col, sort=False):
        p = position.get(series_id)
        if p is None:
            continue
        times, values = _keys(table.times[p]), table.values[p]
        actual = _at(times, values, _keys(previous[time_col].to_numpy()))
        keep = np.isfinite(actual)
        if not keep.any():
            continue
        steps = np.arange(1, len(previous) + 1)[keep]
        scored = previous[keep].reset_index(drop=True)
        y, y_hat = actual[keep], scored["y_hat"].to_numpy()
        history = values[times <= _keys(scored["cutoff"].to_numpy())[0]]
        scored.insert(0, "run", run)
        scored["step"], scored["y"] = steps, y
        scored["error"], scored["ape"] = y - y_hat, _ape(y, y_hat)
        scored["scaled_error"] = np.abs(y - y_hat) / mase_scale(history, season)
        for level in levels:
            lo, hi = scored.pop(f"y_lo_{level}"), scored.pop(f"y_hi_{level}")
            scored[f"hit_{level}"] = pd.array((lo <= y) & (y <= hi), "boolean")
            scored.loc[lo.isna(), f"hit_{level}"] = pd.NA
        window = backtests.get(series_id)
        promised = _promised(window, set(steps.tolist()), times, values, spec.target_col, season)
        scored["backtest_smape"], scored["backtest_mase"] = promised
        frames.append(scored)
    columns = ["run", id_col, time_col, "cutoff", "step", "y", "y_hat", "error", "ape"]
    columns += ["scaled_error", *(f"hit_{level}" for level in levels)]
    columns += ["backtest_smape", "backtest_mase"]
    if not frames:
        return pa.Table.from_pandas(_typed_empty(forecasts, columns, levels), preserve_index=False)
    return pa.Table.from_pandas(pd.concat(frames, ignore_index=True)[columns], preserve_index=False)


def _at(times: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The values at the ``wanted`` times; NaN where the series has none (yet)."""
    at = np.minimum(np.searchsorted(times, wanted), max(len(times) - 1, 0))
    if not len(times):
        return np.full(len(wanted), np.nan)
    return np.where(times[at] == wanted, values[at], np.nan)


def _promised(
    backtest: pd.DataFrame | None,
    steps: set[int],
    times: np.ndarray,
    values: np.ndarray,
    target_col: str,
    season: int,
) -> tuple[float, float]:
    """The previous backtest's sMAPE and MASE of the series over ``steps`` only, the mean
    over its windows: what that run promised for the horizon steps now realised."""
    smapes, mases = [], []
    for _, window in () if backtest is None else backtest.groupby("window", sort=True):
        kept = np.isin(np.arange(1, len(window) + 1), list(steps))
        if not kept.any():
            continue
        y, y_hat = window[target_col].to_numpy()[kept], window["y_hat"].to_numpy()[kept]
        history = values[times <= _keys(window["cutoff"].to_numpy())[0]]
        smapes.append(float(_ape(y, y_hat).mean()))
        mases.append(float(np.mean(np.abs(y - y_hat))) / mase_scale(history, season))
    finite = [m for m in mases if np.isfinite(m)]
    return (
        float(np.mean(smapes)) if smapes else float("nan"),
        float(np.mean(finite)) if finite else float("nan"),
    )


def _typed_empty(forecasts: pd.DataFrame, columns: list[str], levels: list[int]) -> pd.DataFrame:
    """No rows, with the columns' types (a shard with nothing to score yet)."""
    frame = forecasts.iloc[:0].drop(columns=[c for c in forecasts if str(c).startswith("y_")])
    frame = frame.assign(
        run=pd.Series(dtype="string"),
        step=pd.Series(dtype="int64"),
        **{name: pd.Series(dtype="float64") for name in ("y", "y_hat", "error", "ape")},
        scaled_error=pd.Series(dtype="float64"),
        backtest_smape=pd.Series(dtype="float64"),
        backtest_mase=pd.Series(dtype="float64"),
        **{f"hit_{level}": pd.Series(dtype="boolean") for level in levels},
    )
    return frame[columns]
