"""Prediction intervals from backtest residuals, conformal style.

**Pooled over the table** (what a run does): each series' absolute backtest residuals,
in units of its own in-sample scale (MASE's, at a lag of at most the holdout:
``interval_lag``), are pooled over every series of the table per horizon step
(``scaled_residuals``: each shard's tasks send theirs, the driver takes the quantiles,
``pooled_quantiles``); a series' half-width at a step is that step's quantile times its
scale (``pooled_widths``). A series of 12 points and one of 900 get intervals alike, a
higher level is never narrower, and a later step never narrower than an earlier one; a
table too small to fill a pool per step pools neighbouring steps. On the backtest split
this covered 0.69 to 0.85 (80%) and 0.88 to 0.96 (95%) of the seven sets' held-out
points, and 0.79 to 0.87 and 0.94 to 0.98 on their test parts, where each series' own
residuals had covered 0.68 to 0.83 and 0.68 to 0.96 (docs/benchmarks.md).

**Per series** (``interval_widths``, where no pooled quantiles exist): a series
backtested on W rolling windows has W residuals per horizon step; step h pools those of
the steps around it, enough to hold at least ``min_pool`` values.

Either quantile takes the finite-sample conformal correction: the ceil((n + 1) p)-th
smallest of n absolute residuals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.metrics import mase_scale

if TYPE_CHECKING:  # result loads torch, which the driver (pooled_quantiles) does without
    from lstm_worker.result import SeriesResult

POOLED_MIN = 50  # a pool this large has a 95% quantile below its largest value


def conformal_widths(
    residuals: np.ndarray, levels: Sequence[int], min_pool: int = 20
) -> dict[int, np.ndarray]:
    """residuals (W, H) actual - backtest forecast -> {level: half-width per step (H,)}."""
    windows, horizon = residuals.shape
    radius = max(0, int(np.ceil((min_pool / windows - 1) / 2)))
    absolute = np.abs(np.where(np.isfinite(residuals), residuals, np.nan))
    padded = np.pad(absolute, ((0, 0), (radius, radius)), constant_values=np.nan)
    # Step h's pool: steps h - radius .. h + radius of every window (padding is NaN).
    pools = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=1)
    pools = np.sort(pools.transpose(1, 0, 2).reshape(horizon, -1), axis=1)  # (H, n), NaN last
    sizes = np.isfinite(pools).sum(axis=1)  # (H,) values in each pool
    widths = {}
    for level in levels:
        rank = conformal_rank(sizes, level)
        picked = np.take_along_axis(pools, rank[:, None], axis=1)[:, 0]
        widths[level] = np.where(sizes > 0, picked, np.nan)
    return widths


def conformal_rank(count: np.ndarray, level: int) -> np.ndarray:
    """The 0-based rank of the conformal quantile at ``level`` among ``count`` values."""
    rank = np.ceil((count + 1) * level / 100).astype(int) - 1
    clipped: np.ndarray = np.clip(np.minimum(rank, count - 1), 0, None)
    return clipped


def pooled_quantiles(
    scaled: np.ndarray, levels: Sequence[int], min_pool: int = POOLED_MIN
) -> dict[int, np.ndarray]:
    """scaled (N, H): every series' scaled absolute residuals per step (NaN: none) ->
    {level: the conformal quantile per step (H,)}, never lower than an earlier step's;
    NaN at a step no series reached. A table of fewer than ``min_pool`` rows pools each
    step with the steps around it, as a series' own residuals are pooled
    (``conformal_widths``).

    Never lower than an earlier step's: the pool's residuals come from the same dates of
    every series (one backtest window), so an event on one of those dates lifts one step
    and leaves the next low, where the future's events fall elsewhere. On the backtest
    split this took web traffic's 80% coverage from 0.734 to 0.846 (MSIS 14.72 to 14.54)
    and left the yearly sets' as they were (docs/benchmarks.md)."""
    if len(scaled) == 0:
        return {level: np.full(scaled.shape[1], np.nan) for level in levels}
    by_step = conformal_widths(scaled, levels, min_pool)
    return {level: np.fmax.accumulate(q) for level, q in by_step.items()}


