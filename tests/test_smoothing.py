"""The statistical models under every forecast: each equals its formula, worked out here
one grid point at a time in plain Python, on series small enough to follow by hand."""

import numpy as np
import pytest

from lstm_worker import WorkerConfig
from lstm_worker.season import seasonal_indices
from lstm_worker.smoothing import (
    _ALPHAS,
    _BETA_SHARES,
    _PHIS,
    _THETAS,
    smoothing_forecasts,
    statistical_forecast,
    statistical_results,
)

SERIES = np.array([12.0, 13.5, 13.1, 15.2, 16.0, 15.7, 17.9, 18.4, 18.1, 20.3, 21.0, 20.6])


def _line(values):
    """Least-squares intercept (at t = 0) and slope."""
    t = np.arange(len(values), dtype=float)
    slope = float(np.polyfit(t, values, 1)[0]) if len(values) > 1 else 0.0
    return float(np.mean(values) - slope * t.mean()), slope


def _damped_by_hand(y, horizon):
    """Holt's damped trend, every grid point run step by step; the least squared one-step
    error wins; its forecast is level + (phi + ... + phi^h) x trend."""
    first = y[:10]
    intercept, slope = _line(first)
    best = None
    for alpha in _ALPHAS:
        for share in _BETA_SHARES:
            for phi in _PHIS:
                level, trend, sse = intercept - slope, slope, 0.0  # the state before y[0]
                for value in y:
                    predicted = level + phi * trend
                    error = value - predicted
                    sse += error**2
                    level = predicted + alpha * error
                    trend = phi * trend + alpha * share * error
                if best is None or sse < best[0]:
                    best = (sse, level, trend, phi)
    _, level, trend, phi = best
    return np.array(
        [level + sum(phi**j for j in range(1, h + 1)) * trend for h in range(1, horizon + 1)]
    )


def _theta_by_hand(y, horizon):
    """For each theta: simple exponential smoothing of the theta line theta y + (1 - theta)
    line from its first point, with the alpha of least squared error; the theta whose
    error over theta^2 (the error on y) is least wins; its forecast is
    (1 - 1/theta) line + (1/theta) level."""
    intercept, slope = _line(y)
    t, n = np.arange(len(y)), len(y)
    best = None
    for theta in _THETAS:
        z = theta * y + (1 - theta) * (intercept + slope * t)
        for alpha in _ALPHAS:
            level, sse = z[0], 0.0
            for value in z[1:]:
                sse += (value - level) ** 2
                level = alpha * value + (1 - alpha) * level
            if best is None or sse / theta**2 < best[0]:
                best = (sse / theta**2, level, theta)
    _, level, theta = best
    line = intercept + slope * (n - 1 + np.arange(1, horizon + 1))
    return (1 - 1 / theta) * line + level / theta


def test_damped_trend_and_theta_equal_their_formulas_worked_by_hand():
    fitted = smoothing_forecasts([SERIES], 5, 1)[0]
    np.testing.assert_allclose(fitted[0], _damped_by_hand(SERIES, 5), rtol=1e-12)
    np.testing.assert_allclose(fitted[1], _theta_by_hand(SERIES, 5), rtol=1e-12)
    statistical = statistical_forecast([SERIES], 5, 1)[0]
    np.testing.assert_allclose(statistical, (fitted[0] + fitted[1]) / 2)
    assert (np.diff(statistical) > 0).all()  # the trend carries on


def test_histories_of_different_lengths_fit_together_as_alone():
    short, long = SERIES[:7], np.r_[SERIES, SERIES + 10.0]
    together = smoothing_forecasts([short, long], 4, 1)
    np.testing.assert_allclose(together[0], smoothing_forecasts([short], 4, 1)[0], rtol=1e-12)
    np.testing.assert_allclose(together[1], smoothing_forecasts([long], 4, 1)[0], rtol=1e-12)


def test_the_season_is_divided_out_and_put_back():
    t = np.arange(48)
    profile = np.array([0.8, 1.0, 1.3, 0.9])
    y = (100 + 2 * t) * profile[t % 4]
    indices = seasonal_indices(y, 4)
    fitted = smoothing_forecasts([y], 8, 4)[0]
    adjusted = smoothing_forecasts([y / indices[t % 4]], 8, 1)[0]
    np.testing.assert_allclose(fitted, adjusted * indices[np.arange(48, 56) % 4], rtol=1e-12)
    forecast = statistical_forecast([y], 8, 4)[0]
    truth = (100 + 2 * np.arange(48, 56)) * profile[np.arange(48, 56) % 4]
    assert np.abs(forecast / truth - 1).max() < 0.03  # damped, and Theta halves the slope


@pytest.mark.parametrize("values", [[5.0], [1.7e308, -1.7e308, 1.7e308, -1.7e308]])
def test_one_point_or_overflowing_histories_are_forecast_by_naive(values):
    forecast = statistical_forecast([np.array(values)], 3, 1)[0]
    np.testing.assert_array_equal(forecast, np.full(3, values[-1]))


def test_two_points_carry_their_trend():
    forecast = statistical_forecast([np.array([5.0, 7.0])], 3, 1)[0]
    assert 7.0 < forecast[0] < forecast[1] < forecast[2] < 7.0 + 3 * 2.0


def test_each_series_is_backtested_where_its_lstm_is():
    cfg = WorkerConfig(
        model={"lookback": 8}, forecast={"horizon": 4, "n_windows": 2}, season_length=1
    )
    long, short = SERIES, SERIES[:6]  # 12 points: cut-offs 8 and 4; 6 points: only 2
    results = statistical_results([long, short], cfg)
    assert cfg.cutoffs(12) == [8, 4] and cfg.cutoffs(6) == [2]
    assert results[0].backtest.shape == (2, 4) and results[1].backtest.shape == (1, 4)
    np.testing.assert_allclose(results[0].backtest[1], statistical_forecast([long[:4]], 4, 1)[0])
    np.testing.assert_allclose(results[1].forecast, statistical_forecast([short], 4, 1)[0])
