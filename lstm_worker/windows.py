"""Sliding windows and forecast contexts: one view's history cut into what a model trains
on and forecasts from (the inputs of each step: ``inputs``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import TrainConfig
from lstm_worker.inputs import LEVEL, LEVEL_MEMORY, THETA, model_inputs
from lstm_worker.rows import grouped
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
    return window_rows([view], length, train)[0]


Alike = tuple[int, int, int, int, bool, tuple[int, ...] | None]


def alike(view: ModelView) -> Alike:
    """What views share to be cut into windows as rows of one array (``window_rows``)."""
    known = None if view.covariates is None else view.covariates.shape
    return len(view), view.val, view.lag, view.lookback, view.window_level, known


def window_rows(views: Sequence[ModelView], length: int, train: TrainConfig) -> list[Windows]:
    """``make_windows`` of views ``alike``, cut as rows of one array: each row's windows
    those of its view alone."""
    first = views[0]
    end, lag, lookback = len(first) - first.val, first.lag, first.lookback
    fit = torch.from_numpy(np.stack([v.scaled[:end] for v in views]))  # (G, end)
    skip = first_input(lag)
    tracks = [v.covariates for v in views]
    known = (
        None
        if tracks[0] is None
        else torch.from_numpy(np.stack([t[1:end] for t in tracks if t is not None]))
    )
    drift = torch.tensor([v.drift for v in views])
    if lag in (LEVEL, THETA):  # a smoothed level's products are a history's own one at a time
        rows = zip(fit, list(known) if known is not None else tracks, drift, strict=True)
        inputs = np.stack(
            [model_inputs(f[:-1], torch.tensor(lag), k, d).numpy() for f, k, d in rows]
        )
    else:
        inputs = model_inputs(fit[:, :-1], torch.full((len(views),), lag), known, drift).numpy()
    inputs = inputs[:, skip:]
    targets = fit[:, 1 + skip :].numpy()  # (G, T): aligned with inputs (G, T, 2 + E)
    if targets.shape[1] < lookback:
        raise ValueError(
            f"{len(first)} points leave {targets.shape[1]} targets, fewer than the window "
            f"of {lookback}"
        )
    x = np.lib.stride_tricks.sliding_window_view(inputs, lookback, axis=1)  # (G, N, 2 + E, l)
    y = np.lib.stride_tricks.sliding_window_view(targets, lookback, axis=1)  # (G, N, l)
    stride = window_stride(lookback, train)
    keep = slice((y.shape[1] - 1) % stride, y.shape[1], stride)
    x, y = x[:, keep].transpose(0, 1, 3, 2).copy(), y[:, keep].copy()  # (G, N, l, 2 + E)
    if first.window_level:  # each window relative to its own first steps: nothing after leaks
        level = x[:, :, : level_steps(lookback), 0].mean(axis=2)  # (G, N)
        x[..., 0] -= level[..., None]
        if lag:
            x[..., 1] -= level[..., None]
        y -= level[..., None]
    pad = length - lookback
    x_padded = np.zeros((*y.shape[:2], length, x.shape[-1]), np.float32)
    x_padded[:, :, pad:] = x
    y_padded = np.zeros((*y.shape[:2], length), np.float32)
    y_padded[:, :, pad:] = y
    first_step = pad + warmup_steps(lookback, train)
    return [Windows(x_padded[g], y_padded[g], pad, first_step) for g in range(len(views))]


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
    return context_rows([view], end, length, extra, steps)[0]


def context_rows(
    views: Sequence[ModelView], end: int, length: int, extra: int, steps: int = 0
) -> list[Context]:
    """``forecast_context`` of views ``alike`` from the same ``end``, as rows of one
    array: each row's context that of its view alone."""
    first_view, keep = views[0], length + extra
    history = np.stack([v.scaled[:end][-keep:] for v in views])  # (G, <= keep)
    padding = keep - history.shape[1]
    context = np.empty((len(views), keep), np.float32)  # padding repeats the first value:
    context[:, :padding] = history[:, :1]  # a smoothed level then starts there, as alone
    context[:, padding:] = history
    first_real = padding + first_input(first_view.lag)
    start = max(first_real, keep - first_view.lookback) - extra
    levels = np.zeros(len(views))
    if first_view.window_level:  # as its training windows: the mean of the window's first steps
        first = keep - length + start
        levels = context[:, first : first + level_steps(first_view.lookback)].mean(axis=1)
    known: list[np.ndarray | None] = [None] * len(views)
    if first_view.covariates is not None:  # padded at both ends by repeating the edge rows
        begin = end - history.shape[1]
        rows = np.arange(begin - padding, end + steps)
        known = [
            v.covariates[rows.clip(begin, len(v.covariates) - 1)]
            for v in views
            if v.covariates is not None
        ]
    return [
        Context(row - np.float32(level), start, float(level), track)
        for row, level, track in zip(context, levels, known, strict=True)
    ]


def own_contexts(
    views: Sequence[ModelView],
    end: Callable[[ModelView], int],
    length: int,
    extra: int,
    steps: int = 0,
) -> list[Context]:
    """Each view's ``forecast_context`` from its ``end``, those of views ``alike`` taken
    together (``context_rows``)."""
    return grouped(
        views, alike, lambda same: context_rows(same, end(same[0]), length, extra, steps)
    )
