"""Many histories in, their forecasts out: views, one stack, an optional shared start.

Each history gets its own model and its own view (``views``). With
``train.shared_start`` the models of one group (one backtest window of a shard, or its
refits) first train as one model with tied weights on all the group's windows; each
model then starts from its group's weights and is fine-tuned on its own series alone,
judged against where it began.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import recursive_forecast
from lstm_worker.shard_train import ShardFit, make_pool, train_stacked
from lstm_worker.views import ModelView, model_view
from lstm_worker.windows import context_extra, forecast_context


@dataclass(frozen=True)
class StackForecast:
    forecasts: np.ndarray  # (K, horizon) in the input's units
    views: list[ModelView]
    fit: ShardFit  # each history's own model (after the shared start, if any)
    shared: ShardFit | None  # the tied models, one per group, each model started from


def forecast_many(
    histories: Sequence[np.ndarray],
    horizon: int,
    cfg: WorkerConfig,
    seeds: Sequence[int],
    device: torch.device,
    groups: Sequence[int] | None = None,
) -> StackForecast:
    """Train one model per history (K of them) as one stack, forecast ``horizon`` steps
    past each history's end; ``groups`` (K,) names the shared start each model takes."""
    views = [model_view(history, cfg) for history in histories]
    extra = context_extra(views)
    start, shared = None, None
    if cfg.train.shared_start and groups is not None:
        names = sorted(set(groups))
        members = [[v for v, g in zip(views, groups, strict=True) if g == name] for name in names]
        shared = train_stacked(
            [make_pool(m, cfg, extra) for m in members],
            cfg,
            [zlib.crc32(f"{cfg.seed}:shared:{name}".encode()) for name in names],
            device,
        )
        start = shared.model.repeat([names.index(g) for g in groups])
    fit = train_stacked([make_pool([v], cfg, extra) for v in views], cfg, seeds, device, start)
    contexts = [forecast_context(v, len(v), cfg.lookback, extra) for v in views]
    context = torch.from_numpy(np.stack([c for c, _, _ in contexts])[:, None]).to(
        device
    )  # (K, 1, C)
    first = torch.tensor([[s] for _, s, _ in contexts], device=device)  # (K, 1)
    lags = torch.tensor([[v.lag] for v in views], device=device)  # (K, 1)
    predicted = recursive_forecast(fit.model, context, lags, horizon, cfg.lookback, first)
    levels = np.array([[level] for _, _, level in contexts])  # (K, 1)
    predicted = predicted[:, 0].cpu().numpy() + levels  # (K, 1, horizon) -> (K, horizon)
    forecasts = np.stack([v.inverse(p) for v, p in zip(views, predicted, strict=True)])
    return StackForecast(forecasts, views, fit, shared)
