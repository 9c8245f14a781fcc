"""Recursive multi-step forecasting, shaped like a language model's ``generate``."""

from __future__ import annotations

import torch

from lstm_worker.model import LSTMForecaster


@torch.no_grad()
def recursive_forecast(model: LSTMForecaster, context: torch.Tensor, horizon: int) -> torch.Tensor:
    """Crop ``context`` (B, T) scaled to the lookback, predict, feed back, repeat.

    Returns (B, horizon) scaled predictions. A unidirectional LSTM carries its state
    forward one step at a time; a bidirectional one has no state to carry, so it
    re-reads the cropped window at every step.
    """
    model.eval()
    lookback = model.cfg.lookback
    window = context[:, -lookback:]  # (B, L)
    if model.cfg.bidirectional:
        for _ in range(horizon):
            pred, _ = model(window[:, -lookback:])  # (B, L)
            window = torch.cat([window, pred[:, -1:]], dim=1)  # (B, L + k + 1)
        return window[:, -horizon:]
    pred, state = model(window)  # (B, L)
    steps = [pred[:, -1:]]  # each (B, 1)
    for _ in range(horizon - 1):
        pred, state = model(steps[-1], state)  # feed the last prediction back in
        steps.append(pred[:, -1:])
    return torch.cat(steps, dim=1)  # (B, horizon)
