"""Train a shard's K series as K independent models at once, top to bottom.

Every model keeps its own everything: weights, Adam moments and step count, learning
rate and plateau counter, early-stopping state, best weights, window order. Each
batch holds one batch of windows per model, ``(K, B, L)``; masks keep padded windows,
models whose windows ran out this epoch, and models that stopped early out of every
update. The loss is the sum of the per-model mean losses, so each model's gradient is
exactly the gradient of its own loss.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import WorkerConfig
from lstm_worker.stacked import StackedLSTM, stacked_forecast
from lstm_worker.train import LOSSES, first_supervised_step
from lstm_worker.windows import history_needed, make_windows

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults
_PLATEAU_THRESHOLD = 1e-4  # torch's ReduceLROnPlateau default (relative)


@dataclass(frozen=True)
class ShardFit:
    model: StackedLSTM  # best weights restored
    epochs: np.ndarray  # (K,) epochs each model trained
    train_losses: np.ndarray  # (epochs run, K) mean training loss per epoch; NaN once stopped
    diverged: np.ndarray  # (K,) bool: the loss stopped being finite
    seconds: float


def _pad(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-model window arrays (N_k, ...) into (K, N_max, ...) plus counts (K,)."""
    counts = torch.tensor([len(a) for a in arrays])
    padded = np.zeros((len(arrays), max(1, int(counts.max())), *arrays[0].shape[1:]), np.float32)
    for k, windows in enumerate(arrays):
        padded[k, : len(windows)] = windows
    return torch.from_numpy(padded), counts


