"""Recursive multi-step forecasting, shaped like a language model's ``generate``."""

from __future__ import annotations

import torch

from lstm_worker.model import LSTMForecaster
from lstm_worker.stacked import StackedLSTM
from lstm_worker.windows import LEVEL, LEVEL_ALPHA, model_inputs, smoothed_level, step_input


@torch.no_grad()
def recursive_forecast(
    model: LSTMForecaster | StackedLSTM,
    history: torch.Tensor,
    lags: torch.Tensor,
    horizon: int,
    length: int,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Read the last ``length`` steps of ``history`` (..., C) scaled, predict, append,
    repeat -> (..., horizon).

    Each prediction is appended to the history and becomes the next input (and, ``lag``
    steps later, the next skip input, or a part of the next smoothed level; ``lags`` (...)
    per row, as ``windows.model_inputs`` takes them). ``start`` (...) marks the
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
    level = smoothed_level(buffer)[..., -1] if (lags == LEVEL).any() else None  # (...)
    for _ in range(horizon - 1):
        pred, state = model(step_input(buffer, lags, level), state)  # feed the last one back
        buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
        if level is not None:
            level = LEVEL_ALPHA * pred[..., -1] + (1 - LEVEL_ALPHA) * level
    return buffer[..., -horizon:]
