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
from typing import Protocol

import numpy as np
import torch
from torch import nn

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import recursive_forecast
from lstm_worker.optim import adam_step, clip_per_model, grad_of
from lstm_worker.pools import Pool, StackedPools, stack_pools
from lstm_worker.stacked import StackedLSTM


class _Loss(Protocol):
    """A loss of ``torch.nn.functional``: (pred, target) -> its reduction."""

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, /, *, reduction: str = ...
    ) -> torch.Tensor: ...


LOSSES: dict[str, _Loss] = {
    "mae": nn.functional.l1_loss,
    "mse": nn.functional.mse_loss,
    "huber": nn.functional.huber_loss,
}  # by train.loss

_PLATEAU_THRESHOLD = 1e-4  # torch's ReduceLROnPlateau default (relative)


@dataclass(frozen=True)
class StackFit:
    model: StackedLSTM  # best weights restored
    epochs: np.ndarray  # (K,) epochs each model trained
    train_losses: np.ndarray  # (epochs run, K) mean training loss per epoch; NaN once stopped
    diverged: np.ndarray  # (K,) bool: the loss stopped being finite
    seconds: float  # the training loop's (its pools and initial weights are set up before)
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


def _validation_loss(
    model: StackedLSTM,
    data: StackedPools,
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
    target, valid = data.val_target[ids], data.val_valid[ids]
    known = data.val_covariates
    predicted = recursive_forecast(
        model,
        data.val_context[ids],
        data.val_lags[ids],
        target.shape[-1],
        length,
        data.val_start[ids],
        None if known is None else known[ids],
        data.val_drift[ids],
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
) -> StackFit:
    """Fit one model per pool; model k starts from ``seeds[k]``'s initial weights, or,
    given ``start``, from ``start``'s model k (a fine-tune, judged against where it began),
    and trains at most ``max_epochs[k]`` epochs (default ``train.epochs``). ``hold`` (K, inputs)
    bool: each model's inputs whose first-layer weights stay where they start (their
    gradient is zeroed before clipping: the rest trains as if those inputs were not there)."""
    tc, k = cfg.train, len(pools)
    data = stack_pools(pools, device)
    has_val = data.val_valid.any(dim=1)  # (K,) models that stop on a validation tail
    orders = [torch.Generator().manual_seed(seed) for seed in seeds]  # each model's shuffle
    limit = None if max_epochs is None else torch.as_tensor(max_epochs, device=device)
    moving = None  # (K, I, 1): 0 where a first-layer input weight is held
    if hold is not None:
        moving = torch.as_tensor(~hold, dtype=torch.float32, device=device)[..., None]

    model = (StackedLSTM(cfg.model, seeds, cfg.inputs) if start is None else start).to(device)
    run = _Run.begin(model, tc.lr)
    started = time.perf_counter()  # the loop's time: the pools and weights are the host's
    if has_val.any():  # the untrained model (its skip input's baseline) is a candidate too
        judged = _validation_loss(model, data, tc.loss, cfg.lookback, has_val)
        run.best_loss = torch.where(has_val, judged, run.best_loss)
    history = []
    for _epoch in range(tc.epochs):
        if not run.running.any():
            break
        run.epochs += run.running
        order = _epoch_order(orders, data.n_train, tc.batch_size, device)
        train_loss = _train_epoch(model, data, order, run, cfg, moving)
        newly_diverged = run.running & ~torch.isfinite(train_loss)
        run.diverged |= newly_diverged
        run.running &= ~newly_diverged
        monitored = train_loss
        if has_val.any():  # forecast each tail recursively: the task the models are for
            judged = _validation_loss(model, data, tc.loss, cfg.lookback, run.running & has_val)
            monitored = torch.where(has_val, judged, train_loss)
        history.append(torch.where(run.running, train_loss, torch.nan).cpu().numpy())
        _end_epoch(run, monitored, cfg)
        if limit is not None:
            run.running &= run.epochs < limit

    with torch.no_grad():
        for p, best in zip(run.params, run.best_params, strict=True):
            p.copy_(best)
    model.eval()
    return StackFit(
        model=model,
        epochs=run.epochs.cpu().numpy(),
        train_losses=np.stack(history) if history else np.empty((0, k)),
        diverged=run.diverged.cpu().numpy(),
        seconds=time.perf_counter() - started,
        best_loss=run.best_loss.cpu().numpy(),
        validated=has_val.cpu().numpy(),
    )


@dataclass
class _Run:
    """Where each of the K models stands: its Adam state, lr, plateau and early-stopping
    counters, best weights so far; every counter (K,)."""

    params: Sequence[torch.Tensor]
    moments: list[tuple[torch.Tensor, torch.Tensor]]  # Adam's m and v per parameter
    best_params: list[torch.Tensor]
    steps: torch.Tensor  # Adam steps taken
    lr: torch.Tensor
    plateau_best: torch.Tensor
    plateau_bad: torch.Tensor  # epochs since the plateau's best
    best_loss: torch.Tensor  # the best weights' monitored loss
    stale: torch.Tensor  # epochs since the best weights
    running: torch.Tensor  # bool: still training
    diverged: torch.Tensor  # bool: the loss stopped being finite
    epochs: torch.Tensor  # epochs trained

    @staticmethod
    def begin(model: StackedLSTM, lr: float) -> _Run:
        params = list(model.parameters())
        device, k = params[0].device, model.k
        return _Run(
            params=params,
            moments=[(torch.zeros_like(p), torch.zeros_like(p)) for p in params],
            best_params=[p.detach().clone() for p in params],
            steps=torch.zeros(k, device=device),
            lr=torch.full((k,), lr, device=device),
            plateau_best=torch.full((k,), float("inf"), device=device),
            plateau_bad=torch.zeros(k, dtype=torch.long, device=device),
            best_loss=torch.full((k,), float("inf"), device=device),
            stale=torch.zeros(k, dtype=torch.long, device=device),
            running=torch.ones(k, dtype=torch.bool, device=device),
            diverged=torch.zeros(k, dtype=torch.bool, device=device),
            epochs=torch.zeros(k, dtype=torch.long, device=device),
        )


def _epoch_order(
    orders: Sequence[torch.Generator], n_train: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """(K, batches x B) window indices: each model shuffles its own windows with its own
    generator; -1 pads the tail."""
    batches = int(-(-int(n_train.max()) // batch_size))
    order = torch.full((len(orders), batches * batch_size), -1, dtype=torch.long)
    for m, (gen, count) in enumerate(zip(orders, n_train.tolist(), strict=True)):
        order[m, :count] = torch.randperm(count, generator=gen)
    return order.to(device)


def _train_epoch(
    model: StackedLSTM,
    data: StackedPools,
    order: torch.Tensor,
    run: _Run,
    cfg: WorkerConfig,
    moving: torch.Tensor | None,
) -> torch.Tensor:
    """One pass over every running model's windows in ``order``; each model's mean
    training loss (K,)."""
    tc = cfg.train
    padded = bool(data.pad.any())
    steps_axis = torch.arange(cfg.lookback, device=order.device)
    loss_sum = torch.zeros(model.k, device=order.device)
    model.train()
    for batch in torch.split(order, tc.batch_size, dim=1):  # (K, B) window indices
        valid = (batch >= 0) & run.running[:, None]  # (K, B)
        active = valid.any(dim=1)  # (K,) models that update on this batch
        if not active.any():
            continue
        ids = active.nonzero().squeeze(1)  # (K',): only these models are computed
        rows = batch[ids].clamp(min=0)  # (K', B)
        x, y = (
            data.x[ids[:, None], rows],
            data.y[ids[:, None], rows],
        )  # (K', B, L, I), (K', B, L)
        supervised = steps_axis >= data.first[ids[:, None], rows][..., None]  # (K', B, L)
        pad = data.pad[ids[:, None], rows] if padded else None  # (K', B)
        pred, _ = model(x, models=ids, start=pad)  # (K', B, L)
        loss, count = _per_model_loss(tc.loss, pred, y, supervised, valid[ids])
        model.zero_grad(set_to_none=False)
        loss.sum().backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
        loss_sum[ids] += (loss * count).detach()
        with torch.no_grad():
            if moving is not None:
                grad_of(model.w_ih[0]).mul_(moving)
                if cfg.model.bidirectional:
                    grad_of(model.reverse_w_ih[0]).mul_(moving)
            if tc.grad_clip is not None:
                clip_per_model(run.params, tc.grad_clip)
            adam_step(run.params, run.moments, run.steps, run.lr, active, tc.weight_decay)
    return loss_sum / data.n_train.clamp(min=1)


def _end_epoch(run: _Run, monitored: torch.Tensor, cfg: WorkerConfig) -> None:
    """Reduce-on-plateau and early stopping, per model, on the epoch's ``monitored`` loss."""
    tc, running = cfg.train, run.running
    # torch's ReduceLROnPlateau rule: a relative threshold, then patience
    better = monitored < run.plateau_best * (1 - _PLATEAU_THRESHOLD)
    run.plateau_best = torch.where(running & better, monitored, run.plateau_best)
    run.plateau_bad = torch.where(
        running & ~better, run.plateau_bad + 1, torch.zeros_like(run.plateau_bad)
    )
    cut = running & (run.plateau_bad > tc.lr_patience)
    run.lr = torch.where(cut, run.lr * tc.lr_factor, run.lr)
    run.plateau_bad = torch.where(cut, torch.zeros_like(run.plateau_bad), run.plateau_bad)
    # keep the best weights; stop after `patience` stale epochs
    improved = running & (monitored < run.best_loss)
    run.best_loss = torch.where(improved, monitored, run.best_loss)
    for p, best in zip(run.params, run.best_params, strict=True):
        mask = improved.view(-1, *[1] * (p.dim() - 1))
        best.copy_(torch.where(mask, p.detach(), best))
    run.stale = torch.where(improved, torch.zeros_like(run.stale), run.stale + running.long())
    run.running &= run.stale < tc.patience
