"""Is a season there, and what is its shape: the M4 competition's classical tools.

``seasonality_test`` and ``seasonal_indices`` follow the M4 benchmarks' code
(``Benchmarks and Evaluation.py``) step for step, quirks included (the lag-1
autocorrelation enters the test unsquared; the centred moving average branches on the
series' parity), so that Naive2 computed here matches the official Naive2 forecasts.
"""

from __future__ import annotations

import numpy as np


def autocorrelations(values: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags 0 .. ``max_lag`` (the M4 definition: one overall
    mean), (max_lag + 1,); all zero for a constant series (``autocorrelation_rows``'s)."""
    acf: np.ndarray = autocorrelation_rows(values[None], max_lag)[0]
    return acf


def autocorrelation_rows(values: np.ndarray, max_lag: int) -> np.ndarray:
    """``autocorrelations`` of each row of ``values`` (G, n): (G, max_lag + 1). One
    product a lag for all the rows: the tests below read up to a week of hourly lags, on
    every view of every series."""
    centred = values - values.mean(axis=1, keepdims=True)
    lags = np.empty((len(values), max_lag + 1))
    lags[:, 0] = np.einsum("ij,ij->i", centred, centred)
    for lag in range(1, max_lag + 1):
        lags[:, lag] = np.einsum("ij,ij->i", centred[:, lag:], centred[:, :-lag])
    denom = lags[:, :1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, lags / np.where(denom > 0, denom, 1.0), 0.0)


def seasonality_test(values: np.ndarray, period: int, acf: np.ndarray | None = None) -> bool:
    """The 90% autocorrelation test at ``period`` that M4's benchmarks deseasonalise on;
    ``acf``: ``values``' autocorrelations to at least ``period``, when already computed
    (each lag's is the same whatever the last)."""
    acf = _reaching(values, period, acf)
    return acf is not None and bool(seasonality_rows(acf[None], len(values), period)[0])


def _reaching(values: np.ndarray, period: int, acf: np.ndarray | None) -> np.ndarray | None:
    """``acf`` if it reaches lag ``period``, else ``values``' computed to it (None where
    the period does not fit in the values)."""
    if acf is not None and len(acf) > period:
        return acf
    return autocorrelations(values, period) if 2 <= period < len(values) else None


def seasonality_rows(acf: np.ndarray, n: int, period: int) -> np.ndarray:
    """``seasonality_test`` of rows of ``n`` points each, from their autocorrelations
    ``acf`` (G, > period): (G,) bool."""
    if period < 2 or n < 3 * period:
        return np.zeros(len(acf), dtype=bool)
    total = acf[:, 1] + np.sum(acf[:, 2:period] ** 2, axis=1)
    limit = 1.645 * np.sqrt((1 + 2 * total) / n)
    seasonal: np.ndarray = np.abs(acf[:, period]) > limit
    return seasonal


def _centred_average(values: np.ndarray, period: int) -> np.ndarray:
    """The centred moving average of each row of ``values`` (G, n), as M4's code takes it
    (a 2 x period average on even lengths); one convolution a row, as it is alone."""
    n = values.shape[1]
    average = np.full(values.shape, np.nan)
    if n >= period:
        kernel = np.ones(period) / period
        full = np.stack([np.convolve(row, kernel, mode="valid") for row in values])
        first = period // 2  # pandas' rolling(center=True) labels mean(v[j:j+p]) at j + p//2
        average[:, first : first + full.shape[1]] = full[:, : n - first]
    if n % 2 == 0:  # rolling(2, center=True) then np.roll(-1): mean(a[i], a[i+1])
        halves = (average[:, :-1] + average[:, 1:]) / 2
        average = np.concatenate([halves, np.full((len(values), 1), np.nan)], axis=1)
    return average


def seasonal_indices(values: np.ndarray, period: int, acf: np.ndarray | None = None) -> np.ndarray:
    """Multiplicative seasonal indices (period,), mean 1, by position ``t % period``.

    All ones when the test finds no season, or the values are not all positive (a ratio
    to the trend then means nothing).
    """
    acf = _reaching(values, period, acf)
    indices: np.ndarray = seasonal_index_rows(
        values[None], period, None if acf is None else acf[None]
    )[0]
    return indices


def seasonal_index_rows(values: np.ndarray, period: int, acf: np.ndarray | None) -> np.ndarray:
    """``seasonal_indices`` of each row of ``values`` (G, n), from the rows'
    autocorrelations ``acf`` (G, > period) (None: no season tested): (G, period)."""
    indices = np.ones((len(values), period))
    if acf is None:
        return indices
    found = seasonality_rows(acf, values.shape[1], period) & np.all(values > 0, axis=1)
    if not found.any():
        return indices
    seasonal = values[found]
    ratio = seasonal / _centred_average(seasonal, period)
    tail = np.full((len(ratio), period - ratio.shape[1] % period), np.nan)
    padded = np.concatenate([ratio, tail], axis=1).reshape(len(ratio), -1, period)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(padded, axis=1)  # (G', period)
    usable = np.all(np.isfinite(means), axis=1) & np.all(means > 0, axis=1)
    means = means / means.mean(axis=1, keepdims=True)
    indices[np.flatnonzero(found)[usable]] = means[usable]
    return indices


def season_profile(indices: np.ndarray, start: int, steps: int) -> np.ndarray:
    """The indices of positions ``start .. start + steps - 1`` of the series: (steps,)."""
    return indices[(start + np.arange(steps)) % len(indices)]
