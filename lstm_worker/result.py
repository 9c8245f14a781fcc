"""One series' result, and the results that need no training: scored, skipped, short.

A result's arrays are de-normalised, in the input's units; its backtest windows are
scored against their holdouts and against the naive baselines, like any forecast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.metrics import naive_forecast, score_windows, seasonal_naive_forecast
from lstm_worker.names import STATISTICAL, Baseline, Status
from lstm_worker.smoothing import MIN_TREND_POINTS, statistical_forecast
from lstm_worker.views import FittedView, ModelView

_EMPTY = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class StoredModel:
    """One trained model of a series, as the model store keeps it."""

    window: int  # the backtest window it was fitted for (0: the latest); -1: the refit
    params: dict[str, np.ndarray]  # ``StackedLSTM.model_params``: one model's parameters
    view: FittedView  # how it saw its history
    epochs: int


@dataclass(frozen=True)
class SeriesResult:
    """What one series produced; arrays are de-normalised, in the input's units."""

    series_id: object
    status: Status
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    backtest: np.ndarray = field(default_factory=lambda: _EMPTY)  # (W, holdout): window 0 latest
    forecast: np.ndarray = field(
        default_factory=lambda: _EMPTY
    )  # (horizon,) forecast past the end of the history
    epochs: int = 0  # epochs the final (refitted) model trained
    train_seconds: float = 0.0  # its share of its stack's training loop: backtest and refit
    forecast_seconds: float = 0.0  # its share of its stack's recursive forecasts after it
    device: str = ""
    attempts: int = 0  # trainings of the series' models: 0 (none), 1, or 2 after a retry
    window_metrics: list[dict[str, float]] = field(default_factory=list)  # per window, as W
    inputs: dict[str, object] = field(default_factory=dict)  # the refit model's view, resolved
    cutoffs: list[int] = field(default_factory=list)  # where each backtest window's history ends
    models: tuple[StoredModel, ...] = ()  # its trained models, backtests then refit (stacked)
    baseline: str = ""  # what forecast a fallback: statistical, naive or snaive


def view_details(view: ModelView, cfg: WorkerConfig, calendar: bool) -> dict[str, object]:
    """What was resolved for a series from its own data, as metrics.parquet records it;
    ``calendar``: its model kept the calendar parts it was offered."""
    return {
        "lookback": view.lookback,
        "skip": view.skip,
        "val_size": view.val,
        "deseasonalised": 0 if view.indices is None else len(view.indices),
        "calendar": calendar_read(cfg, calendar),
    }


def calendar_read(cfg: WorkerConfig, kept: bool) -> str | None:
    """metrics.parquet's ``calendar``: the parts a model reads, "" where it dropped them,
    null where none were asked for."""
    return (",".join(cfg.calendar) if kept else "") if cfg.calendar else None


def scored(
    series_id: object,
    values: np.ndarray,
    backtests: np.ndarray,
    forecast: np.ndarray,
    cfg: WorkerConfig,
    status: Status = Status.OK,
    **details: Any,  # SeriesResult's run fields: epochs, train_seconds, device, ...
) -> SeriesResult:
    """The backtest windows (W, H) scored against their holdouts and the naive baselines."""
    cutoffs = cfg.cutoffs(len(values))
    mean, per_window = score_windows(values, backtests, cutoffs, cfg.season_length)
    return SeriesResult(
        series_id,
        status,
        metrics=mean,
        window_metrics=per_window,
        backtest=backtests,
        forecast=forecast,
        cutoffs=cutoffs,
        **details,
    )


def too_short(values: np.ndarray, cfg: WorkerConfig) -> str:
    needed = cfg.min_series_points()
    if len(values) < needed:
        return (
            f"{len(values)} points, fewer than the {needed} a series is trained from: one "
            f"backtest window ({cfg.forecast.holdout_steps}) and the shortest fit "
            f"({cfg.min_fit}: two seasons)"
        )
    return ""


def short_result(
    series_id: object, values: np.ndarray, reason: str, cfg: WorkerConfig, device: str
) -> SeriesResult:
    """A series too short to train: forecast by the best baseline its history allows (the
    statistical models', naive below ``MIN_TREND_POINTS``), by seasonal naive, or skipped,
    as ``forecast.short_series`` says.

    The fallback is scored on the holdout like a model when at least one point is left
    before it, so its accuracy is reported, not assumed.
    """
    policy = cfg.forecast.short_series
    if policy == "skip" or not len(values):
        return SeriesResult(series_id, Status.SKIPPED, reason, device=device)
    horizon, holdout, m = cfg.forecast.horizon, cfg.forecast.holdout_steps, cfg.season_length
    baseline = _short_baseline(len(values), policy)

    def forecast_with(history: np.ndarray, steps: int) -> np.ndarray:
        if baseline == STATISTICAL:
            forecast: np.ndarray = statistical_forecast([history], steps, cfg.first_season)[0]
            return forecast
        if baseline == Baseline.SNAIVE:
            return seasonal_naive_forecast(history, steps, m)
        return naive_forecast(history, steps)

    forecast = forecast_with(values, horizon)
    reason += f"; forecast by {_BASELINE_NAMES[baseline]}"
    cutoffs = [cut for cut in (len(values) - holdout,) if cut > 0]
    fallback = SeriesResult(
        series_id, Status.FALLBACK, reason, forecast=forecast, device=device, baseline=baseline
    )
    if not cutoffs:
        return replace(
            fallback, reason=f"{reason} (no point before the {holdout}-step holdout: no metrics)"
        )
    backtests = np.stack([forecast_with(values[:cut], holdout) for cut in cutoffs])
    mean, per_window = score_windows(values, backtests, cutoffs, m)
    return replace(
        fallback, metrics=mean, window_metrics=per_window, backtest=backtests, cutoffs=cutoffs
    )


_BASELINE_NAMES = {
    STATISTICAL: "the statistical models (damped trend and Theta)",
    Baseline.NAIVE: "naive",
    Baseline.SNAIVE: "seasonal naive",
}


def _short_baseline(n_points: int, policy: str) -> str:
    """The baseline a short series of ``n_points`` gets under ``forecast.short_series``."""
    if policy == "snaive":
        return Baseline.SNAIVE
    return STATISTICAL if n_points >= MIN_TREND_POINTS else Baseline.NAIVE
