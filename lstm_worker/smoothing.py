"""The statistical models each LSTM forecast is combined with: damped trend and Theta.

Each is fitted on one history with its season divided out (M4's classical multiplicative
indices, where its 90% test finds the season), its smoothing parameters chosen on a grid by
the in-sample one-step squared error, and forecast with the season put back:

- ``damped``: Holt's additive damped trend (a level and a trend that fades);
- ``theta``: the optimised Theta method (Assimakopoulos and Nikolopoulos; Fiorucci et
  al.): simple exponential smoothing of the theta line ``theta y + (1 - theta) line``
  (``line`` the least-squares line), combined with the line extrapolated as
  ``(1 - 1/theta) line + (1/theta) smoothed``; theta from ``_THETAS``, the one whose
  one-step error on the series is least (theta 2 is the classic method, 1 no trend).

The statistical forecast is their mean; a history of one point has no trend, and it is
naive. This is what the M4 competition's best methods
share (exponential smoothing with a damped trend, Theta, their combination); by hand
rather than statsforecast's AutoETS and AutoTheta, which cost 54 s and 8 s on M3 Monthly's
1,428 series on this machine's 2 cores, where these take under a second (docs/benchmarks.md).

All histories of a task are fitted at once: right-aligned on one time axis, each smoothing
step one numpy operation over every (history, grid point) pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.season import season_profile, seasonal_indices

MODELS = ("damped", "theta")  # the statistical forecast is their mean
MIN_TREND_POINTS = 2  # a shorter history (one point) is forecast by naive

_ALPHAS = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99])
_BETA_SHARES = np.array([0.01, 0.05, 0.1, 0.3])  # beta as a share of alpha (beta <= alpha)
_PHIS = np.array([0.8, 0.9, 0.95, 0.98])
_THETAS = np.array([1.0, 1.5, 2.0, 2.5, 3.0])
_INIT_POINTS = 10  # the first points the initial level and trend are regressed on


@dataclass(frozen=True)
class Statistical:
    """One series' statistical forecast and its backtest, beside its LSTM's."""

    backtest: np.ndarray  # (W, holdout): at the series' backtest cut-offs, window 0 latest
    forecast: np.ndarray  # (horizon,) past the end of the series


def statistical_results(values: Sequence[np.ndarray], cfg: WorkerConfig) -> list[Statistical]:
    """Each series' statistical forecast and its backtest at the cut-offs its LSTM is
    backtested at (``cfg.cutoffs``), all fitted at once."""
    holdout, horizon = cfg.forecast.holdout_steps, cfg.forecast.horizon
    histories, owners = [], []
    for k, series in enumerate(values):
        for cut in [*cfg.cutoffs(len(series)), len(series)]:
            histories.append(series[:cut])
            owners.append(k)
    forecasts = statistical_forecast(histories, max(holdout, horizon), cfg.first_season)
    rows = np.array(owners)
    results = []
    for k in range(len(values)):
        mine = forecasts[rows == k]  # (W + 1, steps): the backtests, then the whole series
        results.append(Statistical(mine[:-1, :holdout], mine[-1, :horizon]))
    return results


def statistical_forecast(histories: Sequence[np.ndarray], horizon: int, period: int) -> np.ndarray:
    """The statistical forecast of each history (K of them), ``horizon`` steps: (K, horizon),
    the mean of ``MODELS``' forecasts, or naive where a history has fewer than
    ``MIN_TREND_POINTS`` points or values so large that smoothing them overflows."""
    forecasts = np.empty((len(histories), horizon))
    long = [k for k, h in enumerate(histories) if len(h) >= MIN_TREND_POINTS]
    for k, history in enumerate(histories):
        forecasts[k] = history[-1]
    if long:
        with np.errstate(all="ignore"):  # an overflow is caught below, as a naive forecast
            fitted = smoothing_forecasts([histories[k] for k in long], horizon, period)
        mean = fitted.mean(axis=1)
        finite = np.isfinite(mean).all(axis=1)
        forecasts[np.array(long)[finite]] = mean[finite]
    return forecasts


def smoothing_forecasts(histories: Sequence[np.ndarray], horizon: int, period: int) -> np.ndarray:
    """Each model of ``MODELS`` fitted on each history and forecast ``horizon`` steps:
    (K, len(MODELS), horizon), in the histories' units. ``period``: the season divided
    out where found (1: none)."""
    adjusted, profiles = [], []
    for history in histories:
        indices = seasonal_indices(history, period) if period > 1 else np.ones(1)
        adjusted.append(history / season_profile(indices, 0, len(history)))
        profiles.append(season_profile(indices, len(history), horizon))
    grid, steps = _grid(), np.arange(1, horizon + 1)
    forecasts = np.empty((len(histories), len(MODELS), horizon))
    forecasts[:, 0] = _damped(adjusted, grid, steps)
    forecasts[:, 1] = _theta(adjusted, grid, steps)
    seasonal: np.ndarray = forecasts * np.stack(profiles)[:, None, :]
    return seasonal


def _damped(
    adjusted: Sequence[np.ndarray], grid: dict[str, np.ndarray], steps: np.ndarray
) -> np.ndarray:
    """Holt's damped trend on each history, its grid point of least squared one-step error:
    level + (phi + ... + phi^h) x trend, (K, H)."""
    columns = np.flatnonzero(grid["model"] == 1)
    damped = {name: values[columns] for name, values in grid.items()}
    values, starts = _right_aligned(adjusted)
    level0, trend0 = _initial_states(adjusted)
    level, trend, sse = _smooth(values, starts, level0, trend0, damped)  # each (K, G)
    k, best = np.arange(len(adjusted)), np.argmin(sse, axis=1)
    phi = damped["phi"][best][:, None]
    damping = np.cumsum(phi ** steps[None, :], axis=1)  # (K, H): phi + phi^2 + ...
    forecast: np.ndarray = level[k, best][:, None] + damping * trend[k, best][:, None]
    return forecast


def _theta(
    adjusted: Sequence[np.ndarray], grid: dict[str, np.ndarray], steps: np.ndarray
) -> np.ndarray:
    """The optimised Theta method on each history, (K, H). Each theta line is smoothed on
    the SES grid; a theta line's one-step error is theta times the history's, so the
    theta whose line's least squared error over theta^2 is least fits the history best."""
    columns = np.flatnonzero(grid["model"] == 0)
    ses = {name: values[columns] for name, values in grid.items()}
    lines = [_line(a) for a in adjusted]  # (intercept, slope) at t = 0
    thetas = np.repeat(_THETAS[None, :], len(adjusted), axis=0).ravel()  # (K * T,)
    stretched = [
        theta * a + (1 - theta) * (line[0] + line[1] * np.arange(len(a)))
        for a, line in zip(adjusted, lines, strict=True)
        for theta in _THETAS
    ]  # the theta lines, each history's in _THETAS order
    values, starts = _right_aligned(stretched)
    unused = np.zeros(len(values))  # SES starts each line at its first point
    level, _, sse = _smooth(values, starts, unused, unused, ses)
    rows = np.arange(len(stretched))
    best = np.argmin(sse, axis=1)  # (K * T,): each line's alpha
    error = (sse[rows, best] / thetas**2).reshape(len(adjusted), len(_THETAS))
    pick = np.arange(len(adjusted)) * len(_THETAS) + np.argmin(error, axis=1)  # (K,)
    theta, smoothed = thetas[pick][:, None], level[pick, best[pick]][:, None]
    n = np.array([len(a) for a in adjusted])[:, None]
    intercept, slope = (np.array(part)[:, None] for part in zip(*lines, strict=True))
    extended = intercept + slope * (n - 1 + steps[None, :])  # (K, H): the line, extended
    forecast: np.ndarray = (1 - 1 / theta) * extended + smoothed / theta
    return forecast


