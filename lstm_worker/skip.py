"""The skip input each history's model predicts its residual over, chosen for many
histories of one length at once: each candidate's baseline forecast as array operations
over the rows, every row's numbers those of the history alone (numpy reduces each row
as it reduces one array)."""

from __future__ import annotations

import functools

import numpy as np

from lstm_worker.inputs import LEVEL, LEVEL_ALPHA, THETA
from lstm_worker.season import season_profile, seasonality_rows
from lstm_worker.smoothing import least_squares_slope

_ORIGINS = 3  # rolling origins on which the auto skip compares its baselines
_FIXED = {"none": 0, "last": 1, "level": LEVEL, "theta": THETA}

Choice = tuple[int, np.ndarray | None]  # a skip input, and the seasonal indices it sees


def choose_skips(
    values: np.ndarray,
    indices: list[np.ndarray | None],
    skip: str,
    seasons: tuple[int, ...],
    horizon: int,
    acf: np.ndarray | None,
) -> list[Choice]:
    """The skip input of each row of ``values`` (G, n) (a lag, ``LEVEL``, ``THETA`` or 0)
    and the seasonal indices it sees the row through (None: as it is): fixed by ``skip``,
    or (auto) the pair whose baseline forecast the row's own last ``_ORIGINS`` horizons
    best: seasonal naive, or simple exponential smoothing or naive, each with the season
    found (``indices``) divided out or not. A seasonal skip carries the season itself; a
    season is its candidate only where M4's test finds it (``acf``: the rows'
    autocorrelations) and two of its periods fit before the earliest origin. Theta is not
    a candidate: among them, on the backtests of the seven benchmark sets, it lost as
    often as it won (docs/benchmarks.md)."""
    if skip in _FIXED:
        return [(_FIXED[skip], seen) for seen in indices]
    n = values.shape[1]
    fits = [m for m in seasons if n >= 2 * m + horizon]
    tested = [seasonality_rows(acf, n, m) for m in fits] if acf is not None else []
    usable = [
        tuple(m for m, test in zip(fits, tested, strict=True) if test[g])
        for g in range(len(values))
    ]
    if skip == "season":
        return [(u[0], None) if u else (1, seen) for u, seen in zip(usable, indices, strict=True)]
    chosen: list[Choice] = [(0, None)] * len(values)
    for group in set(usable):  # rows with the same seasons compare on the same origins
        rows = [g for g, u in enumerate(usable) if u == group]
        for g, choice in zip(
            rows, _best(values[rows], [indices[g] for g in rows], group, horizon), strict=True
        ):
            chosen[g] = choice
    return chosen


def _best(
    values: np.ndarray, indices: list[np.ndarray | None], usable: tuple[int, ...], horizon: int
) -> list[Choice]:
    """Each row's best candidate (ties: the earlier), all rows with these usable seasons."""
    n = values.shape[1]
    origins = [n - horizon * j for j in range(1, _ORIGINS + 1)]
    origins = [o for o in origins if o >= max([2, *usable])] or [max(1, n - horizon)]
    seen = np.stack(
        [np.ones(n + horizon) if i is None else season_profile(i, 0, n + horizon) for i in indices]
    )
    plain = np.ones_like(seen)
    errors = [_error(values, origins, lag, horizon, seen) for lag in usable]  # each (G,)
    errors += [_error(values, origins, lag, horizon, seen) for lag in (LEVEL, 1)]
    errors += [_error(values, origins, lag, horizon, plain) for lag in (LEVEL, 1)]
    table = np.stack(errors, 1)  # (G, candidates)
    chosen = []
    for g, found in enumerate(indices):
        candidates = [(m, None) for m in usable] + [(LEVEL, found), (1, found)]
        if found is not None:
            candidates += [(LEVEL, None), (1, None)]
        chosen.append(candidates[int(np.argmin(table[g, : len(candidates)]))])
    return chosen


def _error(
    values: np.ndarray, origins: list[int], lag: int, horizon: int, profile: np.ndarray
) -> np.ndarray:
    """Each row's mean absolute error over ``origins`` of the baseline with ``lag``, seeing
    the rows through ``profile`` (G, n + horizon) (ones: as they are): (G,)."""
    n = values.shape[1]
    per_origin = [
        np.abs(
            values[:, o : o + horizon]
            - baseline_rows(values[:, :o], lag, horizon, profile)[:, : n - o]
        ).mean(axis=1)
        for o in origins
    ]
    errors: np.ndarray = np.stack(per_origin, 1).mean(axis=1)
    return errors


def baseline(history: np.ndarray, lag: int, steps: int, indices: np.ndarray | None) -> np.ndarray:
    """What a model that learned nothing forecasts with this skip input, in the input's
    units (a seasonal lag sees the series as it is; the others with its season out)."""
    n = len(history)
    profile = np.ones(n + steps) if indices is None else season_profile(indices, 0, n + steps)
    forecast: np.ndarray = baseline_rows(history[None], lag, steps, profile[None])[0]
    return forecast


def baseline_rows(history: np.ndarray, lag: int, steps: int, profile: np.ndarray) -> np.ndarray:
    """``baseline`` of each row of ``history`` (G, n), each seen through its row of
    ``profile`` (G, >= n + steps): (G, steps)."""
    n = history.shape[1]
    if lag > 1:
        return history[:, n - lag + np.arange(steps) % lag]
    adjusted = history / profile[:, :n]
    if lag in (LEVEL, THETA):
        start = adjusted[:, 0]
        level = LEVEL_ALPHA * np.sum(_decay(n) * adjusted, axis=1) + (1 - LEVEL_ALPHA) ** n * start
        drift = (
            np.array([theta_drift(row) for row in adjusted])
            if lag == THETA
            else np.zeros(len(history))
        )
        value = level[:, None] + drift[:, None] * (1 + LEVEL_ALPHA * np.arange(steps))
    else:
        value = np.repeat(adjusted[:, -1:], steps, axis=1)
    rows: np.ndarray = value * profile[:, n : n + steps]
    return rows


def theta_drift(values: np.ndarray) -> float:
    """THETA's offset over the smoothed level: the Theta method's one-step drift, half the
    least-squares slope of ``values`` over the level's weight (0 for one point). Fed its
    own forecasts, level plus this drift rises half the slope a step, as Theta's does."""
    return least_squares_slope(values) / 2 / LEVEL_ALPHA


@functools.lru_cache(maxsize=64)
def _decay(n: int) -> np.ndarray:
    """The level's weights over n points, oldest first: (1 - alpha)^(n-1) .. 1 (read-only:
    shared by every baseline of that length)."""
    weights = (1 - LEVEL_ALPHA) ** np.arange(n)[::-1]
    weights.flags.writeable = False
    return weights
