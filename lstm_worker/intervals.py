"""Prediction intervals from backtest residuals, conformal style, per series and step.

A series backtested on W rolling windows has W residuals per horizon step. Too few for
a quantile, so step h pools the residuals of the steps around it, enough to hold at least
``min_pool`` values; errors grow with the horizon, so the pool stays local. The
quantile takes the finite-sample conformal correction: the ceil((n + 1) p)-th smallest of
n absolute residuals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.result import SeriesResult


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
        rank = np.ceil((sizes + 1) * level / 100).astype(int) - 1  # conformal correction
        rank = np.clip(np.minimum(rank, sizes - 1), 0, None)
        picked = np.take_along_axis(pools, rank[:, None], axis=1)[:, 0]
        widths[level] = np.where(sizes > 0, picked, np.nan)
    return widths


def interval_widths(
    values: np.ndarray, result: SeriesResult, cfg: WorkerConfig
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Half-widths per level over the horizon, and their leave-one-window-out coverage."""
    levels, horizon = cfg.forecast.levels, cfg.forecast.horizon
    if not levels or result.backtest.size == 0:
        return {}, {}
    holdout = cfg.forecast.holdout_steps
    actual = np.stack([values[cut : cut + holdout] for cut in result.cutoffs])  # (W, H)
    residuals = actual - result.backtest  # (W, H)
    by_step = conformal_widths(residuals, levels)
    # Steps past the holdout reuse the last step's width: no residual says more.
    widths = {
        level: np.resize(np.r_[w, np.full(max(0, horizon - len(w)), w[-1])], horizon)
        for level, w in by_step.items()
    }
    coverage = {}
    if len(residuals) > 1:  # each window judged by widths from the other windows
        hits: dict[int, list[np.ndarray]] = {level: [] for level in levels}
        for w in range(len(residuals)):
            others = conformal_widths(np.delete(residuals, w, axis=0), levels)
            for level in levels:
                hits[level].append(np.abs(residuals[w]) <= others[level])
        coverage = {level: float(np.mean(h)) for level, h in hits.items()}
    return widths, coverage
