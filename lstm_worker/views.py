"""One model's view of one history: what is resolved per series from its own data.

A task trains one model per backtest window and one on the whole history of each series.
Each model sees its history through a ``ModelView``: seasonal indices divided out (when
asked and a season is there), a scaler, the skip input it predicts the residual over,
its own window length and validation tail. Everything here is fitted on that history
alone, so a backtest model never sees the points it is scored on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.inputs import LEVEL, LEVEL_ALPHA, THETA, ChannelScaler, Scaler
from lstm_worker.season import (
    autocorrelations,
    season_profile,
    seasonal_indices,
    seasonality_test,
)
from lstm_worker.smoothing import least_squares_slope

_ORIGINS = 3  # rolling origins on which the auto skip compares its baselines
_VAL_SHARE = 3  # a series keeps a validation tail when it has this many times its length


@dataclass(frozen=True)
class ModelView:
    """One history (n,) as its model sees it; ``scaled`` is the model-space series."""

    scaled: np.ndarray  # (n,) float32: deseasonalised, then scaled
    scaler: Scaler
    indices: np.ndarray | None  # (period,) seasonal indices divided out, by t % period
    lag: int  # the skip input: 0 none, 1 the last value, m the value one season back
    # (LEVEL: the smoothed level; THETA: that level plus ``drift``)
    lookback: int  # this model's window (at most the job's model.lookback)
    val: int  # points at the end of ``scaled`` held out to stop early (0: none)
    window_level: bool = True  # each window and forecast is relative to its own level
    covariates: np.ndarray | None = None  # (m >= n, E) float32 known inputs, scaled
    covariate_scaler: ChannelScaler | None = None  # shift 0, scale 1 for calendar channels
    drift: float = 0.0  # THETA: the skip's offset over the level, in model space (else 0)

    def __len__(self) -> int:
        return len(self.scaled)

    @property
    def skip(self) -> str:
        """The skip input's name, as written in metrics.parquet."""
        names = {0: "none", 1: "last", LEVEL: "level", THETA: "theta"}
        return names.get(self.lag, f"season {self.lag}")

    @property
    def targets(self) -> int:
        """Training targets of the fit part: points with a previous value and a skip input."""
        return len(self) - self.val - 1 - max(self.lag - 1, 0)

    def inverse(self, predicted: np.ndarray) -> np.ndarray:
        """Model-space values (..., H) following the history back to the input's units."""
        values = self.scaler.inverse(predicted)
        if self.indices is not None:
            values = values * season_profile(self.indices, len(self), predicted.shape[-1])
        return values