def interval_lag(cfg: WorkerConfig) -> int:
    """The lag of the differences a series' residuals are measured in: its season, or the
    holdout where that is shorter. A season longer than the forecast measures growth over
    spans the forecast never covers: on M4 Weekly's backtest (season 52, horizon 13) the
    pooled intervals' MSIS went from 25.34 to 23.70 at lag 13 (docs/benchmarks.md)."""
    return max(1, min(cfg.season_length, cfg.forecast.holdout_steps))


def interval_scale(values: np.ndarray, lag: int) -> float:
    """What a series' residuals are measured in: its mean absolute difference at ``lag``
    (as MASE's scale is, lag 1 where the history is too short), or its mean absolute
    value where that is not defined (a flat or two-point history); NaN for none."""
    scale = mase_scale(values, lag)
    if not np.isfinite(scale):
        level = float(np.mean(np.abs(values))) if len(values) else float("nan")
        scale = level if level > 0 else float("nan")
    return scale


def window_scales(values: np.ndarray, cutoffs: Sequence[int], lag: int) -> np.ndarray:
    """Each backtest window's scale (W,): that of the history before its cut-off."""
    return np.array([interval_scale(values[:cut], lag) for cut in cutoffs], np.float64)


def scaled_residuals(
    values: np.ndarray, backtests: np.ndarray, cutoffs: Sequence[int], scales: np.ndarray
) -> np.ndarray:
    """A series' absolute backtest residuals (W, H), each window's in units of its
    ``window_scales`` (computed once for every forecast of the series scored)."""
    holdout = backtests.shape[1]
    actual = np.array([values[cut : cut + holdout] for cut in cutoffs]).reshape(-1, holdout)
    scaled: np.ndarray = np.abs(actual - backtests) / scales[:, None]
    return scaled


def pooled_widths(
    values: np.ndarray,
    result: SeriesResult,
    quantiles: Mapping[int, Sequence[float]],
    cfg: WorkerConfig,
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """A series' half-widths per level over the horizon: the pooled ``quantiles`` times
    its scale; and the share of its own backtest points they cover. None for a series
    with no scale (one point)."""
    lag = interval_lag(cfg)
    scale = interval_scale(values, lag)
    if not np.isfinite(scale):
        return {}, {}
    widths = {
        level: _to_horizon(np.asarray(q, np.float64) * scale, cfg.forecast.horizon)
        for level, q in quantiles.items()
    }
    coverage = {}
    if result.backtest.size:
        cuts = result.cutoffs
        seen = scaled_residuals(values, result.backtest, cuts, window_scales(values, cuts, lag))
        coverage = {
            level: float(np.mean(seen <= np.asarray(q)[: seen.shape[1]]))
            for level, q in quantiles.items()
        }
    return widths, coverage


def _to_horizon(by_step: np.ndarray, horizon: int) -> np.ndarray:
    """Steps past the holdout reuse the last step's width: no residual says more."""
    return np.resize(np.r_[by_step, np.full(max(0, horizon - len(by_step)), by_step[-1])], horizon)


def interval_widths(
    values: np.ndarray, result: SeriesResult, cfg: WorkerConfig
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Half-widths per level over the horizon from the series' own residuals alone, and
    their leave-one-window-out coverage."""
    levels, horizon = cfg.forecast.levels, cfg.forecast.horizon
    if not levels or result.backtest.size == 0:
        return {}, {}
    holdout = cfg.forecast.holdout_steps
    actual = np.stack([values[cut : cut + holdout] for cut in result.cutoffs])  # (W, H)
    residuals = actual - result.backtest  # (W, H)
    by_step = conformal_widths(residuals, levels)
    widths = {level: _to_horizon(w, horizon) for level, w in by_step.items()}
    coverage = {}
    if len(residuals) > 1:  # each window judged by widths from the other windows
        hits: dict[int, list[np.ndarray]] = {level: [] for level in levels}
        for w in range(len(residuals)):
            others = conformal_widths(np.delete(residuals, w, axis=0), levels)
            for level in levels:
                hits[level].append(np.abs(residuals[w]) <= others[level])
        coverage = {level: float(np.mean(h)) for level, h in hits.items()}
    return widths, coverage
