"""What is resolved from the data: the job's window, and each series' own view of itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster.resolve import resolve, worker_config
from cluster.sections import JobSpec
from lstm_worker import WorkerConfig
from lstm_worker.data.table import seasons_from_freq
from lstm_worker.inputs import THETA
from lstm_worker.season import seasonal_indices, seasonality_test
from lstm_worker.skip import baseline, theta_drift
from lstm_worker.views import model_view


def rng(seed: int) -> np.random.Generator:
    """Each test's own noise: its data the same whichever tests ran before it."""
    return np.random.default_rng(seed)


def config(horizon: int, seasons: tuple[int, ...], **model) -> WorkerConfig:
    return WorkerConfig(
        model={"lookback": 48, **model},
        forecast={"horizon": horizon},
        season_length=seasons[0] if seasons else 1,
        seasons=seasons,
    )


def seasonal(n: int, period: int, noise: float = 0.2, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    return 10 + 3 * np.sin(2 * np.pi * t / period) + rng(seed).normal(0, noise, n)


@pytest.mark.parametrize(
    "freq, horizon, lookback, seasons",
    [
        ("h", 48, 72, (24, 168)),
        ("D", 14, 21, (7, 365)),
        ("W-MON", 13, 78, (52,)),
        ("MS", 18, 27, (12,)),
        ("QS", 8, 12, (4,)),
        ("YS", 6, 9, ()),
    ],
)
def test_the_job_window_follows_the_horizon_and_the_season(freq, horizon, lookback, seasons):
    spec = JobSpec.model_validate(
        {"input": {"path": "x"}, "output": {"path": "y"}, "forecast": {"horizon": horizon}}
    )
    calendar = seasons_from_freq(pd.tseries.frequencies.to_offset(freq))
    assert calendar == seasons
    resolved = resolve(spec, calendar)
    assert resolved.lookback == lookback and resolved.seasons == seasons
    assert "1.5 x max" in resolved.why["lookback"]
    explicit = spec.model_copy(update={"model": spec.model.model_copy(update={"lookback": 5})})
    assert worker_config(explicit, calendar).lookback == 5  # a value in the spec wins


def test_a_clear_season_is_the_skip_input_or_divided_out():
    view = model_view(seasonal(400, 24), config(48, (24, 168)))
    assert view.indices is not None and len(view.indices) == 24
    assert view.skip == "level"
    assert view.lookback == 48 and view.val == 48
    raw = model_view(seasonal(400, 24), config(48, (24, 168), deseasonalise=False))
    assert raw.skip == "season 24" and raw.indices is None


def test_the_theta_skip_baseline_is_the_smoothed_level_plus_half_the_slope_a_step():
    history = np.array([3.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0])
    level = history[0]  # simple exponential smoothing, 0.3, started at the first value
    for value in history:
        level = 0.3 * value + 0.7 * level
    slope = 26 / 28  # least squares: sum((t - 3) (y - 6)) / sum((t - 3)^2)
    expected = level + slope / 2 * (np.arange(1, 5) - 1 + 1 / 0.3)
    np.testing.assert_allclose(baseline(history, THETA, 4, None), expected, rtol=1e-12)
    np.testing.assert_allclose(theta_drift(history), slope / 2 / 0.3, rtol=1e-12)


def test_the_theta_skip_drifts_with_the_trend_in_model_space():
    trend = 20 + 0.8 * np.arange(120) + np.random.default_rng(1).normal(0, 1, 120)
    view = model_view(trend, config(12, (12,), skip="theta"))
    assert view.skip == "theta" and view.drift == pytest.approx(theta_drift(view.scaled))
    assert view.drift == pytest.approx(0.8 / view.scaler.scale / 2 / 0.3, rel=0.05)
    assert model_view(trend, config(12, (12,))).drift == 0.0  # auto: never theta


def test_random_walks_mostly_skip_from_their_last_value():
    # Over a random walk the last value and a smoothed level are near alike: most, not
    # all, of 20 walks choose the last (12 of them; 8 the level, none a season).
    skips = [
        model_view(100 + np.cumsum(rng(seed).normal(0, 1, 300)), config(13, (52,))).skip
        for seed in range(20)
    ]
    assert skips.count("last") > skips.count("level") and set(skips) <= {"last", "level"}


def test_noise_around_a_level_mostly_skips_from_the_smoothed_level():
    skips = [
        model_view(50 + rng(seed).normal(0, 1, 300), config(12, (12,))).skip for seed in range(20)
    ]
    assert skips.count("level") >= 15 and set(skips) <= {"last", "level"}  # 16 of 20


def test_a_flat_series_skips_from_a_baseline_that_is_flat_too():
    assert model_view(np.full(120, 7.0), config(12, (12,))).skip in ("level", "last")


def test_a_weekly_series_of_two_noisy_years_is_not_forced_seasonal():
    draw = rng(3)
    weeks = 120 + np.cumsum(draw.normal(0, 1, 110)) + draw.normal(0, 3, 110)
    assert not seasonality_test(weeks, 52)
    assert model_view(weeks, config(13, (52,))).skip != "season 52"


def test_a_short_series_gets_a_window_of_its_own_and_no_validation_tail():
    short = seasonal(22, 4)  # a 30-point quarterly series' backtest history (h = 8)
    view = model_view(short, config(8, (4,)))
    assert view.val == 0 and view.lookback == view.targets < 48
    assert view.targets == 22 - 1 - max(view.lag - 1, 0)


def test_deseasonalising_divides_out_the_seasons_it_finds_only():
    cfg = config(12, (12,), skip="level")
    view = model_view(seasonal(120, 12) * 10, cfg)
    assert view.indices is not None and len(view.indices) == 12
    assert abs(view.indices.mean() - 1) < 1e-9
    assert model_view(50 + rng(4).normal(0, 1, 120), cfg).indices is None
    assert np.all(seasonal_indices(np.r_[-1.0, seasonal(119, 12)], 12) == 1)  # not all positive
