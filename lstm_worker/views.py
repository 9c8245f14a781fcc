"""One model's view of one history: what is resolved per series from its own data.

A task trains one model per backtest window and one on the whole history of each series.
Each model sees its history through a ``ModelView``: seasonal indices divided out (when
asked and a season is there), a scaler, the skip input it predicts the residual over,
its own window length and validation tail. Everything here is fitted on that history
alone, so a backtest model never sees the points it is scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lstm_worker.config import WorkerConfig
from lstm_worker.inputs import LEVEL, THETA, ChannelScaler, Scaler
from lstm_worker.rows import grouped
from lstm_worker.season import autocorrelation_rows, season_profile, seasonal_index_rows
from lstm_worker.skip import choose_skips, theta_drift

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
        """Model-space values (H,) following the history back to the input's units."""
        values: np.ndarray = inverse_rows([self], predicted[None])[0]
        return values


def inverse_rows(views: Sequence[ModelView], predicted: np.ndarray) -> np.ndarray:
    """Model-space values (K, H), row k following view k's history back to the input's
    units (its scaler undone, then its season multiplied back), each row as alone."""
    shift = np.array([[v.scaler.shift] for v in views])
    scale = np.array([[v.scaler.scale] for v in views])
    values: np.ndarray = predicted.astype(np.float64) * scale + shift
    steps = predicted.shape[-1]
    profiles = {
        k: season_profile(v.indices, len(v), steps)
        for k, v in enumerate(views)
        if v.indices is not None
    }
    if profiles:
        seasonal = list(profiles)
        values[seasonal] = values[seasonal] * np.stack(list(profiles.values()))
    return values


def model_view(
    history: np.ndarray, cfg: WorkerConfig, covariates: np.ndarray | None = None
) -> ModelView:
    """Resolve how one model sees ``history`` (n,) under ``cfg``; ``covariates`` (m >= n,
    E): its known inputs (``cfg.covariates``) over the history and the steps after it,
    each feature channel scaled on the history's n rows alone."""
    return model_views([history], cfg, [covariates])[0]


def model_views(
    histories: Sequence[np.ndarray],
    cfg: WorkerConfig,
    covariates: Sequence[np.ndarray | None] | None = None,
) -> list[ModelView]:
    """``model_view`` of each history, those of one length resolved together as rows of
    one array (a stack's backtest and refit histories mostly share a few lengths): each
    view is the one its history gets alone."""
    known = list(covariates) if covariates is not None else [None] * len(histories)
    pairs = list(zip(histories, known, strict=True))
    return grouped(
        pairs,
        lambda pair: len(pair[0]),
        lambda alike: _views_of(np.stack([h for h, _ in alike]), cfg, [c for _, c in alike]),
    )


def _views_of(
    values: np.ndarray, cfg: WorkerConfig, covariates: list[np.ndarray | None]
) -> list[ModelView]:
    """The views of histories of one length, the rows of ``values`` (G, n)."""
    n, seasons = values.shape[1], cfg.seasons
    # every season's test reads these: computed once, to the longest season that fits
    acf = autocorrelation_rows(values, min(max(seasons), n // 3)) if seasons and n > 1 else None
    indices: list[np.ndarray | None] = [None] * len(values)
    if cfg.model.deseasonalise and seasons:
        found = seasonal_index_rows(values, seasons[0], acf)
        indices = [None if np.all(row == 1.0) else row for row in found]
    skip, horizon = cfg.model.skip, cfg.forecast.horizon
    choices = choose_skips(values, indices, skip, seasons, horizon, acf)
    profiles = np.stack(
        [np.ones(n) if seen is None else season_profile(seen, 0, n) for _, seen in choices]
    )
    adjusted = values / profiles  # a history without a season divided out: as it is (x / 1)
    scalers = Scaler.fit_rows(adjusted, cfg.model.scaler)
    views = []
    for row, (lag, seen), scaler, track in zip(adjusted, choices, scalers, covariates, strict=True):
        known = None if track is None else covariate_scaler(track[:n], cfg)
        views.append(_view(scaler.transform(row), scaler, seen, lag, cfg, track, known))
    return views


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
    n = len(history)
    adjusted = history / season_profile(indices, 0, n) if indices is not None else history
    scaled = scaler.transform(adjusted)
    return _view(scaled, scaler, indices, fitted.lag, cfg, covariates, known, fitted.drift)


def _view(
    scaled: np.ndarray,
    scaler: Scaler,
    indices: np.ndarray | None,
    lag: int,
    cfg: WorkerConfig,
    covariates: np.ndarray | None = None,
    known: ChannelScaler | None = None,
    drift: float | None = None,
) -> ModelView:
    """The view of a history as its model sees it (``scaled``), with these fitted parts,
    and the window its length allows; ``drift`` None: THETA's fitted on the history, as
    its scaler is (``theta_drift``)."""
    n = len(scaled)
    val = cfg.val_steps if n >= _VAL_SHARE * cfg.val_steps else 0
    level = cfg.model.normalise == "window"
    inputs = None if covariates is None or known is None else known.transform(covariates)
    if drift is None:
        drift = theta_drift(scaled) if lag == THETA else 0.0
    view = ModelView(scaled, scaler, indices, lag, cfg.lookback, val, level, inputs, known, drift)
    if view.targets < cfg.lookback:  # a short history: a shorter window of its own
        view = replace(view, lookback=max(1, view.targets))
    return view