def model_view(
    history: np.ndarray, cfg: WorkerConfig, covariates: np.ndarray | None = None
) -> ModelView:
    """Resolve how one model sees ``history`` (n,) under ``cfg``; ``covariates`` (m >= n,
    E): its known inputs (``cfg.covariates``) over the history and the steps after it,
    each feature channel scaled on the history's n rows alone."""
    n, seasons = len(history), cfg.seasons
    # every season's test reads these: computed once, to the longest season that fits
    acf = autocorrelations(history, min(max(seasons), n // 3)) if seasons and n > 1 else None
    indices = None
    if cfg.model.deseasonalise and seasons:
        found = seasonal_indices(history, seasons[0], acf)
        indices = None if np.all(found == 1.0) else found
    skip, horizon = cfg.model.skip, cfg.forecast.horizon
    lag, indices = choose_skip(history, indices, skip, seasons, horizon, acf)
    adjusted = history / season_profile(indices, 0, n) if indices is not None else history
    scaler = Scaler.fit(adjusted, cfg.model.scaler)
    known = None if covariates is None else covariate_scaler(covariates[:n], cfg)
    return _windowed(history, scaler, indices, lag, cfg, covariates, known)


def covariate_scaler(history: np.ndarray, cfg: WorkerConfig) -> ChannelScaler:
    """Per channel of ``history`` (n, E): the calendar's as they are, each feature's
    fitted on these rows (the training part) as the target's is."""
    shift, scale = np.zeros(history.shape[1]), np.ones(history.shape[1])
    for channel in range(cfg.unscaled, history.shape[1]):
        fitted = Scaler.fit(history[:, channel], cfg.model.scaler)
        shift[channel], scale[channel] = fitted.shift, fitted.scale
    return ChannelScaler(shift, scale)


@dataclass(frozen=True)
class FittedView:
    """What a view fitted on its history: enough to see a newer history of the same series
    (one that starts where it did) as the model it trained did, to forecast with it or to
    train it further."""

    shift: float
    scale: float
    indices: tuple[float, ...] | None
    lag: int
    covariate_shift: tuple[float, ...] = ()  # per known input channel
    covariate_scale: tuple[float, ...] = ()
    drift: float = 0.0  # THETA's offset over the level (a store from before it: 0)

    @staticmethod
    def of(view: ModelView) -> FittedView:
        indices = None if view.indices is None else tuple(float(i) for i in view.indices)
        known = view.covariate_scaler
        shift = () if known is None else tuple(float(v) for v in known.shift)
        scale = () if known is None else tuple(float(v) for v in known.scale)
        scaler = view.scaler
        return FittedView(scaler.shift, scaler.scale, indices, view.lag, shift, scale, view.drift)


def refit_view(
    history: np.ndarray,
    fitted: FittedView,
    cfg: WorkerConfig,
    covariates: np.ndarray | None = None,
) -> ModelView:
    """``history`` seen through a stored model's fitted view; its window and validation
    tail follow from its length, as for a fresh view."""
    indices = None if fitted.indices is None else np.array(fitted.indices)
    known = None
    if covariates is not None:
        known = ChannelScaler(np.array(fitted.covariate_shift), np.array(fitted.covariate_scale))
    scaler = Scaler(fitted.shift, fitted.scale)
    return _windowed(history, scaler, indices, fitted.lag, cfg, covariates, known, fitted.drift)


def _windowed(
    history: np.ndarray,
    scaler: Scaler,
    indices: np.ndarray | None,
    lag: int,
    cfg: WorkerConfig,
    covariates: np.ndarray | None = None,
    known: ChannelScaler | None = None,
    drift: float | None = None,
) -> ModelView:
    """The view of ``history`` with these fitted parts, and the window its length allows;
    ``drift`` None: THETA's fitted on the history, as its scaler is (``theta_drift``)."""
    n = len(history)
    adjusted = history / season_profile(indices, 0, n) if indices is not None else history
    scaled = scaler.transform(adjusted)
    val = cfg.val_steps if n >= _VAL_SHARE * cfg.val_steps else 0
    level = cfg.model.normalise == "window"
    inputs = None if covariates is None or known is None else known.transform(covariates)
    if drift is None:
        drift = theta_drift(scaled) if lag == THETA else 0.0
    view = ModelView(scaled, scaler, indices, lag, cfg.lookback, val, level, inputs, known, drift)
    if view.targets < cfg.lookback:  # a short history: a shorter window of its own
        view = replace(view, lookback=max(1, view.targets))
    return view


def choose_skip(
    history: np.ndarray,
    indices: np.ndarray | None,
    skip: str,
    seasons: tuple[int, ...],
    horizon: int,
    acf: np.ndarray | None = None,
) -> tuple[int, np.ndarray | None]:
    """The skip input for one history (a lag, ``LEVEL``, ``THETA`` or 0) and the seasonal
    indices it sees the history through (None: as it is): fixed by ``skip``, or (auto) the
    pair whose baseline forecast the history's own last ``_ORIGINS`` horizons best:
    seasonal naive, or simple exponential smoothing or naive, each with the season found
    (``indices``) divided out or not. A seasonal skip carries the season itself; a season
    is its candidate only where M4's test finds it and two of its periods fit before the
    earliest origin. Theta is not a candidate: among them, on the backtests of the seven
    benchmark sets, it lost as often as it won (docs/benchmarks.md)."""
    n = len(history)
    usable = [m for m in seasons if n >= 2 * m + horizon and seasonality_test(history, m, acf)]
    fixed = {"none": 0, "last": 1, "level": LEVEL, "theta": THETA}
    if skip in fixed:
        return fixed[skip], indices
    if skip == "season":
        return (usable[0], None) if usable else (1, indices)
    plain = [LEVEL, 1]
    candidates = [(m, None) for m in usable] + [(lag, indices) for lag in plain]
    if indices is not None:
        candidates += [(lag, None) for lag in plain]
    origins = [n - horizon * j for j in range(1, _ORIGINS + 1)]
    origins = [o for o in origins if o >= max([2, *usable])] or [max(1, n - horizon)]
    errors = [
        np.mean(
            [
                np.abs(
                    history[o : o + horizon] - _baseline(history[:o], lag, horizon, seen)[: n - o]
                ).mean()
                for o in origins
            ]
        )
        for lag, seen in candidates
    ]
    return candidates[int(np.argmin(errors))]  # ties: the earlier candidate


def theta_drift(values: np.ndarray) -> float:
    """THETA's offset over the smoothed level: the Theta method's one-step drift, half the
    least-squares slope of ``values`` over the level's weight (0 for one point). Fed its
    own forecasts, level plus this drift rises half the slope a step, as Theta's does."""
    return least_squares_slope(values) / 2 / LEVEL_ALPHA


@functools.lru_cache(maxsize=64)
def _decay(n: int) -> np.ndarray:
    """The level's weights over n points, oldest first: (1 - alpha)^(n-1) .. 1 (read-only:
    shared by every baseline of that length)."""
    weights = (1 - LEVEL_ALPHA) ** np.arange(n)[::-1]
    weights.flags.writeable = False
    return weights


def _baseline(history: np.ndarray, lag: int, steps: int, indices: np.ndarray | None) -> np.ndarray:
    """What a model that learned nothing forecasts with this skip input, in the input's
    units (a seasonal lag sees the series as it is; the others with its season out)."""
    if lag > 1:
        return np.resize(history[-lag:], steps)
    profile = (
        np.ones(len(history) + steps)
        if indices is None
        else season_profile(indices, 0, len(history) + steps)
    )
    adjusted = history / profile[: len(history)]
    if lag in (LEVEL, THETA):
        start = adjusted[0]
        weights = _decay(len(adjusted))  # newest first weight 1
        level: float = (
            LEVEL_ALPHA * np.sum(weights * adjusted) + (1 - LEVEL_ALPHA) ** len(adjusted) * start
        )
        drift = theta_drift(adjusted) if lag == THETA else 0.0
        value = level + drift * (1 + LEVEL_ALPHA * np.arange(steps))  # + d, + d + a d, ...
    else:
        value = np.full(steps, adjusted[-1])
    baseline: np.ndarray = value * profile[len(history) :]
    return baseline
