"""Train a stack of independent models at once, top to bottom.

Every model keeps its own everything: weights, Adam moments and step count, learning
rate and plateau counter, early-stopping state, best weights, window order. Each
batch holds one batch of windows per model, ``(K, B, L)``; masks keep padded windows,
padded steps, models whose windows ran out this epoch, and models that stopped early
out of every update. The loss is the sum of the per-model mean losses, so each model's
gradient is exactly the gradient of its own loss.

A model learns from a ``Pool``: the windows and validation tails of one series' view,
or, for a shared start, of every series of one backtest window at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import recursive_forecast
from lstm_worker.pools import Pool, stack_pools
from lstm_worker.stacked import StackedLSTM
from lstm_worker.train import LOSSES

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults
_PLATEAU_THRESHOLD = 1e-4  # torch's ReduceLROnPlateau default (relative)


@dataclass(frozen=True)
class ShardFit:
    model: StackedLSTM  # best weights restored
    epochs: np.ndarray  # (K,) epochs each model trained
    train_losses: np.ndarray  # (epochs run, K) mean training loss per epoch; NaN once stopped
    diverged: np.ndarray  # (K,) bool: the loss stopped being finite
    seconds: float
    best_loss: np.ndarray  # (K,) the best weights' loss: on the validation tail where validated
    validated: np.ndarray  # (K,) bool: judged on a validation tail (else the training loss)


def _per_model_loss(
    name: str,
    pred: torch.Tensor,
    target: torch.Tensor,
    supervised: torch.Tensor,
    valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """pred, target, supervised: (K, B, T); valid: (K, B) -> (mean loss per model (K,),
    count (K,)). A window's loss is the mean over its supervised steps."""
    steps = LOSSES[name](pred, target, reduction="none") * supervised  # (K, B, T)
    per_window = steps.sum(dim=2) / supervised.sum(dim=2).clamp(min=1)  # (K, B)
    count = valid.sum(dim=1)  # (K,)
    total = torch.where(valid, per_window, torch.zeros_like(per_window)).sum(dim=1)
    return total / count.clamp(min=1), count


def _grad(p: torch.Tensor) -> torch.Tensor:
    """p's gradient; every parameter of the stack takes part in every forward."""
    if p.grad is None:
        raise RuntimeError("a parameter of the stack has no gradient")
    return p.grad


