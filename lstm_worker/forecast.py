"""Recursive multi-step forecasting, shaped like a language model's ``generate``."""

from __future__ import annotations

import torch
from torch import nn

from lstm_worker.windows import history_needed, model_inputs


@torch.no_grad()
def recursive_forecast(model: nn.Module, history: torch.Tensor, horizon: int, lag: int
                       ) -> torch.Tensor:
    """Crop ``history`` (..., T) scaled to the window, predict, append, repeat -> (..., horizon).

    Each prediction is appended to the history and becomes the next input (and, one
    season later, the next skip input). A unidirectional LSTM carries its state forward
    one step at a time; a bidirectional one has no state to carry, so it re-reads the
    cropped window at every step. Works for ``LSTMForecaster`` (batch axes (B,)) and
    ``StackedLSTM`` (batch axes (K, B)).
    """
    model.eval()
    keep = history_needed(model.cfg.lookback, lag)
    buffer = history[..., -keep:]  # (..., keep)
    if model.cfg.bidirectional:
        for _ in range(horizon):
            pred, _ = model(model_inputs(buffer[..., -keep:], lag))  # (..., L)
            buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
        return buffer[..., -horizon:]
    pred, state = model(model_inputs(buffer, lag))  # (..., L)
    buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
    for _ in range(horizon - 1):
        step = model_inputs(buffer[..., -max(lag, 1):], lag)  # (..., 1, I): last value, its lag
        pred, state = model(step, state)  # feed the last prediction back in
        buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
    return buffer[..., -horizon:]
