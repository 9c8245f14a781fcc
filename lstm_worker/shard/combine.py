"""A series' forecast from its parts: its own LSTM's, mixed with the table model's at
``table.share`` (the LSTM's forecast, ``y_hat_lstm``), then combined with its statistical
one (``lstm_worker.smoothing``) at ``forecast.lstm_weight``; backtest and forecast alike,
so what is scored is what is forecast."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from lstm_worker import SeriesResult, WorkerConfig
from lstm_worker.data.table import SeriesTable
from lstm_worker.metrics import score, score_windows
from lstm_worker.smoothing import Statistical, statistical_results


class Forecasts(Protocol):
    """A series' backtest windows and forecast from one more model."""

    @property
    def backtest(self) -> np.ndarray: ...  # (W, holdout), at the series' cut-offs

    @property
    def forecast(self) -> np.ndarray: ...  # (horizon,)


def statistical_of(table: SeriesTable, cfg: WorkerConfig) -> list[Statistical | None]:
    """Each usable series' statistical forecast and backtest (None for the rest)."""
    usable = table.usable()
    found = dict(
        zip(usable, statistical_results([table.values[p] for p in usable], cfg), strict=True)
    )
    return [found.get(p) for p in range(len(table))]


def mix(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` of ``first`` and the rest of ``second``: every mix of a series' forecasts
    (the table model's share, the LSTM's weight), backtest and forecast, run or stored."""
    mixed: np.ndarray = weight * first + (1 - weight) * second
    return mixed


def combined(
    values: np.ndarray,
    lstm: SeriesResult,
    other: Forecasts,
    weight: float,
    cfg: WorkerConfig,
) -> SeriesResult:
    """``weight`` of ``lstm``'s backtest and forecast plus the rest of ``other``'s, scored
    again as one forecast."""
    backtests = mix(lstm.backtest, other.backtest, weight)  # (W, H)
    mean, per_window = score_windows(values, backtests, lstm.cutoffs, cfg.season_length)
    return replace(
        lstm,
        backtest=backtests,
        metrics=mean,
        window_metrics=per_window,
        forecast=mix(lstm.forecast, other.forecast, weight),
    )


def in_place_of(lstm: SeriesResult, other: Forecasts) -> SeriesResult:
    """``other``'s backtest and forecast of a series in the place of its LSTM's (the same
    cut-offs: scored when combined)."""
    return replace(lstm, backtest=other.backtest, forecast=other.forecast)


def blend_backtests(
    lstm: SeriesResult,
    table: Forecasts | None,
    statistical: Forecasts,
    pairs: Collection[tuple[float, float]],
) -> dict[tuple[float, float], np.ndarray]:
    """Each (table share, LSTM weight) pair's backtests (W, H): the series' own LSTM mixed
    with the table model's at the share, then combined with the statistical forecast at
    the weight. Without a table forecast every share is the series' own LSTM."""
    found = {}
    for share, weight in pairs:
        side = lstm.backtest
        if table is not None:
            side = mix(table.backtest, lstm.backtest, share)
        found[(share, weight)] = mix(side, statistical.backtest, weight)
    return found


def backtest_metric(
    values: np.ndarray, backtests: np.ndarray, cutoffs: Sequence[int], metric: str, m: int
) -> float:
    """``metric`` of backtests (W, H) at ``cutoffs``, its mean over the windows where
    finite (as ``score_windows`` means it)."""
    holdout = backtests.shape[1]
    found = [
        score(values[cut : cut + holdout], backtest, values[:cut], m)[metric]
        for backtest, cut in zip(backtests, cutoffs, strict=True)
    ]
    finite = [v for v in found if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
