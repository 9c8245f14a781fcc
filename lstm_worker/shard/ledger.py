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

from lstm_worker.data.contract import InputSpec
from lstm_worker.data.layout import BACKTEST, FORECASTS
from lstm_worker.data.place import Place, read_series
from lstm_worker.data.table import SeriesTable, float_column
from lstm_worker.metrics import mase_scale


def _keys(times: np.ndarray) -> np.ndarray:
    """Times as int64 keys that match across files (nanoseconds, or the integer step)."""
    if np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ns]").view(np.int64)
    return times.astype(np.int64)


def _ape(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    denom = np.abs(actual) + np.abs(predicted)
    ape: np.ndarray = np.divide(
        200.0 * np.abs(actual - predicted), denom, out=np.zeros_like(denom), where=denom > 0
    )
    return ape


def ledger_table(
    table: SeriesTable, source: str, run: str, spec: InputSpec, season: int
) -> pa.Table:
    """The ledger rows of ``table``'s series: the forecasts stored in the run at
    ``source`` (run id ``run``) whose times now have actuals in ``table``. Plain arrays
    per series and one ``take`` of the kept rows: built with pandas a series at a time,
    it took a third of a warm M4 Hourly night's task seconds."""
    id_col, time_col = spec.id_col, spec.time_col
    forecasts = read_series(Place(source) / FORECASTS, id_col, table.ids)
    levels = [int(n.removeprefix("y_lo_")) for n in forecasts.column_names if n.startswith("y_lo_")]
    backtest = _Backtest(read_series(Place(source) / BACKTEST, id_col, table.ids), spec)
    times_of, cutoffs = _times(forecasts, time_col), _times(forecasts, "cutoff")
    position = {series_id: p for p, series_id in enumerate(table.ids)}
    kept, steps, actuals, scales, promised = [], [], [], [], []  # per series
    for series_id, rows in _rows_by_series(forecasts, id_col).items():
        p = position.get(series_id)
        if p is None:
            continue
        times, values = _keys(table.times[p]), table.values[p]
        actual = _at(times, values, times_of[rows])
        keep = np.isfinite(actual)
        if not keep.any():
            continue
        step = np.arange(1, len(rows) + 1)[keep]
        kept.append(rows[keep])
        steps.append(step)
        actuals.append(actual[keep])
        scales.append(mase_scale(values[times <= cutoffs[rows[0]]], season))
        promised.append(backtest.promised(series_id, step, times, values, season))
    columns = ["run", id_col, time_col, "cutoff", "step", "y", "y_hat", "error", "ape"]
    columns += ["scaled_error", *(f"hit_{level}" for level in levels)]
    columns += ["backtest_smape", "backtest_mase"]
    if not kept:
        empty = _typed_empty(forecasts.to_pandas(), columns, levels)
        return pa.Table.from_pandas(empty, preserve_index=False)
    scored = forecasts.take(np.concatenate(kept))
    counts = [len(step) for step in steps]  # each series' scalars repeat over its rows
    y, y_hat = np.concatenate(actuals), float_column(scored, "y_hat")
    out = {
        "run": pa.array([run] * len(y), pa.string()),
        id_col: scored[id_col],
        time_col: scored[time_col],
        "cutoff": scored["cutoff"],
        "step": pa.array(np.concatenate(steps), pa.int64()),
        "y": y,
        "y_hat": y_hat,
        "error": y - y_hat,
        "ape": _ape(y, y_hat),
        "scaled_error": np.abs(y - y_hat) / np.repeat(scales, counts),
    }
    for level in levels:
        lo, hi = (float_column(scored, f"y_{side}_{level}") for side in ("lo", "hi"))
        out[f"hit_{level}"] = pa.array((lo <= y) & (y <= hi), pa.bool_(), mask=np.isnan(lo))
    out["backtest_smape"], out["backtest_mase"] = np.repeat(promised, counts, axis=0).T
    return pa.table({name: out[name] for name in columns})


def _times(frame: pa.Table, name: str) -> np.ndarray:
    """A time column as ``_keys``."""
    return _keys(frame[name].to_numpy())


def _rows_by_series(frame: pa.Table, id_col: str) -> dict[object, np.ndarray]:
    """Each series' row numbers in ``frame``, in file order; series in first-seen order."""
    codes, ids = pd.factorize(frame[id_col].to_pandas())
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))
    return {series_id: order[bounds[i] : bounds[i + 1]] for i, series_id in enumerate(ids)}


def _at(times: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The values at the ``wanted`` times; NaN where the series has none (yet)."""
    at = np.minimum(np.searchsorted(times, wanted), max(len(times) - 1, 0))
    if not len(times):
        return np.full(len(wanted), np.nan)
    return np.where(times[at] == wanted, values[at], np.nan)


class _Backtest:
    """The previous run's backtest rows, as arrays, by series."""

    def __init__(self, frame: pa.Table, spec: InputSpec):
        self.rows = _rows_by_series(frame, spec.id_col) if frame.num_rows else {}
        if self.rows:
            self.window = frame["window"].to_numpy()
            self.y = float_column(frame, spec.target_col)
            self.y_hat = float_column(frame, "y_hat")
            self.cutoff = _times(frame, "cutoff")

    def promised(
        self,
        series_id: object,
        steps: np.ndarray,
        times: np.ndarray,
        values: np.ndarray,
        season: int,
    ) -> tuple[float, float]:
        """The series' backtest sMAPE and MASE over ``steps`` only, the mean over its
        windows: what that run promised for the horizon steps now realised."""
        smapes: list[float] = []
        mases: list[float] = []
        rows = self.rows.get(series_id)
        if rows is None:
            return float("nan"), float("nan")
        for window in np.unique(self.window[rows]):
            own = rows[self.window[rows] == window]  # the window's steps, in order
            own = own[steps[steps <= len(own)] - 1]
            if not len(own):
                continue
            y, y_hat = self.y[own], self.y_hat[own]
            history = values[times <= self.cutoff[own[0]]]
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
