"""Many histories in, their forecasts out: views, one stack, an optional shared start.

Each history gets its own model and its own view (``views``). With
``train.shared_start`` the models of one group (one backtest window of a shard, or its
refits) first train as one model with tied weights on all the group's windows; each
model then starts from its group's weights and is fine-tuned on its own series alone,
judged against where it began.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lstm_worker.config import ModelConfig, WorkerConfig
from lstm_worker.data.models import find_model
from lstm_worker.data.place import Place
from lstm_worker.forecast import recursive_forecast
from lstm_worker.model import LSTMForecaster
from lstm_worker.pools import Pool, make_pool, own_pools
from lstm_worker.result import StoredModel
from lstm_worker.stacked import StackedLSTM
from lstm_worker.train import StackFit, train_stacked
from lstm_worker.views import FittedView, ModelView, inverse_rows, model_views, refit_view
from lstm_worker.windows import context_extra, own_contexts


@dataclass(frozen=True)
class StackForecast:
    forecasts: np.ndarray  # (K, horizon) in the input's units
    views: list[ModelView]
    fit: StackFit  # each history's own model (after the shared start, if any)
    forecast_seconds: float  # the recursive forecasts after training, all K of them
    shared: StackFit | None  # the tied models, one per group, each model started from
    calendar: np.ndarray  # (K,) bool: the model reads the calendar (its weights are not zero)


def forecast_many(
    histories: Sequence[np.ndarray],
    horizon: int,
    cfg: WorkerConfig,
    seeds: Sequence[int],
    device: torch.device,
    groups: Sequence[int] | None = None,
    warm: Sequence[StoredModel | None] | None = None,
    covariates: Sequence[np.ndarray] | None = None,
) -> StackForecast:
    """Train one model per history (K of them) as one stack, forecast ``horizon`` steps
    past each history's end; ``groups`` (K,) names the shared start each model takes.
    ``covariates`` (K,), each (m, E): a history's known inputs (``cfg.covariates``) from
    its first point on, past its end as far as they are known (a backtest's are the
    actual values of its holdout: they were known in advance).

    A model that starts from nothing keeps a calendar only where it earns its place
    (``_calendar_earned``); a warm one keeps what its stored model chose (a dropped
    calendar's weights stay at zero), and one from a shared start keeps it. Which kept
    it is in the weights (``reads_calendar``).

    ``warm`` (K,): a stored model a history's model starts from (None: cold), for at most
    ``_warm_epochs``. Its view (scaler, skip input, deseasonalisation) is fitted to
    tonight's history as a cold model's is: on the M4 Hourly backtest nights
    (``bench/nightly.py --split backtest``) night 3 scored OWA 0.464 so, 0.475 keeping
    the stored view, 0.461 trained cold.
    """
    warm = warm or [None] * len(histories)
    known = covariates if covariates is not None else [None] * len(histories)
    views = model_views(histories, cfg, known)
    extra = context_extra(cfg.seasons)
    start, shared, max_epochs, hold = None, None, None, None
    if any(w is not None for w in warm):
        start = _warm_start(cfg, seeds, warm)
        max_epochs = np.array([_warm_epochs(w, v, cfg) for w, v in zip(warm, views, strict=True)])
        if cfg.calendar:
            dropped = np.array([w is not None and not reads_calendar(w, cfg) for w in warm])
            hold = np.zeros((len(warm), cfg.inputs), dtype=bool)
            hold[dropped, cfg.calendar_rows] = True
    elif cfg.train.shared_start and groups is not None:
        names = sorted(set(groups))
        members = [[v for v, g in zip(views, groups, strict=True) if g == name] for name in names]
        shared = train_stacked(
            [make_pool(m, cfg, extra) for m in members],
            cfg,
            [zlib.crc32(f"{cfg.seed}:shared:{name}".encode()) for name in names],
            device,
        )
        start = shared.model.repeat([names.index(g) for g in groups])
    pools = own_pools(views, cfg, extra)
    if start is None and cfg.calendar:
        fit = _calendar_earned(pools, cfg, seeds, device)
    else:
        fit = train_stacked(pools, cfg, seeds, device, start, max_epochs, hold=hold)
    started = time.perf_counter()
    forecasts = _forecast(fit.model, views, horizon, cfg, device)
    forecast_seconds = time.perf_counter() - started
    calendar = np.zeros(len(views), dtype=bool)
    if cfg.calendar:  # a model that dropped its calendar has its weights at zero
        weights = fit.model.w_ih[0].detach()[:, cfg.calendar_rows]
        calendar = (weights != 0).flatten(1).any(dim=1).cpu().numpy()
    return StackForecast(forecasts, views, fit, forecast_seconds, shared, calendar)


def _warm_epochs(stored: StoredModel | None, view: ModelView, cfg: WorkerConfig) -> int:
    """At most how many epochs a model trains: a cold one ``train.epochs``; a warm one
    ``train.warm_epochs``, or ``train.warm_epochs_new_skip`` where tonight's history chose
    another skip input than its stored model's (a quarter of M4 Hourly's series, night
    to night): its residual is now over another baseline."""
    if stored is None:
        return cfg.train.epochs
    if stored.view.lag != view.lag:
        return cfg.train.warm_epochs_new_skip
    return cfg.train.warm_epochs


def _calendar_earned(
    pools: Sequence[Pool], cfg: WorkerConfig, seeds: Sequence[int], device: torch.device
) -> StackFit:
    """Each series' model with the calendar and, in the same stack, the same seed's model
    without it (its calendar weights held at their zero start); a series keeps the
    calendar only where that forecasts its validation tail better. Trained with it for
    every series, the hour cost M4 Hourly MASE (backtest, seeds 0, 1, 2: 0.895 against
    0.893 without; the window already shows the day); kept per series, 0.889. Training
    costs twice as much (``bench/accuracy.py``; docs/benchmarks.md)."""
    k = len(pools)
    hold = np.zeros((2 * k, cfg.inputs), dtype=bool)
    hold[k:, cfg.calendar_rows] = True
    both = train_stacked([*pools, *pools], cfg, [*seeds, *seeds], device, hold=hold)
    kept = both.validated[:k] & (both.best_loss[:k] < both.best_loss[k:])
    pick = np.where(kept, np.arange(k), np.arange(k, 2 * k))
    return StackFit(
        model=both.model.repeat(pick.tolist()).eval(),
        epochs=both.epochs[pick],
        train_losses=both.train_losses[:, pick],
        diverged=both.diverged[pick],
        seconds=both.seconds,
        best_loss=both.best_loss[pick],
        validated=both.validated[pick],
    )


def reads_calendar(stored: StoredModel, cfg: WorkerConfig) -> bool:
    """Whether a stored model kept its calendar: one that dropped it has its calendar
    weights at zero, where they started and were held."""
    return bool(np.any(stored.params["w_ih.0"][cfg.calendar_rows] != 0))


def forecast_stored(
    histories: Sequence[np.ndarray],
    stored: Sequence[StoredModel],
    horizon: int,
    cfg: WorkerConfig,
    device: torch.device,
    covariates: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Forecast each history (K of them) ``horizon`` steps with its stored model, no
    training: (K, horizon) in the input's units; ``covariates`` as ``forecast_many``'s."""
    known = covariates if covariates is not None else [None] * len(histories)
    views = [
        refit_view(h, m.view, cfg, c) for h, m, c in zip(histories, stored, known, strict=True)
    ]
    return _forecast(_stacked(cfg, stored).to(device), views, horizon, cfg, device)


