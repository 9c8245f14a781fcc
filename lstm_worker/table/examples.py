"""What the table model reads and learns from: windows cut from many series at many
origins, each in units of its own series' recent level.

An example is one series cut at one origin ``o``: the ``lookback`` points before ``o``
(the context), the statistical forecast of the points after it fitted on the history
before it (the baseline the model corrects: the statistical forecast the series is
combined with, but for a history of more than ``STAT_HISTORY`` points, fitted on its
last ones; fitted on the last 8 horizons instead, on the daily web-traffic backtest the
table model alone scored MASE 1.053 against the statistical forecast's 0.995), and the
points that followed (the targets;
NaN where the series ends, as for a forecast). Dividing by the level of the last season
before ``o`` puts every series in the same units; the loss weight divides the error
again by the series' in-sample MASE scale, so training minimises the mean MASE the
table is scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.metrics import mase_scale
from lstm_worker.smoothing import statistical_forecast

_LEVEL_POINTS = 4  # the level is the mean |value| of the last season, at least this many
STAT_HISTORY = 1_000  # the baseline is fitted on at most this many points: a bound on its cost


@dataclass(frozen=True)
class Examples:
    """N windows, each in units of its series' level before its origin."""

    context: np.ndarray  # (N, L) float32: the last L points before the origin, left-padded
    start: np.ndarray  # (N,) int64: the context's first real step (earlier ones: padding)
    baseline: np.ndarray  # (N, H) float32: the statistical forecast from the origin
    target: np.ndarray  # (N, H) float32: what followed; NaN past the series' end
    weight: np.ndarray  # (N,) float32: the level over the series' MASE scale
    level: np.ndarray  # (N,) float64: what a value was divided by

    def __len__(self) -> int:
        return len(self.level)

    def take(self, rows: np.ndarray) -> Examples:
        """The examples at ``rows`` (N',)."""
        return Examples(*(getattr(self, name)[rows] for name in _FIELDS))


_FIELDS = ("context", "start", "baseline", "target", "weight", "level")


ORIGINS_PER_SERIES = 8  # a long series is cut at this many of its origins, drawn at random


def train_origins(n_points: int, steps: int, cfg: WorkerConfig, draw: int = 0) -> list[int]:
    """The origins a series of ``n_points`` is cut at for training: every half horizon
    back from the last whose ``steps`` targets all lie in the series, none leaving less
    than ``first_origin`` before it; at most ``ORIGINS_PER_SERIES`` of them, drawn with
    the seed ``draw``, so the windows of a sample come from as many series as they can.
    Every origin of a long series instead: on the web-traffic backtest the windows came
    from 48 series and the table model alone scored MASE 1.026 (1.005 so), on M4 Weekly
    2.507 (2.517), on M4 Hourly from 25 series."""
    stride = max(1, -(-steps // 2))
    found = list(range(n_points - steps, first_origin(cfg) - 1, -stride))
    if len(found) <= ORIGINS_PER_SERIES:
        return found
    kept = np.random.default_rng(draw).choice(len(found), ORIGINS_PER_SERIES, replace=False)
    return [found[i] for i in np.sort(kept)]


def first_origin(cfg: WorkerConfig) -> int:
    """The fewest points a training window has before its origin: a full context (and
    the shortest fit). Origins after a point or two taught the model the statistical
    forecast of a history of two points, which no forecast it makes starts from."""
    return max(cfg.min_fit, cfg.table.lookback or cfg.lookback)


def cut_examples(
    values: Sequence[np.ndarray],
    cuts: Sequence[tuple[int, int]],
    steps: int,
    lookback: int,
    cfg: WorkerConfig,
) -> Examples:
    """The examples of ``cuts``, each (series, origin): that series of ``values`` cut at
    that origin, ``steps`` targets after it and ``lookback`` points before it."""
    n = len(cuts)
    fitted = [values[k][max(0, o - STAT_HISTORY) : o] for k, o in cuts]
    baseline = statistical_forecast(fitted, steps, cfg.first_season) if n else np.zeros((0, steps))
    context = np.zeros((n, lookback), np.float32)
    start = np.zeros(n, np.int64)
    target = np.full((n, steps), np.nan, np.float32)
    weight = np.ones(n, np.float32)
    level = np.ones(n)
    recent = max(cfg.first_season, _LEVEL_POINTS)
    for row, (k, o) in enumerate(cuts):
        series = values[k]
        mean = float(np.mean(np.abs(series[max(0, o - recent) : o])))
        level[row] = mean if mean > 0 and np.isfinite(mean) else 1.0
        seen = series[max(0, o - lookback) : o]
        context[row, lookback - len(seen) :] = seen / level[row]
        start[row] = lookback - len(seen)
        after = series[o : o + steps]
        target[row, : len(after)] = after / level[row]
        scale = mase_scale(series[:o], cfg.season_length)
        weight[row] = level[row] / scale if np.isfinite(scale) else 1.0
    return Examples(
        context, start, (baseline / level[:, None]).astype(np.float32), target, weight, level
    )
