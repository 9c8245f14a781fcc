"""Sliding windows and forecast contexts: one view's history cut into what a model trains
on and forecasts from (the inputs of each step: ``inputs``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import TrainConfig
from lstm_worker.inputs import LEVEL_MEMORY, model_inputs
from lstm_worker.views import ModelView


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