def _clip_per_model(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each model's slice of every parameter."""
    squares = [_grad(p).pow(2).flatten(1).sum(1) for p in params]  # each (K,)
    norms = sum(squares[1:], squares[0]).sqrt()  # (K,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        _grad(p).mul_(coef.view(-1, *[1] * (p.dim() - 1)))


def _validation_loss(
    model: StackedLSTM,
    data: dict[str, torch.Tensor],
    loss: str,
    length: int,
    judged: torch.Tensor,
) -> torch.Tensor:
    """Each ``judged`` (K,) model's mean loss over its validation tails, forecast
    recursively (K,); NaN for the rest and for a model with none. Once most models have
    stopped early, the few still training cost as few."""
    ids = judged.nonzero().squeeze(1)
    out = torch.full(judged.shape, torch.nan, device=judged.device)
    if len(ids) == 0:
        return out
    if len(ids) < len(judged):
        model = model.repeat(ids.tolist())
    target, valid = data["val_target"][ids], data["val_valid"][ids]
    known = data.get("val_covariates")
    predicted = recursive_forecast(
        model,
        data["val_context"][ids],
        data["val_lags"][ids],
        target.shape[-1],
        length,
        data["val_start"][ids],
        None if known is None else known[ids],
        data["val_drift"][ids],
    )  # (K', B, V)
    per_row = LOSSES[loss](predicted, target, reduction="none").mean(dim=2)  # (K', B)
    total = torch.where(valid, per_row, torch.zeros_like(per_row)).sum(dim=1)
    out[ids] = total / valid.sum(dim=1)  # NaN where no row is valid
    return out


def train_stacked(
    pools: Sequence[Pool],
    cfg: WorkerConfig,
    seeds: Sequence[int],
    device: torch.device,
    start: StackedLSTM | None = None,
    max_epochs: np.ndarray | None = None,
    hold: np.ndarray | None = None,
) -> ShardFit:
    """Fit one model per pool; model k starts from ``seeds[k]``'s initial weights, or,
    given ``start``, from ``start``'s model k (a fine-tune, judged against where it began),
    and trains at most ``max_epochs[k]`` epochs (default ``train.epochs``). ``hold`` (K, inputs)
    bool: each model's inputs whose first-layer weights stay where they start (their
    gradient is zeroed before clipping: the rest trains as if those inputs were not there)."""
    started = time.perf_counter()
    tc, length, k = cfg.train, cfg.lookback, len(pools)
    if max_epochs is not None:
        limit = torch.as_tensor(max_epochs, device=device)
    data = stack_pools(pools, device)
    x_pool, y_pool, n_train = data["x"], data["y"], data["n_train"]
    pad_pool, first_pool = data["pad"], data["first"]
    padded = bool(pad_pool.any())
    has_val = data["val_valid"].any(dim=1)  # (K,) models that stop on a validation tail
    orders = [torch.Generator().manual_seed(seed) for seed in seeds]
    batches_per_epoch = int(-(-int(n_train.max()) // tc.batch_size))
    steps_axis = torch.arange(length, device=device)
    if hold is not None:
        moving = torch.as_tensor(~hold, dtype=torch.float32, device=device)[..., None]  # (K, I, 1)

    model = (StackedLSTM(cfg.model, seeds, cfg.inputs) if start is None else start).to(device)
    params = list(model.parameters())
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    best_params = [p.detach().clone() for p in params]
    steps = torch.zeros(k, device=device)  # Adam step count per model
    lr = torch.full((k,), tc.lr, device=device)
    plateau_best = torch.full((k,), float("inf"), device=device)
    plateau_bad = torch.zeros(k, dtype=torch.long, device=device)
    best_loss = torch.full((k,), float("inf"), device=device)
    if has_val.any():  # the untrained model (its skip input's baseline) is a candidate too
        best_loss = torch.where(
            has_val, _validation_loss(model, data, tc.loss, length, has_val), best_loss
        )
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
        for m, (gen, count) in enumerate(zip(orders, n_train.tolist(), strict=True)):
            order[m, :count] = torch.randperm(count, generator=gen)
        order = order.to(device)
        loss_sum = torch.zeros(k, device=device)
        model.train()
        for batch in torch.split(order, tc.batch_size, dim=1):  # (K, B) window indices
            valid = (batch >= 0) & running[:, None]  # (K, B)
            active = valid.any(dim=1)  # (K,) models that update on this batch
            if not active.any():
                continue
            ids = active.nonzero().squeeze(1)  # (K',): only these models are computed
            rows = batch[ids].clamp(min=0)  # (K', B)
            x, y = (
                x_pool[ids[:, None], rows],
                y_pool[ids[:, None], rows],
            )  # (K', B, L, 2), (K', B, L)
            supervised = steps_axis >= first_pool[ids[:, None], rows][..., None]  # (K', B, L)
            pad = pad_pool[ids[:, None], rows] if padded else None  # (K', B)
            pred, _ = model(x, models=ids, start=pad)  # (K', B, L)
            loss, count = _per_model_loss(tc.loss, pred, y, supervised, valid[ids])
            model.zero_grad(set_to_none=False)
            loss.sum().backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
            loss_sum[ids] += (loss * count).detach()
            with torch.no_grad():
                if hold is not None:
                    _grad(model.w_ih[0]).mul_(moving)
                if tc.grad_clip is not None:
                    _clip_per_model(params, tc.grad_clip)
                _adam_step(params, moments, steps, lr, active, tc.weight_decay)

        train_loss = loss_sum / n_train.clamp(min=1)
        newly_diverged = running & ~torch.isfinite(train_loss)
        diverged |= newly_diverged
        running &= ~newly_diverged
        monitored = train_loss
        if has_val.any():  # forecast each tail recursively: the task the models are for
            judged = _validation_loss(model, data, tc.loss, length, running & has_val)
            monitored = torch.where(has_val, judged, train_loss)
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
        for p, best in zip(params, best_params, strict=True):
            mask = improved.view(-1, *[1] * (p.dim() - 1))
            best.copy_(torch.where(mask, p.detach(), best))
        stale = torch.where(improved, torch.zeros_like(stale), stale + running.long())
        running &= stale < tc.patience
        if max_epochs is not None:
            running &= epochs < limit

    with torch.no_grad():
        for p, best in zip(params, best_params, strict=True):
            p.copy_(best)
    model.eval()
    return ShardFit(
        model=model,
        epochs=epochs.cpu().numpy(),
        train_losses=np.stack(history) if history else np.empty((0, k)),
        diverged=diverged.cpu().numpy(),
        seconds=time.perf_counter() - started,
        best_loss=best_loss.cpu().numpy(),
        validated=has_val.cpu().numpy(),
    )


def _adam_step(
    params: Sequence[torch.Tensor],
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
    for p, (m, v) in zip(params, moments, strict=True):
        shape = (-1, *[1] * (p.dim() - 1))  # broadcast a (K,) over one parameter
        on = active.view(shape)
        grad = _grad(p) + weight_decay * p if weight_decay else _grad(p)
        m.copy_(torch.where(on, _BETA1 * m + (1 - _BETA1) * grad, m))
        v.copy_(torch.where(on, _BETA2 * v + (1 - _BETA2) * grad * grad, v))
        denom = v.sqrt() / bias2.sqrt().view(shape) + _EPS
        update = (lr / bias1).view(shape) * m / denom
        p.sub_(torch.where(on, update, torch.zeros_like(update)))
