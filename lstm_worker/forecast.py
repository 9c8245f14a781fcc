"""Recursive multi-step forecasting, shaped like a language model's ``generate``."""

from __future__ import annotations

import torch
from torch import nn

from lstm_worker.windows import model_inputs, step_input


@torch.no_grad()
def recursive_forecast(
    model: nn.Module, history: torch.Tensor, lags: torch.Tensor, horizon: int, length: int,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Read the last ``length`` steps of ``history`` (..., C) scaled, predict, append,
    repeat -> (..., horizon).

    Each prediction is appended to the history and becomes the next input (and, ``lag``
    steps later, the next skip input; ``lags`` (...) per row). ``start`` (...) marks the
    first real input step of the ``length`` read (earlier ones are padding; only the
    stacked model takes it). A unidirectional LSTM carries its state forward one step
    at a time; a bidirectional one has no state to carry, so it re-reads the window at
    every step. Works for ``LSTMForecaster`` (batch axes (B,)) and ``StackedLSTM`` (K, B).
    """
    model.eval()
    padding = {} if start is None else {"start": start}
    buffer = history
    if model.cfg.bidirectional:
        for _ in range(horizon):
            pred, _ = model(model_inputs(buffer, lags)[..., -length:, :])  # (..., length)
            buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
        return buffer[..., -horizon:]
    pred, state = model(model_inputs(buffer, lags)[..., -length:, :], **padding)  # (..., length)
    buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
    for _ in range(horizon - 1):
        pred, state = model(step_input(buffer, lags), state)  # feed the last prediction back in
        buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
    return buffer[..., -horizon:]
