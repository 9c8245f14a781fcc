"""Per-series cleaning at the edge: duplicate timestamps, NaN/inf values, missing steps.

The policies come from the spec (``input.duplicates``, ``input.missing``). A series that
cannot be used under them is not a problem of the job: it gets a reason and becomes a
``skipped`` row while the others go on. What was filled or merged is counted, per series
and in total, so no value is changed silently.

    duplicates  skip: the series is skipped, naming the first duplicated timestamp
                last: the last row read wins;  mean: the rows are averaged
    missing     NaN/inf values and time steps absent from the series' regular grid
                fill_linear (default), fill_forward, fill_zero: filled, and counted
                skip: the series is skipped, with the counts and the first one
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_MAX_GROWTH = 10  # a grid this many times the rows present (and 1000 steps more) is refused


@dataclass(frozen=True)
class CleanSeries:
    """One series on its regular grid, or the reason it cannot be used."""

    times: np.ndarray
    values: np.ndarray  # float64, all finite unless ``skip``
    skip: str = ""  # why the series is skipped; "" when it is usable
    filled: int = 0  # points filled: NaN/inf values plus inserted time steps
    inserted: int = 0  # of those, time steps the table did not have
    merged: int = 0  # rows dropped by merging duplicate timestamps


def when(t: object) -> str:
    """A timestamp or integer step as a reason names it."""
    if isinstance(t, np.datetime64):
        return str(pd.Timestamp(t))
    return str(t)


def clean_series(
    times: np.ndarray,
    values: np.ndarray,
    freq: pd.offsets.BaseOffset | int,
    missing: str,
    duplicates: str,
) -> CleanSeries:
    """Merge duplicates, put the series on its grid, fill or refuse the gaps."""
    times, values, merged, skip = dedupe(times, values, duplicates)
    if skip:
        return CleanSeries(times, values, skip=skip)
    grid, skip = _grid(times, freq)
    if skip:
        return CleanSeries(times, values, skip=skip, merged=merged)
    full = values
    if len(grid) != len(times):
        full = np.full(len(grid), np.nan)
        full[np.searchsorted(grid, times)] = values
    bad = ~np.isfinite(full)
    n_bad, inserted = int(bad.sum()), len(grid) - len(times)
    if not n_bad:
        return CleanSeries(grid, full, merged=merged)
    if bad.all():
        return CleanSeries(grid, full, skip="no finite value", merged=merged)
    if missing == "skip":
        reason = (
            f"{n_bad - inserted} NaN/inf values and {inserted} missing time steps, the "
            f"first at {when(grid[np.argmax(bad)])}; input.missing is skip"
        )
        return CleanSeries(grid, full, skip=reason, merged=merged)
    return CleanSeries(
        grid, fill(full, bad, missing), filled=n_bad, inserted=inserted, merged=merged
    )


def dedupe(
    times: np.ndarray, values: np.ndarray, policy: str
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(times, values, rows merged, skip reason); ``times`` sorted, ties in file order."""
    same = times[1:] == times[:-1]  # (n - 1,) row i + 1 repeats row i's timestamp
    if not same.any():
        return times, values, 0, ""
    merged = int(same.sum())
    if policy == "skip":
        first = times[1:][same][0]
        return (
            times,
            values,
            merged,
            (
                f"duplicate timestamp {when(first)} ({merged} repeated rows in the series); "
                "input.duplicates is skip"
            ),
        )
    starts = np.r_[True, ~same]  # first row of each timestamp
    if policy == "last":
        keep = np.r_[~same, True]  # last row of each timestamp
        return times[keep], values[keep], merged, ""
    group = np.cumsum(starts) - 1  # (n,) the timestamp each row belongs to
    finite = np.isfinite(values)
    sums = np.bincount(group, np.where(finite, values, 0.0))
    counts = np.bincount(group, finite)
    means = np.divide(sums, counts, out=np.full(len(sums), np.nan), where=counts > 0)
    return times[starts], means, merged, ""


def _grid(times: np.ndarray, freq: pd.offsets.BaseOffset | int) -> tuple[np.ndarray, str]:
    """The regular grid from the first to the last time, or why there is none."""
    first, last = times[0], times[-1]
    step = _fixed_step(freq, first)
    if step is not None:
        offsets = times - first
        off = offsets % step != offsets.dtype.type(0)
        if off.any():
            return times, _off_grid(times[off][0], freq)
        size = int((last - first) // step) + 1
        if size == len(times):
            return times, ""
        if skip := _too_sparse(size, times):
            return times, skip
        grid = first + step * np.arange(size)
    else:  # calendar offsets (months, business days): let pandas walk the calendar
        assert not isinstance(freq, int)
        grid = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq=freq).to_numpy()
        on = np.isin(times, grid.astype(times.dtype))
        if not on.all() or not len(grid):
            return times, _off_grid(times[~on][0] if not on.all() else first, freq)
        if skip := _too_sparse(len(grid), times):
            return times, skip
    return grid.astype(times.dtype), ""


def _fixed_step(
    freq: pd.offsets.BaseOffset | int, first: np.datetime64 | np.integer
) -> np.timedelta64 | int | None:
    """The grid's step where it is one length of time (an integer clock, hours, days, or
    weeks from a first time on their weekday); None where the calendar decides (months).
    pandas walks a weekly calendar one date at a time: 5 s for M4 Weekly's 359 series."""
    if isinstance(freq, int):
        return freq
    if isinstance(freq, pd.offsets.Tick):
        return np.timedelta64(pd.Timedelta(freq))
    if isinstance(freq, pd.offsets.Week) and freq.is_on_offset(pd.Timestamp(first)):
        return np.timedelta64(7 * freq.n, "D")
    return None


def _off_grid(t: object, freq: pd.offsets.BaseOffset | int) -> str:
    unit = f"step {freq}" if isinstance(freq, int) else f"frequency {freq.freqstr}"
    return f"time {when(t)} is not on the series' grid ({unit} from its first time)"


def _too_sparse(size: int, times: np.ndarray) -> str:
    if size > _MAX_GROWTH * len(times) and size - len(times) > 1000:
        return (
            f"{len(times)} rows span {size} time steps ({when(times[0])} to "
            f"{when(times[-1])}); a timestamp is likely wrong"
        )
    return ""


def fill(values: np.ndarray, bad: np.ndarray, policy: str) -> np.ndarray:
    """Fill ``values[bad]``; the edges take the nearest known value (linear, forward)."""
    if policy == "fill_zero":
        return np.where(bad, 0.0, values)
    good = np.flatnonzero(~bad)
    if policy == "fill_forward":
        source = np.maximum.accumulate(np.where(bad, 0, np.arange(len(values))))
        source[: good[0]] = good[0]  # before the first known value: that value
        return values[source]
    out = values.copy()
    out[bad] = np.interp(np.flatnonzero(bad), good, values[good])
    return out
