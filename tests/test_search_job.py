"""The hyper-parameter search on a real local Ray: each shard's task trains every setting,
then chooses per series (or, for a global choice, waits for the driver's)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cluster.job import run_job
from cluster.spec import load_spec
from tests.conftest import synthetic_frame

GRID = {"model.hidden_size": [4, 8], "seed": [0, 1]}


def test_search_fans_out_series_times_settings_and_chooses_per_series(ray_cluster, write_job):
    off = {"enabled": False}  # each series' own LSTMs, the subject here, alone
    spec = load_spec(
        write_job(search={"grid": GRID}, forecast={"n_windows": 2, "step": 3}, table=off)
    )
    out = run_job(spec).output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"] == 2 * 2 and len(manifest["settings"]) == 4  # 2 shards, 2 passes
    metrics = pd.read_parquet(out / "metrics.parquet")
    candidates = pd.read_parquet(out / "candidates.parquet")
    assert (metrics["model"] == "lstm").all() and metrics["setting"].notna().all()
    # every series: 4 LSTM settings, the statistical models, 2 baselines; 2 windows each
    assert candidates.groupby("unique_id").size().eq(7 * 2).all()
    lstm = candidates[candidates["model"] == "lstm"].groupby(["unique_id", "setting"])["mase"]
    best = lstm.mean().groupby("unique_id").idxmin().map(lambda pair: pair[1])
    assert (metrics.set_index("unique_id")["setting"] == best).all()
    backtest = pd.read_parquet(out / "backtest.parquet")
    assert set(backtest["window"]) == {0, 1} and len(backtest) == 5 * 2 * 6


def test_global_selection_and_top_k(ray_cluster, write_job):
    # Skip inputs that forecast differently even where a tiny LSTM learns little
    skips = {"model.skip": ["last", "level", "none"]}
    spec = load_spec(write_job(search={"grid": skips, "select": "global"}))
    out = run_job(spec).output
    metrics = pd.read_parquet(out / "metrics.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    assert (metrics["setting"] == manifest["global_setting"]).all()
    lstm = pd.read_parquet(out / "candidates.parquet").query("model == 'lstm'")
    means = lstm.groupby(["setting", "unique_id"])["mase"].mean().groupby("setting").mean()
    assert means.nunique() == 3 and manifest["global_setting"] == means.idxmin()  # the best
    assert manifest["tasks"] == 2 * 2  # a search pass, then a choose pass, per shard
    assert not list((out / "parts" / "pending").glob("*"))  # the kept results are gone
    spec = load_spec(write_job(search={"grid": GRID, "top_k": 2}))
    metrics = pd.read_parquet(run_job(spec, overwrite=True).output / "metrics.parquet")
    assert (metrics["model"] == "lstm mean of 2").all()


def test_exact_seasonal_series_falls_back_to_seasonal_naive(ray_cluster, write_job):
    frame = synthetic_frame(4)
    exact = frame["unique_id"] == "s0"
    hours = frame.loc[exact, "ds"].dt.hour.to_numpy()
    frame.loc[exact, "y"] = 20 + 5 * np.sin(2 * np.pi * hours / 24)  # repeats every day
    out = run_job(load_spec(write_job(frame, search={"fallback": ["snaive"]}))).output
    metrics = pd.read_parquet(out / "metrics.parquet").set_index("unique_id")
    assert metrics.loc["s0", "status"] == "fallback" and metrics.loc["s0", "model"] == "snaive"
    assert "seasonal naive beat the LSTM" in metrics.loc["s0", "reason"]
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    s0 = forecasts[forecasts["unique_id"] == "s0"]
    expected = 20 + 5 * np.sin(2 * np.pi * s0["ds"].dt.hour.to_numpy() / 24)
    np.testing.assert_allclose(s0["y_hat"], expected, atol=1e-9)
    assert forecasts.groupby("unique_id").size().eq(6).all()  # every series forecast
    from cluster.report.summary import summarize

    summary = summarize(out)  # the fallback counts as a series the LSTM did not beat
    assert summary.beat_snaive_of == 4 and summary.beat_snaive <= 0.75
