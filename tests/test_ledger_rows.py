"""The ledger's rows, one shard's, against the same scores written out the slow way:
several backtest windows, an interval bound missing, a series the run did not forecast,
and forecasts whose times have not arrived yet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lstm_worker.data.contract import InputSpec
from lstm_worker.data.table import SeriesTable
from lstm_worker.metrics import mase_scale
from lstm_worker.shard.ledger import ledger_table

SEASON, H = 4, 6
RNG = np.random.default_rng(3)


def _series(n: int) -> tuple[np.ndarray, np.ndarray]:
    times = pd.date_range("2026-01-01", periods=n, freq="D").to_numpy()
    return times, 10 + np.sin(np.arange(n)) + RNG.random(n)


def _previous_run(tmp_path, series: dict[str, tuple[np.ndarray, np.ndarray]], cutoff: int):
    """A run that forecast ``H`` steps past ``cutoff`` and backtested two windows."""
    forecasts, backtest = [], []
    for series_id, (times, values) in series.items():
        future = pd.date_range(times[cutoff - 1], periods=H + 1, freq="D")[1:]
        y_hat = values[cutoff - 1] + RNG.normal(size=H)
        lo, hi = y_hat - 1.0, y_hat + 1.0
        lo[2] = np.nan  # an interval the run could not give
        forecasts.append(
            pd.DataFrame(
                {"unique_id": series_id, "ds": future, "y_hat": y_hat, "y_lo_80": lo}
                | {"y_hi_80": hi, "cutoff": times[cutoff - 1]}
            )
        )
        for window in (0, 1):
            cut = cutoff - H * (window + 1)
            backtest.append(
                pd.DataFrame(
                    {"unique_id": series_id, "ds": times[cut : cut + H]}
                    | {"y": values[cut : cut + H], "y_hat": values[cut : cut + H] + 0.5}
                    | {"window": window, "cutoff": times[cut - 1]}
                )
            )
    run = tmp_path / "previous"
    run.mkdir()
    pd.concat(forecasts).to_parquet(run / "forecasts.parquet", index=False)
    pd.concat(backtest).to_parquet(run / "backtest.parquet", index=False)
    return run


def _by_hand(run, table: SeriesTable) -> pd.DataFrame:
    forecasts = pd.read_parquet(run / "forecasts.parquet")
    backtest = pd.read_parquet(run / "backtest.parquet")
    rows = []
    for p, series_id in enumerate(table.ids):
        times, values = table.times[p], table.values[p]
        mine = forecasts[forecasts["unique_id"] == series_id].reset_index(drop=True)
        cutoff = mine["cutoff"].iloc[0]
        scale = mase_scale(values[times <= cutoff], SEASON)
        realised = [(step, row) for step, row in enumerate(mine.itertuples(), 1) if row.ds in times]
        steps = [step for step, _ in realised]
        smapes, mases = [], []  # what each backtest window promised over the realised steps
        for _, window in backtest[backtest["unique_id"] == series_id].groupby("window"):
            bt = window.iloc[[step - 1 for step in steps]]
            err = np.abs(bt["y"] - bt["y_hat"]).to_numpy()
            smapes.append(np.mean(200 * err / (np.abs(bt["y"]) + np.abs(bt["y_hat"])).to_numpy()))
            insample = values[times <= bt["cutoff"].iloc[0]]
            mases.append(np.mean(err) / mase_scale(insample, SEASON))
        for step, row in realised:
            y = values[list(times).index(row.ds)]
            rows.append(
                {
                    "unique_id": series_id,
                    "step": step,
                    "y": y,
                    "error": y - row.y_hat,
                    "ape": 200 * abs(y - row.y_hat) / (abs(y) + abs(row.y_hat)),
                    "scaled_error": abs(y - row.y_hat) / scale,
                    "hit_80": None if np.isnan(row.y_lo_80) else row.y_lo_80 <= y <= row.y_hi_80,
                    "backtest_smape": np.mean(smapes),
                    "backtest_mase": np.mean(mases),
                }
            )
    return pd.DataFrame(rows)


def test_the_ledger_rows_equal_the_scores_written_out_by_hand(tmp_path):
    full = {"a": _series(40), "b": _series(52)}
    run = _previous_run(tmp_path, full | {"gone": _series(40)}, cutoff=30)
    arrived = {"a": 34, "b": 52}  # a: 4 of the 6 forecast steps have arrived; b: all 6
    table = SeriesTable(
        ids=["a", "b"],
        times=[full[s][0][: arrived[s]] for s in ("a", "b")],
        values=[full[s][1][: arrived[s]] for s in ("a", "b")],
        freq=pd.offsets.Day(),
        schema=pa.schema([("unique_id", pa.string()), ("ds", pa.timestamp("us"))]),
        notes=["", ""],
        filled=[0, 0],
        cleaning={},
    )
    spec = InputSpec(path=str(tmp_path / "unused.parquet"))
    got = ledger_table(table, str(run), "run-1", spec, SEASON).to_pandas()
    want = _by_hand(run, table)
    assert got["run"].unique().tolist() == ["run-1"]
    assert got["unique_id"].tolist() == want["unique_id"].tolist()  # "gone" is not ours
    assert got["unique_id"].value_counts().to_dict() == {"a": 4, "b": 6}  # a's 5, 6 to come
    for column in ("step", "y", "error", "ape", "scaled_error", "backtest_smape", "backtest_mase"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-12, err_msg=column)
    assert got["hit_80"].isna().tolist() == want["hit_80"].isna().tolist()
    assert got["hit_80"].dropna().tolist() == want["hit_80"].dropna().tolist()


def test_nothing_arrived_yet_is_an_empty_ledger_with_its_columns(tmp_path):
    times, values = _series(40)
    run = _previous_run(tmp_path, {"a": (times, values)}, cutoff=40)
    table = SeriesTable(["a"], [times], [values], pd.offsets.Day(), pa.schema([]), [""], [0], {})
    got = ledger_table(table, str(run), "run-1", InputSpec(path="x.parquet"), SEASON)
    assert got.num_rows == 0
    assert "hit_80" in got.column_names and "backtest_mase" in got.column_names


def test_a_run_without_backtest_rows_promises_nothing(tmp_path):
    times, values = _series(40)
    run = _previous_run(tmp_path, {"a": (times, values)}, cutoff=30)
    pq.write_table(pq.read_table(run / "backtest.parquet").slice(0, 0), run / "backtest.parquet")
    table = SeriesTable(["a"], [times], [values], pd.offsets.Day(), pa.schema([]), [""], [0], {})
    got = ledger_table(table, str(run), "run-1", InputSpec(path="x.parquet"), SEASON).to_pandas()
    assert len(got) == 6 and got["backtest_smape"].isna().all()