def _per_model_loss(
    name: str, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """pred, target: (K, B, T); valid: (K, B) -> (mean loss per model (K,), count (K,))."""
    per_window = LOSSES[name](pred, target, reduction="none").mean(dim=2)  # (K, B)
    count = valid.sum(dim=1)  # (K,)
    total = torch.where(valid, per_window, torch.zeros_like(per_window)).sum(dim=1)
    return total / count.clamp(min=1), count


def _clip_per_model(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each model's slice of every parameter."""
    norms = sum(p.grad.pow(2).flatten(1).sum(1) for p in params).sqrt()  # (K,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(coef.view(-1, *[1] * (p.dim() - 1)))


def train_stacked(
    series: Sequence[np.ndarray], cfg: WorkerConfig, seeds: Sequence[int], device: torch.device
) -> ShardFit:
    """Fit one model per scaled series (each (n_k,) float32); model k uses ``seeds[k]``."""
    started = time.perf_counter()
    tc, lookback, k = cfg.train, cfg.model.lookback, len(series)
    windows = [make_windows(s, lookback, cfg.lag, cfg.val_steps, cfg.window_stride) for s in series]
    x_pool, n_train = _pad([w.x_train for w in windows])  # (K, N_max, L, I)
    y_pool, _ = _pad([w.y_train for w in windows])  # (K, N_max, L)
    keep = history_needed(lookback, cfg.lag)
    val_context = np.stack([s[: w.val_start][-keep:] for s, w in zip(series, windows)])  # (K, keep)
    val_target = np.stack([s[w.val_start:] for s, w in zip(series, windows)])  # (K, V)
    x_pool, y_pool, val_context, val_target = (
        torch.as_tensor(t).to(device) for t in (x_pool, y_pool, val_context, val_target))
    orders = [torch.Generator().manual_seed(seed) for seed in seeds]
    first = first_supervised_step(cfg)
    batches_per_epoch = int(-(-n_train.max() // tc.batch_size))

    model = StackedLSTM(cfg.model, seeds).to(device)
    params = list(model.parameters())
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    best_params = [p.detach().clone() for p in params]
    steps = torch.zeros(k, device=device)  # Adam step count per model
    lr = torch.full((k,), tc.lr, device=device)
    plateau_best = torch.full((k,), float("inf"), device=device)
    plateau_bad = torch.zeros(k, dtype=torch.long, device=device)
    best_loss = torch.full((k,), float("inf"), device=device)
    stale = torch.zeros(k, dtype=torch.long, device=device)
    running = torch.ones(k, dtype=torch.bool, device=device)
    diverged = torch.zeros(k, dtype=torch.bool, device=device)
    epochs = torch.zeros(k, dtype=torch.long, device=device)
    history = []

    for _epoch in range(tc.epochs):
        if not running.any():
            break
        epochs += running
        # Each model shuffles its own windows with its own generator; -1 pads the tail.
        order = torch.full((k, batches_per_epoch * tc.batch_size), -1, dtype=torch.long)
        for m, (gen, count) in enumerate(zip(orders, n_train.tolist())):
            order[m, :count] = torch.randperm(count, generator=gen)
        order = order.to(device)
        loss_sum = torch.zeros(k, device=device)
        model.train()
        for batch in order.split(tc.batch_size, dim=1):  # (K, B) window indices
            valid = (batch >= 0) & running[:, None]  # (K, B)
            active = valid.any(dim=1)  # (K,) models that update on this batch
            if not active.any():
                continue
            ids = active.nonzero().squeeze(1)  # (K',): only these models are computed
            rows = batch[ids].clamp(min=0)  # (K', B)
            x, y = x_pool[ids[:, None], rows], y_pool[ids[:, None], rows]  # (K', B, L, I), (K', B, L)
            pred, _ = model(x, models=ids)  # (K', B, L)
            loss, count = _per_model_loss(tc.loss, pred[..., first:], y[..., first:], valid[ids])
            model.zero_grad(set_to_none=False)
            loss.sum().backward()
            loss_sum[ids] += (loss * count).detach()
            with torch.no_grad():
                if tc.grad_clip is not None:
                    _clip_per_model(params, tc.grad_clip)
                _adam_step(params, moments, steps, lr, active, tc.weight_decay)

        train_loss = loss_sum / n_train.to(device).clamp(min=1)
        newly_diverged = running & ~torch.isfinite(train_loss)
        diverged |= newly_diverged
        running &= ~newly_diverged
        if val_target.shape[1]:  # forecast each tail recursively: the task the models are for
            predicted = stacked_forecast(model, val_context, val_target.shape[1], cfg.lag)
            monitored = LOSSES[tc.loss](predicted, val_target, reduction="none").mean(dim=1)
        else:
            monitored = train_loss
        history.append(torch.where(running, train_loss, torch.nan).cpu().numpy())

        # Reduce-on-plateau, per model (torch's rule: relative threshold, then patience).
        better = monitored < plateau_best * (1 - _PLATEAU_THRESHOLD)
        plateau_best = torch.where(running & better, monitored, plateau_best)
        plateau_bad = torch.where(running & ~better, plateau_bad + 1, torch.zeros_like(plateau_bad))
        cut = running & (plateau_bad > tc.lr_patience)
        lr = torch.where(cut, lr * tc.lr_factor, lr)
        plateau_bad = torch.where(cut, torch.zeros_like(plateau_bad), plateau_bad)
        # Early stopping, per model: keep the best weights, stop after `patience` stale epochs.
        improved = running & (monitored < best_loss)
        best_loss = torch.where(improved, monitored, best_loss)
        for p, best in zip(params, best_params):
            mask = improved.view(-1, *[1] * (p.dim() - 1))
            best.copy_(torch.where(mask, p.detach(), best))
        stale = torch.where(improved, torch.zeros_like(stale), stale + running.long())
        running &= stale < tc.patience

    with torch.no_grad():
        for p, best in zip(params, best_params):
            p.copy_(best)
    model.eval()
    return ShardFit(
        model=model,
        epochs=epochs.cpu().numpy(),
        train_losses=np.stack(history) if history else np.empty((0, k)),
        diverged=diverged.cpu().numpy(),
        seconds=time.perf_counter() - started,
    )


def _adam_step(
    params: list[torch.Tensor],
    moments: list[tuple[torch.Tensor, torch.Tensor]],
    steps: torch.Tensor,
    lr: torch.Tensor,
    active: torch.Tensor,
    weight_decay: float,
) -> None:
    """``torch.optim.Adam`` (L2 weight decay) with a step count and lr per model."""
    steps += active
    bias1 = (1 - _BETA1**steps).clamp(min=1e-12)  # (K,)
    bias2 = (1 - _BETA2**steps).clamp(min=1e-12)
    for p, (m, v) in zip(params, moments):
        shape = (-1, *[1] * (p.dim() - 1))  # broadcast a (K,) over one parameter
        on = active.view(shape)
        grad = p.grad + weight_decay * p if weight_decay else p.grad
        m.copy_(torch.where(on, _BETA1 * m + (1 - _BETA1) * grad, m))
        v.copy_(torch.where(on, _BETA2 * v + (1 - _BETA2) * grad * grad, v))
        denom = v.sqrt() / bias2.sqrt().view(shape) + _EPS
        update = (lr / bias1).view(shape) * m / denom
        p.sub_(torch.where(on, update, torch.zeros_like(update)))
