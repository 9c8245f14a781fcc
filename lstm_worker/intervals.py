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


def conformal_widths(
    residuals: np.ndarray, levels: Sequence[int], min_pool: int = 20
) -> dict[int, np.ndarray]:
    """residuals (W, H) actual - backtest forecast -> {level: half-width per step (H,)}."""
    windows, horizon = residuals.shape
    radius = max(0, int(np.ceil((min_pool / windows - 1) / 2)))
    absolute = np.abs(residuals)
    widths = {level: np.empty(horizon) for level in levels}
    for step in range(horizon):
        low, high = max(0, step - radius), min(horizon, step + radius + 1)
        pool = np.sort(absolute[:, low:high].ravel())  # (n,)
        pool = pool[np.isfinite(pool)]
        for level in levels:
            if len(pool) == 0:
                widths[level][step] = np.nan
                continue
            rank = int(np.ceil((len(pool) + 1) * level / 100)) - 1  # conformal correction
            widths[level][step] = pool[min(rank, len(pool) - 1)]
    return widths
