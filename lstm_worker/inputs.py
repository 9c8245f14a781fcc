"""What a model reads at each step: the value, scaled per series; its skip input (a lag,
the smoothed level, that level plus Theta's drift); the known covariates.

Below the views and the windows, which both build on it (``views`` fits the scalers and
chooses the skip input; ``windows`` cuts the inputs into training windows and contexts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Scaler:
    """An affine map fitted on the training part only, so the holdout never leaks in."""

    shift: float
    scale: float

    @classmethod
    def fit(cls, values: np.ndarray, kind: str) -> Scaler:
        return cls.fit_rows(values[None], kind)[0]

    @classmethod
    def fit_rows(cls, values: np.ndarray, kind: str) -> list[Scaler]:
        """One scaler per row of ``values`` (G, n), each the one its row gets alone."""
        if kind == "minmax":
            shifts, spreads = values.min(axis=1), values.max(axis=1) - values.min(axis=1)
        else:
            shifts, spreads = values.mean(axis=1), values.std(axis=1)
        scalers = []
        for shift, spread in zip(shifts.tolist(), spreads.tolist(), strict=True):
            # A constant series has no spread: scale by its magnitude (or 1) instead of 0.
            if not np.isfinite(spread) or spread <= 1e-12 * max(1.0, abs(shift)):
                spread = abs(shift) if shift != 0.0 else 1.0
            scalers.append(cls(shift=shift, scale=spread))
        return scalers

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.shift) / self.scale).astype(np.float32)


@dataclass(frozen=True)
class ChannelScaler:
    """A ``Scaler`` per channel of known inputs (E,), fitted on the training part only."""

    shift: np.ndarray  # (E,)
    scale: np.ndarray  # (E,)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(..., E) -> (..., E) float32."""
        scaled: np.ndarray = ((values - self.shift) / self.scale).astype(np.float32)
        return scaled


LEVEL = -1  # the skip code of the smoothed level (a lag >= 1 is a lagged value, 0 none)
THETA = -2  # the skip code of the smoothed level plus a drift: the Theta method's forecast
LEVEL_ALPHA = 0.3  # its smoothing: simple exponential smoothing's weight on the newest value
LEVEL_MEMORY = 26  # points a forecast reads before its window for the level: 0.7^26 < 1e-4
LEVEL_BLOCK = 32  # steps the smoothed level advances at a time: 0.7^32 is 1e-5, no overflow


def smoothed_level(values: torch.Tensor) -> torch.Tensor:
    """Simple exponential smoothing along the last axis, started at the first value: (..., T).

    A block of steps at a time, each one matrix product (the recursion unrolled over the
    block): a step at a time, it cost a tensor operation per point of every view."""
    steps = values.shape[-1]
    block = min(steps, LEVEL_BLOCK)
    i = torch.arange(block, device=values.device, dtype=values.dtype)
    decay = (1 - LEVEL_ALPHA) ** (i[:, None] - i[None, :]).clamp(min=0)  # (block, block)
    weights = (LEVEL_ALPHA * decay * (i[:, None] >= i[None, :])).T  # [j, i]: v_j's share of L_i
    carry = (1 - LEVEL_ALPHA) ** (i + 1)  # (block,): the level before the block's share
    level, levels = values[..., :1], []
    for first in range(0, steps, block):
        chunk = values[..., first : first + block]
        width = chunk.shape[-1]
        level = chunk @ weights[:width, :width] + carry[:width] * level
        levels.append(level)
        level = level[..., -1:]
    return torch.cat(levels, dim=-1)


def levelled(lags: torch.Tensor) -> torch.Tensor:
    """The rows (...) whose skip input is a smoothed level (``LEVEL``, ``THETA``)."""
    return (lags == LEVEL) | (lags == THETA)


def model_inputs(
    values: torch.Tensor,
    lags: torch.Tensor,
    covariates: torch.Tensor | None = None,
    drift: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inputs for predicting ``values[..., t + 1]`` at every t: (..., T) -> (..., T, 2 + E).

    Channel 0 is the value itself; channel 1 the skip input, chosen per row by ``lags``
    (...): the value ``lag`` steps before the target, ``values[..., t + 1 - lag]``; with
    ``LEVEL``, the smoothed level of the values up to t; with ``THETA``, that level plus
    the row's ``drift`` (...). Where the lag is 0 (no skip input) or reaches before
    position 0, channel 1 is 0; ``first_input`` says from which step a row's inputs are
    real. ``covariates`` (..., T, E): what is known in advance of each target step t + 1
    (calendar, features), the channels after those two.
    """
    steps = values.shape[-1]
    index = torch.arange(steps, device=values.device) + 1 - lags[..., None]  # (..., T)
    base = values.gather(-1, index.clamp(0, steps - 1))
    real = (index >= 0) & (lags[..., None] > 0)
    base = torch.where(real, base, torch.zeros_like(base))
    if levelled(lags).any():
        level = smoothed_level(values) + _drift_of(lags, drift)[..., None]
        base = torch.where(levelled(lags)[..., None], level, base)
    return _with_covariates(torch.stack([values, base], dim=-1), covariates)


def _drift_of(lags: torch.Tensor, drift: torch.Tensor | None) -> torch.Tensor:
    """Each row's offset over its smoothed level (...): its drift where ``THETA``, else 0."""
    if drift is None:
        return torch.zeros(lags.shape, device=lags.device)
    return torch.where(lags == THETA, drift.to(torch.float32), torch.zeros_like(drift))


def step_input(
    buffer: torch.Tensor,
    lags: torch.Tensor,
    level: torch.Tensor | None = None,
    covariates: torch.Tensor | None = None,
    drift: torch.Tensor | None = None,
) -> torch.Tensor:
    """The input predicting the step after ``buffer`` (..., n): (..., 1, 2 + E); ``level``
    (...) is the smoothed level through the buffer's last value, for ``LEVEL`` and
    ``THETA`` rows (the latter plus their ``drift``); ``covariates`` (..., E) are what is
    known of the step predicted."""
    n = buffer.shape[-1]
    base = buffer.gather(-1, (n - lags).clamp(0, n - 1)[..., None])  # (..., 1)
    base = torch.where(lags[..., None] > 0, base, torch.zeros_like(base))
    if level is not None:
        skip = level + _drift_of(lags, drift)
        base = torch.where(levelled(lags)[..., None], skip[..., None], base)
    known = None if covariates is None else covariates[..., None, :]
    return _with_covariates(torch.stack([buffer[..., -1:], base], dim=-1), known)


def _with_covariates(inputs: torch.Tensor, covariates: torch.Tensor | None) -> torch.Tensor:
    """(..., T, 2) and (..., T, E) -> (..., T, 2 + E); no covariates: as they are."""
    if covariates is None or not covariates.shape[-1]:
        return inputs
    return torch.cat([inputs, covariates.to(inputs.dtype)], dim=-1)
