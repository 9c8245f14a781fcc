"""Per-series scaling, model inputs and sliding windows: the data side of training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from lstm_worker.config import TrainConfig

if TYPE_CHECKING:
    from lstm_worker.views import ModelView


@dataclass(frozen=True)
class Scaler:
    """An affine map fitted on the training part only, so the holdout never leaks in."""

    shift: float
    scale: float

    @classmethod
    def fit(cls, values: np.ndarray, kind: str) -> Scaler:
        if kind == "minmax":
            shift, spread = float(values.min()), float(values.max() - values.min())
        else:
            shift, spread = float(values.mean()), float(values.std())
        # A constant series has no spread: scale by its magnitude (or 1) instead of 0.
        if not np.isfinite(spread) or spread <= 1e-12 * max(1.0, abs(shift)):
            spread = abs(shift) if shift != 0.0 else 1.0
        return cls(shift=shift, scale=spread)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.shift) / self.scale).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float64) * self.scale + self.shift


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


def context_extra(seasons: Sequence[int]) -> int:
    """Points a forecast context holds before its window: what the longest lag a skip input
    may take reaches back, or what a smoothed level needs to forget where it began. It
    depends on the job's seasons alone, so a series forecasts the same in any stack."""
    return max([LEVEL_MEMORY, *(m - 1 for m in seasons)])


def first_input(lag: int) -> int:
    """The first position t of a history whose skip input exists (t + 1 - lag >= 0)."""
    return max(lag - 1, 0)


def warmup_steps(lookback: int, train: TrainConfig) -> int:
    """Steps at the start of a window of ``lookback`` whose prediction is not in the loss."""
    if train.supervise == "last":
        return lookback - 1
    warmup = train.warmup if train.warmup is not None else lookback // 4
    return min(warmup, lookback - 1)


def level_steps(lookback: int) -> int:
    """The first steps of a window whose mean is its level (``model.normalise: window``)."""
    return max(1, lookback // 4)


def window_stride(lookback: int, train: TrainConfig) -> int:
    if train.stride is not None:
        return train.stride
    return max(1, lookback // 2) if train.supervise == "all" else 1


@dataclass(frozen=True)
class Windows:
    """One model's training windows, left-padded to the stack's common length L."""

    x: np.ndarray  # (N, L, 2 + E) inputs; the first ``pad`` steps are padding
    y: np.ndarray  # (N, L) targets: the next value after each input step
    pad: int  # steps of padding at the start of every window (L - the model's lookback)
    first: int  # the first supervised step (padding and warm-up come before it)


def make_windows(view: ModelView, length: int, train: TrainConfig) -> Windows:
    """Cut the fit part of ``view`` (its history without the validation tail) into windows
    of the view's lookback, counted back from the most recent one every stride steps.

    No training target lies in the validation tail.
    """
    end = len(view) - view.val
    fit = torch.from_numpy(view.scaled[:end])
    skip = first_input(view.lag)
    known = None if view.covariates is None else torch.from_numpy(view.covariates[1:end])
    lag, drift = torch.tensor(view.lag), torch.tensor(view.drift)
    inputs = model_inputs(fit[:-1], lag, known, drift)[skip:].numpy()  # (T, 2 + E)
    targets = fit[1 + skip :].numpy()  # (T,): aligned with inputs
    lookback = view.lookback
    if len(targets) < lookback:
        raise ValueError(
            f"{len(view)} points leave {len(targets)} targets, fewer than the window of {lookback}"
        )
    x = np.lib.stride_tricks.sliding_window_view(inputs, lookback, axis=0)  # (N, 2 + E, l)
    y = np.lib.stride_tricks.sliding_window_view(targets, lookback)  # (N, l)
    stride = window_stride(lookback, train)
    keep = slice((len(y) - 1) % stride, len(y), stride)
    x, y = x[keep].transpose(0, 2, 1).copy(), y[keep].copy()  # (N, l, 2 + E), (N, l)
    if view.window_level:  # each window relative to its own first steps: nothing after leaks in
        level = x[:, : level_steps(lookback), 0].mean(axis=1)  # (N,)
        x[..., 0] -= level[:, None]
        if view.lag:
            x[..., 1] -= level[:, None]
        y -= level[:, None]
    pad = length - lookback
    x_padded = np.zeros((len(y), length, x.shape[-1]), np.float32)
    x_padded[:, pad:] = x
    y_padded = np.zeros((len(y), length), np.float32)
    y_padded[:, pad:] = y
    return Windows(x_padded, y_padded, pad, pad + warmup_steps(lookback, train))


@dataclass(frozen=True)
class Context:
    """What a forecast from one point of a view reads (``forecast_context``)."""

    values: np.ndarray  # (C,) the last C = length + extra points, left-padded
    start: int  # the first of the last ``length`` input steps that is real
    level: float  # subtracted from ``values``; added back to what is forecast from them
    covariates: np.ndarray | None  # (C + steps, E): known inputs of the context and beyond


def forecast_context(view: ModelView, end: int, length: int, extra: int, steps: int = 0) -> Context:
    """What a forecast from ``view.scaled[:end]`` reads: its last ``length + extra`` points
    (left-padded), the first of the last ``length`` input steps that is real (at most the
    view's lookback from the end, never before its skip input exists), the level
    subtracted, and the covariates of those points and of the ``steps`` forecast.
    ``extra`` is the stack's longest lag less one: what a skip input reaches back."""
    keep = length + extra
    history = view.scaled[:end][-keep:]
    context = np.full(keep, history[0], np.float32)  # padding repeats the first value: a
    context[keep - len(history) :] = history  # smoothed level then starts there, as alone
    first_real = keep - len(history) + first_input(view.lag)
    start = max(first_real, keep - view.lookback) - extra
    level = 0.0
    if view.window_level:  # as its training windows: the mean of the window's first steps
        first = keep - length + start
        level = float(context[first : first + level_steps(view.lookback)].mean())
    known = None
    if view.covariates is not None:  # padded at both ends by repeating the edge rows
        begin = end - len(history)
        rows = np.arange(begin - (keep - len(history)), end + steps)
        known = view.covariates[rows.clip(begin, len(view.covariates) - 1)]
    return Context(context - np.float32(level), start, level, known)
