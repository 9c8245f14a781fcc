"""What each model of a stack learns from: its pool of windows and validation tails,
and the pools of a stack as padded tensors with a model axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import WorkerConfig
from lstm_worker.rows import grouped
from lstm_worker.views import ModelView
from lstm_worker.windows import (
    Context,
    Windows,
    alike,
    make_windows,
    own_contexts,
    window_rows,
)


@dataclass(frozen=True)
class Pool:
    """What one model of a stack trains on and is validated on."""

    x: np.ndarray  # (N, L, 2 + E) training windows
    y: np.ndarray  # (N, L) their targets
    pad: np.ndarray  # (N,) each window's steps of left padding
    first: np.ndarray  # (N,) each window's first supervised step
    val_context: np.ndarray  # (B, C) histories forecast over the validation tails
    val_start: np.ndarray  # (B,) their first real input step of the last L
    val_lags: np.ndarray  # (B,)
    val_drift: np.ndarray  # (B,) THETA's offsets over the level (``ModelView.drift``)
    val_target: np.ndarray  # (B, V)
    val_covariates: np.ndarray  # (B, C + V, E) known inputs of the contexts and tails


def make_pool(views: Sequence[ModelView], cfg: WorkerConfig, extra: int) -> Pool:
    """The pool of ``views`` (one series' view, or many for a shared start); ``extra`` is
    the stack's longest lag less one."""
    windows = [make_windows(v, cfg.lookback, cfg.train) for v in views]
    checked = [v for v in views if v.val]
    contexts = own_contexts(checked, _val_end, cfg.lookback, extra, cfg.val_steps)
    return _pool(checked, windows, contexts, cfg, extra)


def own_pools(views: Sequence[ModelView], cfg: WorkerConfig, extra: int) -> list[Pool]:
    """Each view's own pool (``make_pool([view])``), the windows and validation contexts
    of views ``alike`` cut together (``window_rows``, ``context_rows``)."""
    windows = grouped(views, alike, lambda same: window_rows(same, cfg.lookback, cfg.train))
    checked = [v for v in views if v.val]
    contexts = iter(own_contexts(checked, _val_end, cfg.lookback, extra, cfg.val_steps))
    return [
        _pool([v] if v.val else [], [w], [next(contexts)] if v.val else [], cfg, extra)
        for v, w in zip(views, windows, strict=True)
    ]


def _val_end(view: ModelView) -> int:
    """Where a view's validation tail starts: its contexts end there."""
    return len(view) - view.val


def _pool(
    checked: Sequence[ModelView],
    windows: Sequence[Windows],
    contexts: Sequence[Context],
    cfg: WorkerConfig,
    extra: int,
) -> Pool:
    """The pool of these windows, validated on the tails of the ``checked`` views (those
    with one), from their ``contexts``."""
    length, val, known = cfg.lookback, cfg.val_steps, len(cfg.covariates)
    return Pool(
        x=np.concatenate([w.x for w in windows]),
        y=np.concatenate([w.y for w in windows]),
        pad=np.concatenate([np.full(len(w.x), w.pad) for w in windows]),
        first=np.concatenate([np.full(len(w.x), w.first) for w in windows]),
        val_context=np.array([c.values for c in contexts], np.float32).reshape(
            len(checked), length + extra
        ),
        val_start=np.array([c.start for c in contexts], np.int64),
        val_lags=np.array([v.lag for v in checked], np.int64),
        val_drift=np.array([v.drift for v in checked], np.float32),
        val_target=np.array(
            [v.scaled[len(v) - val :] - c.level for v, c in zip(checked, contexts, strict=True)],
            np.float32,
        ).reshape(len(checked), val),
        val_covariates=np.array(
            [c.covariates for c in contexts if c.covariates is not None], np.float32
        ).reshape(len(checked), length + extra + val, known),
    )


@dataclass(frozen=True)
class StackedPools:
    """K models' pools as padded tensors with a model axis K, plus masks and counts."""

    x: torch.Tensor  # (K, N, L, inputs) training windows
    y: torch.Tensor  # (K, N, L) their targets
    pad: torch.Tensor  # (K, N) left padding of each window
    first: torch.Tensor  # (K, N) the first supervised step of each window
    n_train: torch.Tensor  # (K,) windows per model
    val_context: torch.Tensor  # (K, B, C) validation contexts
    val_start: torch.Tensor  # (K, B)
    val_lags: torch.Tensor  # (K, B)
    val_drift: torch.Tensor  # (K, B)
    val_target: torch.Tensor  # (K, B, V)
    val_valid: torch.Tensor  # (K, B) which rows are a model's (the rest padding)
    val_covariates: torch.Tensor | None  # (K, B, C + V, E) known inputs, where there are some


def stack_pools(pools: Sequence[Pool], device: torch.device) -> StackedPools:
    """The pools as padded tensors with a model axis K, plus masks and counts."""
    k = len(pools)
    n_max = max(1, max(len(p.x) for p in pools))
    b_max = max(p.val_target.shape[0] for p in pools)
    length, c = pools[0].x.shape[1], max(p.val_context.shape[1] for p in pools)
    v, inputs = max(p.val_target.shape[1] for p in pools), pools[0].x.shape[2]
    known = pools[0].val_covariates.shape[2]
    t: dict[str, np.ndarray] = {
        "x": np.zeros((k, n_max, length, inputs), np.float32),
        "y": np.zeros((k, n_max, length), np.float32),
        "pad": np.zeros((k, n_max), np.int64),
        "first": np.zeros((k, n_max), np.int64),
        "n_train": np.array([len(p.x) for p in pools]),
        "val_context": np.zeros((k, b_max, c), np.float32),
        "val_start": np.zeros((k, b_max), np.int64),
        "val_lags": np.zeros((k, b_max), np.int64),
        "val_drift": np.zeros((k, b_max), np.float32),
        "val_target": np.zeros((k, b_max, v), np.float32),
        "val_valid": np.zeros((k, b_max), bool),
    }
    if known:  # the contexts' and tails' known inputs, only where there are some
        t["val_covariates"] = np.zeros((k, b_max, c + v, known), np.float32)
    for m, pool in enumerate(pools):
        n, b = len(pool.x), pool.val_target.shape[0]
        t["x"][m, :n], t["y"][m, :n] = pool.x, pool.y
        t["pad"][m, :n], t["first"][m, :n] = pool.pad, pool.first
        t["val_context"][m, :b], t["val_start"][m, :b] = pool.val_context, pool.val_start
        t["val_lags"][m, :b], t["val_target"][m, :b] = pool.val_lags, pool.val_target
        t["val_drift"][m, :b] = pool.val_drift
        t["val_valid"][m, :b] = True
        if known:
            t["val_covariates"][m, :b] = pool.val_covariates
    tensors = {name: torch.from_numpy(array).to(device) for name, array in t.items()}
    covariates = tensors.pop("val_covariates", None)
    return StackedPools(**tensors, val_covariates=covariates)