def _grid() -> dict[str, np.ndarray]:
    """Every grid point's (alpha, beta, phi) and its model: SES points have no trend."""
    ses = [(a, 0.0, 0.0, 0) for a in _ALPHAS]
    damped = [(a, a * s, p, 1) for a in _ALPHAS for s in _BETA_SHARES for p in _PHIS]
    points = np.array(ses + damped)
    return {
        "alpha": points[:, 0],
        "beta": points[:, 1],
        "phi": points[:, 2],
        "model": points[:, 3].astype(int),
    }


def _right_aligned(histories: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The histories on one time axis, ending together: (K, T) NaN-padded, and (K,) each
    one's first position."""
    longest = max(len(h) for h in histories)
    values = np.full((len(histories), longest), np.nan)
    starts = np.empty(len(histories), dtype=int)
    for k, history in enumerate(histories):
        starts[k] = longest - len(history)
        values[k, starts[k] :] = history
    return values, starts


def _initial_states(histories: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each history's level and trend before its first point, from a line through its
    first ``_INIT_POINTS`` points: (K,), (K,)."""
    levels, trends = np.empty(len(histories)), np.empty(len(histories))
    for k, history in enumerate(histories):
        first = history[:_INIT_POINTS]
        trends[k] = least_squares_slope(first)
        levels[k] = first.mean() - trends[k] * (len(first) + 1) / 2
    return levels, trends


def least_squares_slope(values: np.ndarray) -> float:
    """The least-squares slope of ``values`` against time (0 for one point)."""
    if len(values) < 2:
        return 0.0
    t = np.arange(len(values)) - (len(values) - 1) / 2
    return float(t @ (values - values.mean()) / (t @ t))


def _line(values: np.ndarray) -> tuple[float, float]:
    """The least-squares line through ``values``: its intercept at t = 0 and its slope."""
    slope = least_squares_slope(values)
    return float(values.mean() - slope * (len(values) - 1) / 2), slope


def _smooth(
    values: np.ndarray,
    starts: np.ndarray,
    level0: np.ndarray,
    trend0: np.ndarray,
    grid: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run every grid point over every history (error-correction form): the final level
    and trend, and the one-step squared errors summed, each (K, G). The histories run
    longest first, so each step computes only those begun: a stack of 80- to 2,600-point
    weekly series costs what its points do, not 2,600 steps of every series."""
    alpha, beta, phi = grid["alpha"], grid["beta"], grid["phi"]
    has_trend = grid["model"] == 1
    order = np.argsort(starts, kind="stable")  # longest first
    values, starts = values[order], starts[order]
    level = np.where(has_trend, level0[order][:, None], np.nan)  # (K, G); SES starts at y_0
    trend = np.where(has_trend, trend0[order][:, None], 0.0) + np.zeros((len(values), len(alpha)))
    sse = np.zeros((len(values), len(alpha)))
    for t in range(values.shape[1]):
        begun = int(np.searchsorted(starts, t, side="right"))  # rows [0, begun) have begun
        y = values[:begun, t : t + 1]  # (k, 1)
        first = (starts[:begun] == t)[:, None]
        held = level[:begun]
        held = np.where(first & ~has_trend, y, held)
        active = ~(first & ~has_trend)
        predicted = held + phi * trend[:begun]
        error = np.where(active, y - predicted, 0.0)
        sse[:begun] += error * error
        level[:begun] = np.where(active, predicted + alpha * error, held)
        trend[:begun] = np.where(active, phi * trend[:begun] + beta * error, trend[:begun])
    back = np.argsort(order)  # each history's row again
    return level[back], trend[back], sse[back]