def _stacked(cfg: WorkerConfig, stored: Sequence[StoredModel]) -> StackedLSTM:
    """One stack of stored models, in order."""
    params = {
        name: torch.from_numpy(np.stack([m.params[name] for m in stored]))
        for name in stored[0].params
    }  # each (K, ...)
    return StackedLSTM.from_params(cfg.model, params)


def _warm_start(
    cfg: WorkerConfig, seeds: Sequence[int], warm: Sequence[StoredModel | None]
) -> StackedLSTM:
    """A stack of the stored models, and a seed's fresh model where there is none (only
    then are fresh weights drawn: a stack of a thousand warm models skips that cost)."""
    found = [w for w in warm if w is not None]
    if len(found) == len(warm):
        return _stacked(cfg, found)
    cold = StackedLSTM(cfg.model, seeds, cfg.inputs)
    params = {name: p.detach().clone() for name, p in cold.named_parameters()}
    for k, stored in enumerate(warm):
        if stored is not None:
            for name, value in stored.params.items():
                params[name][k] = torch.from_numpy(value)
    return StackedLSTM.from_params(cold.cfg, params)


def _forecast(
    model: StackedLSTM,
    views: Sequence[ModelView],
    horizon: int,
    cfg: WorkerConfig,
    device: torch.device,
) -> np.ndarray:
    """Each model's recursive forecast from the end of its view: (K, horizon), in units."""
    extra = context_extra(cfg.seasons)
    contexts = own_contexts(views, len, cfg.lookback, extra, horizon)
    context = torch.from_numpy(np.stack([c.values for c in contexts])[:, None]).to(
        device
    )  # (K, 1, C)
    first = torch.tensor([[c.start] for c in contexts], device=device)  # (K, 1)
    lags = torch.tensor([[v.lag] for v in views], device=device)  # (K, 1)
    drift = torch.tensor([[v.drift] for v in views], device=device)  # (K, 1)
    known = None
    if cfg.covariates:  # (K, 1, C + horizon, E)
        known = torch.from_numpy(
            np.stack([c.covariates for c in contexts if c.covariates is not None])[:, None]
        ).to(device)
    predicted = recursive_forecast(model, context, lags, horizon, cfg.lookback, first, known, drift)
    levels = np.array([[c.level] for c in contexts])  # (K, 1)
    predicted = predicted[:, 0].cpu().numpy() + levels  # (K, 1, horizon) -> (K, horizon)
    return inverse_rows(views, predicted)


def load_model(
    output_dir: str | Path | Place, series_id: object, window: int = -1
) -> tuple[LSTMForecaster, FittedView]:
    """One series' stored model (the refit, or backtest ``window``) as a plain
    ``LSTMForecaster`` in eval mode, with the view it saw its history through."""
    model, stored = find_model(output_dir, series_id, window)
    cfg = ModelConfig(**model)
    params = {k: torch.from_numpy(v[None]) for k, v in stored.params.items()}  # a stack of one
    single = LSTMForecaster(cfg, inputs=stored.params["w_ih.0"].shape[0])
    single.load_state_dict(StackedLSTM.from_params(cfg, params).state_for(0))
    return single.eval(), stored.view
