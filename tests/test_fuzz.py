"""Random small tables with random dirt: the job never crashes, every input series is one
row of metrics.parquet, every forecast series has exactly ``horizon`` finite forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker.shard.results import METRICS_SCHEMA

HORIZON = 3
DIRT = ("nan", "inf", "duplicate", "gap", "shuffle", "constant", "zero", "huge", "off_grid")

series_strategy = st.fixed_dictionaries(
    {
        "length": st.integers(1, 40),
        "dirt": st.sets(st.sampled_from(DIRT), max_size=3),
        "seed": st.integers(0, 2**16),
    }
)
job_strategy = st.fixed_dictionaries(
    {
        "series": st.lists(series_strategy, min_size=1, max_size=5),
        "ids": st.sampled_from(["text", "int", "unicode"]),
        "clock": st.sampled_from(["hourly", "integer"]),
        "missing": st.sampled_from(["fill_linear", "fill_forward", "fill_zero", "skip"]),
        "duplicates": st.sampled_from(["skip", "last", "mean"]),
        "short_series": st.sampled_from(["skip", "snaive"]),
    }
)


def _series(length: int, dirt: set[str], seed: int, step) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = 10 + np.sin(np.arange(length) / 3) + rng.normal(0, 0.3, length)
    if "constant" in dirt:
        y[:] = 7.0
    if "zero" in dirt:
        y[:] = 0.0
    if "huge" in dirt:
        y *= 1e12
    if "nan" in dirt:
        y[rng.integers(0, length, 1 + length // 5)] = np.nan
    if "inf" in dirt:
        y[rng.integers(0, length)] = rng.choice([np.inf, -np.inf])
    frame = pd.DataFrame({"t": np.arange(length), "y": y})
    if "gap" in dirt and length > 2:
        frame = frame.drop(index=rng.integers(1, length - 1, 1 + length // 8), errors="ignore")
    if "duplicate" in dirt:
        frame = pd.concat([frame, frame.sample(1, random_state=seed)])
    frame["ds"] = step(frame["t"].to_numpy(dtype=float), "off_grid" in dirt and length > 2)
    if "shuffle" in dirt:
        frame = frame.sample(frac=1.0, random_state=seed)
    return frame.drop(columns="t")


def _table(job: dict) -> pd.DataFrame:
    def step(t: np.ndarray, off_grid: bool):
        if off_grid:
            t = t + (np.arange(len(t)) == len(t) // 2) * 0.5  # one time half a step off
        if job["clock"] == "integer":
            return (t * 2).astype(np.int64)  # a step of 2; the half step lands on an odd time
        return pd.Timestamp("2024-01-01") + pd.to_timedelta(t, unit="h")

    names = {"text": lambda i: f"s{i}", "int": lambda i: i, "unicode": lambda i: f"ß-{i}-✓"}
    anchor = {"length": 30, "dirt": set(), "seed": 0}  # one clean series, so the job can run
    frames = [
        _series(**s, step=step).assign(unique_id=names[job["ids"]](i))
        for i, s in enumerate([anchor, *job["series"]])
    ]
    return pd.concat(frames, ignore_index=True)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(job=job_strategy)
def test_random_dirt_never_crashes_the_job_and_every_series_is_one_row(
    ray_cluster, tmp_path_factory, job
):
    root = tmp_path_factory.mktemp("fuzz")
    frame = _table(job)
    frame.to_parquet(root / "input.parquet", index=False)
    raw = {
        "input": {
            "path": str(root / "input.parquet"),
            "missing": job["missing"],
            "duplicates": job["duplicates"],
        },
        "model": {"lookback": 4, "hidden_size": 4},
        "train": {"epochs": 1},
        "forecast": {"horizon": HORIZON, "season_length": 2, "short_series": job["short_series"]},
        "resources": {"series_per_task": 2},
        "output": {"path": str(root / "out")},
    }
    (root / "job.yaml").write_text(yaml.safe_dump(raw))
    out = run_job(load_spec(root / "job.yaml")).output

    metrics = pd.read_parquet(out / "metrics.parquet")
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert sorted(metrics["unique_id"], key=str) == sorted(frame["unique_id"].unique(), key=str)
    assert metrics["unique_id"].is_unique
    assert set(metrics["status"]) <= {"ok", "fallback", "skipped", "failed"}
    failed = metrics.loc[metrics["status"] == "failed", "reason"]
    assert failed.str.startswith("training loss became NaN or infinite").all(), failed.tolist()
    assert metrics["status"].iloc[0] == "ok"  # the clean anchor
    per_series = forecasts.groupby("unique_id").size()
    forecast_ids = set(metrics.loc[metrics["status"].isin(["ok", "fallback"]), "unique_id"])
    assert set(per_series.index) == forecast_ids
    assert (per_series == HORIZON).all() and np.isfinite(forecasts["y_hat"]).all()
    floats = [name for name, kind in METRICS_SCHEMA.items() if str(kind) == "double"]
    assert not np.isinf(metrics[floats].to_numpy(dtype=float)).any()
    assert (metrics.loc[metrics["status"] != "ok", "reason"].fillna("") != "").all()
