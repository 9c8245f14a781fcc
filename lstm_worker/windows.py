"""Per-series scaling, model inputs and sliding windows: the data side of training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def history_needed(lookback: int, lag: int) -> int:
    """Points of history a forecast reads: one window plus the lags of its first steps."""
    return lookback + max(lag - 1, 0)


def model_inputs(values, lag: int):
    """Inputs for predicting ``values[..., t + 1]`` at every t: (..., T) -> (..., T - s, I).

    Channel 0 is the value itself; with ``lag`` > 0, channel 1 is the value one season
    before the target, ``values[..., t + 1 - lag]``, and the first ``s = lag - 1`` steps
    (which have no such value) are dropped. Works on numpy arrays and torch tensors.
    """
    if lag == 0:
        return values[..., None]  # (..., T, 1)
    skip = lag - 1
    current = values[..., skip:]  # (..., T - s)
    seasonal = values[..., : values.shape[-1] - skip]  # value at t + 1 - lag for each t
    stack = np.stack if isinstance(values, np.ndarray) else _torch_stack
    return stack([current, seasonal], -1)  # (..., T - s, 2)


def _torch_stack(tensors, axis):
    import torch

    return torch.stack(tensors, dim=axis)


@dataclass(frozen=True)
class Windows:
    """Training windows, plus the validation tail forecast recursively from before it."""

    x_train: np.ndarray  # (N, L, I) inputs
    y_train: np.ndarray  # (N, L) targets: the next value after each input step
    val_start: int  # the validation tail is scaled[val_start:]; its context scaled[:val_start]


def make_windows(
    scaled: np.ndarray, lookback: int, lag: int, val_size: int, stride: int = 1
) -> Windows:
    """Cut ``scaled[:-val_size]`` (n,) into windows of ``lookback`` steps and their targets.

    No training target lies in the validation tail. ``stride`` keeps every stride-th
    window, counted back from the most recent one.
    """
    val_start = len(scaled) - val_size
    fit_part = scaled[:val_start]
    inputs = model_inputs(fit_part[:-1], lag)  # (n_fit - 1 - s, I)
    targets = fit_part[1 + max(lag - 1, 0):]  # aligned with inputs
    if len(targets) < lookback:
        needed = history_needed(lookback, lag) + 1 + val_size
        raise ValueError(f"{len(scaled)} points are fewer than the {needed} one window and "
                         f"validation need")
    x = np.lib.stride_tricks.sliding_window_view(inputs, lookback, axis=0)  # (N, I, L)
    y = np.lib.stride_tricks.sliding_window_view(targets, lookback)  # (N, L)
    keep = slice((len(y) - 1) % stride, len(y), stride)
    return Windows(
        x_train=np.ascontiguousarray(x[keep].transpose(0, 2, 1)),  # (N, I, L) -> (N, L, I)
        y_train=np.ascontiguousarray(y[keep]),
        val_start=val_start,
    )
