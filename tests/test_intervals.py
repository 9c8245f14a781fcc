"""Intervals: each series' own conformal widths, and the table's pooled quantiles."""

import json

import numpy as np
import pandas as pd
import pytest

from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker.intervals import (
    conformal_widths,
    pooled_quantiles,
    scaled_residuals,
    window_scales,
)


def test_coverage_on_gaussian_noise_is_near_nominal():
    rng = np.random.default_rng(0)
    covered = {80: [], 95: []}
    for _ in range(400):  # 400 series: 4 backtest windows each, then a fresh 24-step future
        residuals = rng.normal(0, 2.0, size=(4, 24))
        widths = conformal_widths(residuals, [80, 95])
        future = rng.normal(0, 2.0, size=24)
        for level in covered:
            covered[level].append(np.abs(future) <= widths[level])
    for level, hits in covered.items():
        assert abs(100 * np.mean(hits) - level) < 3, (level, np.mean(hits))


def test_widths_grow_with_the_errors_of_later_steps():
    residuals = np.tile(np.arange(1.0, 49.0), (3, 1))  # errors grow with the step
    widths = conformal_widths(residuals, [90])[90]
    assert widths[0] < widths[24] < widths[47]


def test_undefined_without_residuals():
    widths = conformal_widths(np.full((2, 5), np.nan), [80])[80]
    assert np.isnan(widths).all()


def test_pooled_quantiles_equal_a_hand_computation_on_a_small_table():
    a = np.arange(1.0, 9.0)  # lag-1 scale 1 before either cut-off
    b = np.array([0.0, 2.0] * 4)  # scale 2
    c = np.full(8, 10.0)  # flat: no MASE scale, so its mean absolute value, 10
    backtests = {
        "a": np.array([[5.5, 5.0], [7.0, 10.0]]),  # actual [5, 6] then [7, 8]
        "b": np.array([[1.0, 2.0], [0.0, -2.0]]),  # actual [0, 2] twice
        "c": np.array([[12.0, 10.0], [10.0, 5.0]]),  # actual [10, 10] twice
    }
    values = {"a": a, "b": b, "c": c}
    rows = [
        scaled_residuals(values[k], backtests[k], [4, 6], window_scales(values[k], [4, 6], 1))
        for k in values
    ]
    np.testing.assert_array_equal(rows[0], [[0.5, 1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(rows[1], [[0.5, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(rows[2], [[0.2, 0.0], [0.0, 0.5]])
    # Step 1's pool sorted: 0, 0, 0, 0.2, 0.5, 0.5; step 2's: 0, 0, 0.5, 1, 2, 2. Of n = 6,
    # level 50 takes the ceil(7 * 0.5) = 4th smallest, level 80 the ceil(7 * 0.8) = 6th.
    found = pooled_quantiles(np.concatenate(rows), [50, 80], min_pool=6)
    np.testing.assert_array_equal(found[50], [0.2, 1.0])
    np.testing.assert_array_equal(found[80], [0.5, 2.0])
    # A pool of at least 12 takes both steps' 12 values: 0 x5, 0.2, 0.5 x3, 1, 2, 2; of
    # n = 12, level 50 the ceil(13 * 0.5) = 7th smallest, level 80 the ceil(13 * 0.8) = 11th.
    found = pooled_quantiles(np.concatenate(rows), [50, 80], min_pool=12)
    np.testing.assert_array_equal(found[50], [0.5, 0.5])
    np.testing.assert_array_equal(found[80], [2.0, 2.0])


def _job_frame(lengths: dict[str, int]) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frames = []
    for series_id, length in lengths.items():
        t = np.arange(length)
        y = 20 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1.0, length)
        ds = pd.date_range("2024-01-01", periods=length, freq="h")
        frames.append(pd.DataFrame({"unique_id": series_id, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.cluster
def test_series_of_12_30_and_900_points_get_a_95_interval_wider_than_their_80(
    ray_cluster, write_job
):
    lengths = {"p12": 12, "p30": 30, "p900": 900, **{f"s{i}": 80 for i in range(5)}}
    summary = run_job(load_spec(write_job(_job_frame(lengths), forecast={"horizon": 6})))
    manifest = json.loads((summary.output / "manifest.json").read_text())
    q80, q95 = (np.array(manifest["interval_quantiles"][level]) for level in ("80", "95"))
    assert manifest["interval_pool"] > 0 and (q95 >= q80).all() and (q95 > q80).any()
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    for series_id in ("p12", "p30", "p900"):
        rows = forecasts[forecasts["unique_id"] == series_id]
        width = {
            level: (rows[f"y_hi_{level}"] - rows[f"y_lo_{level}"]).to_numpy() for level in (80, 95)
        }
        assert len(rows) == 6 and np.isfinite(width[80]).all(), series_id
        differs = q95 > q80
        assert (width[95][differs] > width[80][differs]).all(), series_id
        assert (width[95] >= width[80]).all(), series_id
