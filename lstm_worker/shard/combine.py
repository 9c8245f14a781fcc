"""A series' LSTM forecast combined with its statistical one (``lstm_worker.smoothing``):
``forecast.lstm_weight`` of the one plus the rest of the other, backtest and forecast
alike, so what is scored is what is forecast."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lstm_worker import SeriesResult, WorkerConfig
from lstm_worker.data.table import SeriesTable
from lstm_worker.metrics import score_windows
from lstm_worker.smoothing import Statistical, statistical_results


def statistical_of(table: SeriesTable, cfg: WorkerConfig) -> list[Statistical | None]:
    """Each usable series' statistical forecast and backtest (None for the rest)."""
    usable = table.usable()
    found = dict(
        zip(usable, statistical_results([table.values[p] for p in usable], cfg), strict=True)
    )
    return [found.get(p) for p in range(len(table))]


def combined(
    values: np.ndarray,
    lstm: SeriesResult,
    statistical: Statistical,
    weight: float,
    cfg: WorkerConfig,
) -> SeriesResult:
    """``weight`` of the LSTM's backtest and forecast plus the rest of the statistical
    ones, scored again as one forecast."""
    backtests = weight * lstm.backtest + (1 - weight) * statistical.backtest  # (W, H)
    mean, per_window = score_windows(values, backtests, lstm.cutoffs, cfg.season_length)
    return replace(
        lstm,
        backtest=backtests,
        metrics=mean,
        window_metrics=per_window,
        forecast=weight * lstm.forecast + (1 - weight) * statistical.forecast,
    )
