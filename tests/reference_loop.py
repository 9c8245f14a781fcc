"""The test oracle of the trainer: one series' model trained the plain way.

``nn.LSTM`` (through ``LSTMForecaster``), ``torch.optim.Adam``, ``ReduceLROnPlateau``,
``clip_grad_norm_`` and a copy of the best ``state_dict``: the classic PyTorch loop,
one window batch after another. The stacked trainer (``lstm_worker.train``) must train
a stack of one exactly as this does. The one difference of form: the stack folds
``nn.LSTM``'s two biases into one, so here ``bias_hh`` stays at zero and ``bias_ih``
learns their sum (two biases would each take an Adam step of their own).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import recursive_forecast
from lstm_worker.model import LSTMForecaster
from lstm_worker.stacked import StackedLSTM
from lstm_worker.train import LOSSES
from lstm_worker.views import model_view
from lstm_worker.windows import context_extra, forecast_context, make_windows

CPU = torch.device("cpu")


def reference_forecast(
    history: np.ndarray, horizon: int, cfg: WorkerConfig, seed: int
) -> tuple[np.ndarray, int, list[float]]:
    """Fit one model to ``history`` and forecast ``horizon`` steps in the input's units;
    also the epochs it ran and its mean training loss per epoch."""
    view = model_view(history, cfg)
    model = LSTMForecaster(cfg.model, cfg.inputs)
    model.load_state_dict(StackedLSTM(cfg.model, [seed], cfg.inputs).state_for(0))
    for name, weight in model.lstm.named_parameters():
        weight.requires_grad_(not name.startswith("bias_hh"))
    epochs, losses = _fit(model, view, cfg, seed)
    extra = context_extra(cfg.seasons)
    context = forecast_context(view, len(view), view.lookback, extra, horizon)
    predicted = recursive_forecast(
        model,
        torch.from_numpy(context.values)[None],  # (1, C)
        torch.tensor([view.lag]),
        horizon,
        view.lookback,
        drift=torch.tensor([view.drift]),
    )[0].numpy()
    return view.inverse(predicted + context.level), epochs, losses


def _fit(model: LSTMForecaster, view, cfg: WorkerConfig, seed: int) -> tuple[int, list[float]]:
    order_rng = torch.Generator().manual_seed(seed)
    tc, lookback = cfg.train, view.lookback
    windows = make_windows(view, lookback, tc)
    x_train, y_train = torch.from_numpy(windows.x), torch.from_numpy(windows.y)  # (N, L, 2), (N, L)
    lags, drift = torch.tensor([view.lag]), torch.tensor([view.drift])  # (1,), (1,)
    extra = context_extra(cfg.seasons)
    context = forecast_context(view, len(view) - view.val, lookback, extra, view.val)
    val_context = torch.from_numpy(context.values)[None]  # (1, C)
    val_target = torch.from_numpy(view.scaled[len(view) - view.val :] - np.float32(context.level))
    loss_fn = LOSSES[tc.loss]
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=tc.lr_factor, patience=tc.lr_patience
    )

    def validation_loss() -> float:
        predicted = recursive_forecast(
            model, val_context, lags, len(val_target), lookback, drift=drift
        )[0]
        return loss_fn(predicted, val_target).item()

    best_loss, best_state = validation_loss(), copy.deepcopy(model.state_dict())
    stale, losses = 0, []
    for _epoch in range(tc.epochs):
        model.train()
        train_loss = 0.0
        for batch in torch.split(torch.randperm(len(x_train), generator=order_rng), tc.batch_size):
            pred, _ = model(x_train[batch])  # (b, L, 2) -> (b, L)
            loss = loss_fn(pred[:, windows.first :], y_train[batch][:, windows.first :])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip is not None:
                nn.utils.clip_grad_norm_(trained, tc.grad_clip)
            optimizer.step()
            train_loss += loss.item() * len(batch)
        losses.append(train_loss / len(x_train))
        monitored = validation_loss()
        scheduler.step(monitored)
        if monitored < best_loss:
            best_loss, best_state, stale = monitored, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= tc.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return len(losses), losses
