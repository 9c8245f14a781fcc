"""Train one series' model: a loop you read top to bottom, with explicit stop conditions."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import recursive_forecast
from lstm_worker.model import LSTMForecaster
from lstm_worker.views import ModelView
from lstm_worker.windows import context_extra, forecast_context, make_windows


class _Loss(Protocol):
    """A loss of ``torch.nn.functional``: (pred, target) -> its reduction."""

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, /, *, reduction: str = ...
    ) -> torch.Tensor: ...


LOSSES: dict[str, _Loss] = {
    "mae": nn.functional.l1_loss,
    "mse": nn.functional.mse_loss,
    "huber": nn.functional.huber_loss,
}  # both trainers' losses, by train.loss


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


@dataclass(frozen=True)
class TrainStats:
    epochs: int
    seconds: float
    calendar: bool = False  # the model kept the calendar (``cfg.calendar``) it was offered


def train_model(
    view: ModelView, cfg: WorkerConfig, seed: int, device: torch.device
) -> tuple[LSTMForecaster, TrainStats]:
    """Fit a fresh model on one view and return it with the best weights restored. With a
    calendar, the same seed's model without it is fitted too, and the calendar kept only
    where it forecasts the validation tail better, as the stacked trainer does
    (``fit._calendar_earned``)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = LSTMForecaster(cfg.model, cfg.inputs).to(device)
    plain = copy.deepcopy(model) if cfg.calendar else None
    epochs, loss = _fit(model, view, cfg, seed, device, None)
    kept = plain is not None
    if plain is not None:
        plain_epochs, plain_loss = _fit(plain, view, cfg, seed, device, cfg.calendar_rows)
        if loss is None or plain_loss is None or plain_loss <= loss:
            model, epochs, kept = plain, plain_epochs, False
    return model, TrainStats(epochs, time.perf_counter() - started, kept)


def _fit(
    model: LSTMForecaster,
    view: ModelView,
    cfg: WorkerConfig,
    seed: int,
    device: torch.device,
    hold: slice | None,
) -> tuple[int, float | None]:
    """Train ``model`` in place, judged against where it starts: the epochs it ran, and
    the best weights' validation loss (None without a validation tail). ``hold``: input
    columns of the first layer kept where they start."""
    order_rng = torch.Generator().manual_seed(seed)
    tc, lookback = cfg.train, view.lookback
    windows = make_windows(view, lookback, tc)  # unpadded: the window is the view's own
    x_train = torch.from_numpy(windows.x).to(device)  # (N, L, 2 + E)
    y_train = torch.from_numpy(windows.y).to(device)  # (N, L)
    lags = torch.tensor([view.lag], device=device)  # (1,)
    drift = torch.tensor([view.drift], device=device)  # (1,)
    context = forecast_context(
        view, len(view) - view.val, lookback, context_extra(cfg.seasons), view.val
    )
    val_context = torch.from_numpy(context.values).to(device)[None]  # (1, C)
    val_known = None
    if context.covariates is not None:  # (1, C + V, E)
        val_known = torch.from_numpy(context.covariates).to(device)[None]
    val_target = torch.from_numpy(
        view.scaled[len(view) - view.val :] - np.float32(context.level)
    ).to(device)
    held = [p for name, p in model.lstm.named_parameters() if name.startswith("weight_ih_l0")]

    loss_fn = LOSSES[tc.loss]
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=tc.lr_factor, patience=tc.lr_patience
    )

    def validation_loss() -> float:  # forecast the tail recursively: the task the model is for
        predicted = recursive_forecast(
            model, val_context, lags, len(val_target), lookback, covariates=val_known, drift=drift
        )[0]
        return loss_fn(predicted, val_target).item()

    best_loss, best_state, stale, epoch = float("inf"), None, 0, 0
    if len(val_target):  # the untrained model (its skip input's baseline) is a candidate too
        best_loss, best_state = validation_loss(), copy.deepcopy(model.state_dict())
    first = windows.first
    for epoch in range(1, tc.epochs + 1):
        model.train()
        train_loss = 0.0
        for batch in torch.split(torch.randperm(len(x_train), generator=order_rng), tc.batch_size):
            pred, _ = model(x_train[batch])  # (b, L, 2 + E) -> (b, L)
            loss = loss_fn(pred[:, first:], y_train[batch][:, first:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
            for weight in held if hold is not None else ():
                assert weight.grad is not None
                weight.grad[:, hold] = 0
            if tc.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            train_loss += loss.item() * len(batch)
        train_loss /= len(x_train)
        if not np.isfinite(train_loss):
            raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}")

        monitored = validation_loss() if len(val_target) else train_loss
        scheduler.step(monitored)
        if monitored < best_loss:
            best_loss, best_state, stale = monitored, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= tc.patience:
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return epoch, best_loss if len(val_target) else None
