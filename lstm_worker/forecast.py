"""Recursive multi-step forecasting, shaped like a language model's ``generate``."""

from __future__ import annotations

import torch

from lstm_worker.inputs import LEVEL_ALPHA, levelled, model_inputs, smoothed_level, step_input
from lstm_worker.model import LSTMForecaster
from lstm_worker.stacked import StackedLSTM


@torch.no_grad()
def recursive_forecast(
    model: LSTMForecaster | StackedLSTM,
    history: torch.Tensor,
    lags: torch.Tensor,
    horizon: int,
    length: int,
    start: torch.Tensor | None = None,
    covariates: torch.Tensor | None = None,
    drift: torch.Tensor | None = None,
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
    ``covariates`` (..., C + horizon, E): what is known in advance of every history
    position and forecast step; the step predicting position i reads row i. ``drift``
    (...): each ``THETA`` row's offset over its smoothed level.
    """
    model.eval()
    padding = {} if start is None else {"start": start}
    buffer = history
    c = history.shape[-1]

    def known(first: int, stop: int) -> torch.Tensor | None:  # covariates of targets first..
        return None if covariates is None else covariates[..., first:stop, :]

    if model.cfg.bidirectional:
        for step in range(horizon):
            inputs = model_inputs(buffer, lags, known(1, c + step + 1), drift)
            if start is not None:  # the window moved ``step`` steps into the forecast
                padding = {"start": (start - step).clamp(min=0)}
            pred, _ = model(inputs[..., -length:, :], **padding)  # (..., length)
            buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
        return buffer[..., -horizon:]
    inputs = model_inputs(buffer, lags, known(1, c + 1), drift)[..., -length:, :]
    pred, state = model(inputs, **padding)  # (..., length)
    buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
    level = smoothed_level(buffer)[..., -1] if levelled(lags).any() else None  # (...)
    for step in range(1, horizon):
        now = None if covariates is None else covariates[..., c + step, :]  # (..., E)
        inputs = step_input(buffer, lags, level, now, drift)
        pred, state = model(inputs, state)  # feed the last back
        buffer = torch.cat([buffer, pred[..., -1:]], dim=-1)
        if level is not None:
            level = LEVEL_ALPHA * pred[..., -1] + (1 - LEVEL_ALPHA) * level
    return buffer[..., -horizon:]
