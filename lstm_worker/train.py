"""Train one series' model: a loop you read top to bottom, with explicit stop conditions."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import recursive_forecast
from lstm_worker.model import LSTMForecaster
from lstm_worker.windows import make_windows

LOSSES = {"mae": nn.functional.l1_loss, "mse": nn.functional.mse_loss,
          "huber": nn.functional.huber_loss}  # both trainers' losses, by train.loss


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


@dataclass(frozen=True)
class TrainStats:
    epochs: int
    seconds: float


def first_supervised_step(cfg: WorkerConfig) -> int:
    """Index of the first window position whose prediction is in the loss."""
    lookback = cfg.model.lookback
    if cfg.train.supervise == "last":
        return lookback - 1
    warmup = cfg.train.warmup if cfg.train.warmup is not None else lookback // 4
    return min(warmup, lookback - 1)


def train_model(
    scaled: np.ndarray, cfg: WorkerConfig, seed: int, device: torch.device
) -> tuple[LSTMForecaster, TrainStats]:
    """Fit a fresh model on ``scaled`` (n,) and return it with the best weights restored."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    order_rng = torch.Generator().manual_seed(seed)
    tc = cfg.train
    windows = make_windows(scaled, cfg.model.lookback, cfg.lag, cfg.val_steps, cfg.window_stride)
    x_train = torch.from_numpy(windows.x_train).to(device)  # (N, L, I)
    y_train = torch.from_numpy(windows.y_train).to(device)  # (N, L)
    series = torch.from_numpy(scaled).to(device)
    val_context, val_target = series[None, : windows.val_start], series[windows.val_start:]
    first = first_supervised_step(cfg)

    model = LSTMForecaster(cfg.model).to(device)
    loss_fn = LOSSES[tc.loss]
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=tc.lr_factor, patience=tc.lr_patience
    )
    best_loss, best_state, stale, epoch = float("inf"), None, 0, 0
    for epoch in range(1, tc.epochs + 1):
        model.train()
        train_loss = 0.0
        for batch in torch.randperm(len(x_train), generator=order_rng).split(tc.batch_size):
            pred, _ = model(x_train[batch])  # (b, L, I) -> (b, L)
            loss = loss_fn(pred[:, first:], y_train[batch][:, first:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            train_loss += loss.item() * len(batch)
        train_loss /= len(x_train)
        if not np.isfinite(train_loss):
            raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}")

        if len(val_target):  # forecast the tail recursively: the task the model is for
            predicted = recursive_forecast(model, val_context, len(val_target), cfg.lag)[0]
            monitored = loss_fn(predicted, val_target).item()
        else:
            monitored = train_loss
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
    return model, TrainStats(epoch, time.perf_counter() - started)
