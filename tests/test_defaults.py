"""A spec with only the input, the horizon and the output works on short business tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml

from cluster.job import run_job
from cluster.spec import load_spec


def quarterly(n_series: int, length: int, seed: int = 0) -> pd.DataFrame:
    """Positive quarterly series with a trend and a yearly pattern of four quarters."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        t = np.arange(length)
        y = 100 + 2 * t * (i % 3) + 10 * np.tile([1.0, -0.5, 0.3, -0.8], length)[:length]
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"q{i}",
                    "y": y + rng.normal(0, 2, length),
                    "ds": pd.date_range("2015-01-01", periods=length, freq="QS"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def minimal_spec(tmp_path, frame: pd.DataFrame, horizon: int) -> str:
    frame.to_parquet(tmp_path / "input.parquet", index=False)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(tmp_path / "input.parquet")},
                "forecast": {"horizon": horizon},
                "output": {"path": str(tmp_path / "out")},
            }
        )
    )
    return str(spec)


LSTM_FORECASTS = ("lstm", "table + lstm", "table")  # its own, mixed with the table model's


def test_thirty_point_quarterly_series_each_get_an_lstm(ray_cluster, tmp_path):
    lengths = [30, 24, 30, 40, 64, 30]  # 24 = horizon 8 + the shortest fit (16)
    frame = pd.concat(
        [quarterly(1, n, seed=i).assign(unique_id=f"q{i}") for i, n in enumerate(lengths)],
        ignore_index=True,
    )
    summary = run_job(load_spec(minimal_spec(tmp_path, frame, horizon=8)))
    metrics = pd.read_parquet(summary.output / "metrics.parquet").set_index("unique_id")
    assert summary.counts == {"ok": 6} and metrics["model"].isin(LSTM_FORECASTS).all()
    assert (metrics["lookback"] <= 12).all()  # the job window, 1.5 x max(8, 4)
    assert set(metrics["skip"]) <= {"season 4", "level", "last"}
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    assert forecasts.groupby("unique_id").size().eq(8).all() and forecasts["y_hat"].notna().all()
    manifest = json.loads((summary.output / "manifest.json").read_text())
    resolved = manifest["resolved"]
    assert resolved["season_length"] == 4 and resolved["lookback"] == 12
    assert "1.5 x max(horizon 8, season 4)" in resolved["why"]["lookback"]


def test_two_seasons_plus_the_horizon_are_trained_and_a_shorter_series_falls_back(
    ray_cluster, tmp_path
):
    frame = pd.concat(
        [
            quarterly(1, 40),
            quarterly(1, 16).assign(unique_id="edge"),  # quarterly, h = 8: 2 x 4 + 8 points
            quarterly(1, 15).assign(unique_id="short"),
        ]
    )
    spec = load_spec(minimal_spec(tmp_path, frame, horizon=8), ["forecast.short_series=snaive"])
    metrics = pd.read_parquet(run_job(spec).output / "metrics.parquet").set_index("unique_id")
    assert (
        metrics.loc["short", "status"] == "fallback" and metrics.loc["short", "model"] == "snaive"
    )
    assert "15 points, fewer than the 16" in metrics.loc["short", "reason"]
    assert metrics.loc["q0", "status"] == metrics.loc["edge", "status"] == "ok"
    assert metrics.loc["edge", "lookback"] >= 1 and np.isfinite(metrics.loc["edge", "mase"])


def _lengths(lengths: list[int], freq: str) -> pd.DataFrame:
    """One positive trending series per length, named by it."""
    return pd.concat(
        pd.DataFrame(
            {
                "unique_id": f"n{n}",
                "ds": pd.date_range("2000-01-01", periods=n, freq=freq),
                "y": 50.0 + 3 * np.arange(n) + np.random.default_rng(n).normal(0, 1, n),
            }
        )
        for n in lengths
    )


def test_series_of_1_5_12_and_20_points_each_get_a_forecast_by_default(ray_cluster, tmp_path):
    # yearly, h = 4: trained from 4 + 2 (two seasons of one point) = 6 points
    yearly = _lengths([1, 5, 12, 20], "YS")
    out = run_job(load_spec(minimal_spec(tmp_path, yearly, horizon=4))).output
    metrics = pd.read_parquet(out / "metrics.parquet").set_index("unique_id")
    assert metrics["status"].to_dict() == {
        "n1": "fallback",
        "n5": "fallback",
        "n12": "ok",
        "n20": "ok",
    }
    assert metrics.loc["n1", "model"] == "naive" and "no metrics" in metrics.loc["n1", "reason"]
    assert metrics.loc["n5", "model"] == "statistical"
    assert "5 points, fewer than the 6 a series is trained from" in metrics.loc["n5", "reason"]
    assert np.isfinite(metrics.loc["n5", "smape"])  # backtested on its last 4 from 1 point
    assert metrics.loc[["n12", "n20"], "model"].isin(LSTM_FORECASTS).all()
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert forecasts.groupby("unique_id").size().to_dict() == {f"n{n}": 4 for n in (1, 5, 12, 20)}
    assert np.isfinite(forecasts["y_hat"]).all()
    np.testing.assert_array_equal(
        forecasts.query("unique_id == 'n1'")["y_hat"],
        50.0 + np.random.default_rng(1).normal(0, 1, 1)[0],
    )
    assert forecasts.query("unique_id == 'n5'")["y_hat"].is_monotonic_increasing  # its trend
