"""Per-series scaling and sliding windows: the data side of training one model."""

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


@dataclass(frozen=True)
class Windows:
    """Inputs and next-step targets of every window, split into train and validation."""

    x_train: np.ndarray  # (N_train, L) inputs
    y_train: np.ndarray  # (N_train, L) targets: the inputs shifted one step ahead
    x_val: np.ndarray  # (N_val, L)
    y_val: np.ndarray  # (N_val, L)


def make_windows(
    scaled: np.ndarray, lookback: int, val_fraction: float, stride: int = 1
) -> Windows:
    """Cut ``scaled`` (n,) into windows ``scaled[i:i+L] -> scaled[i+1:i+L+1]``.

    The validation windows are those whose last target lies in the last ``val_fraction``
    of the series; training windows never see those targets. ``stride`` keeps every
    stride-th training window, counted back from the most recent one.
    """
    n = len(scaled)
    if n < lookback + 1:
        raise ValueError(f"{n} training points are fewer than lookback + 1 = {lookback + 1}")
    both = np.lib.stride_tricks.sliding_window_view(scaled, lookback + 1)  # (n - L, L + 1)
    x, y = both[:, :-1], both[:, 1:]  # (n - L, L) each
    val_points = int(round(val_fraction * n))
    n_val = min(val_points, len(x) - 1) if val_fraction > 0 else 0
    n_train = len(x) - n_val  # window i's last target is point i + L: these stop before the tail
    keep = slice((n_train - 1) % stride, n_train, stride)
    return Windows(
        x_train=np.ascontiguousarray(x[keep]),
        y_train=np.ascontiguousarray(y[keep]),
        x_val=np.ascontiguousarray(x[n_train:]),
        y_val=np.ascontiguousarray(y[n_train:]),
    )
