"""Point-forecast accuracy and the naive baselines every forecast is compared with.

sMAPE and MASE follow the M4 competition's definitions. Undefined values (a MASE whose
in-sample scale is zero, say) are NaN, which the Parquet output stores as null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lstm_worker.names import Baseline

METRICS = ("mae", "rmse", "smape", "mase")


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of 200 |y - yhat| / (|y| + |yhat|), with 0/0 taken as a perfect 0."""
    return float(100.0 * _smape_terms(actual, predicted).mean())


def _smape_terms(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    denom = np.abs(actual) + np.abs(predicted)
    ratio: np.ndarray = np.divide(
        2.0 * np.abs(actual - predicted), denom, out=np.zeros_like(denom), where=denom > 0
    )
    return ratio


def mase_scale(insample: np.ndarray, season_length: int) -> float:
    """Mean absolute seasonal difference of the training part (lag 1 if it is too short)."""
    lag = season_length if len(insample) > season_length else 1
    if len(insample) <= lag:
        return float("nan")
    scale = float(np.mean(np.abs(insample[lag:] - insample[:-lag])))
    return scale if scale > 0 and np.isfinite(scale) else float("nan")


def score(
    actual: np.ndarray, predicted: np.ndarray, insample: np.ndarray, season_length: int
) -> dict[str, float]:
    """MAE, RMSE, sMAPE and MASE of one series' forecast against its holdout."""
    return score_rows(actual, predicted[None], mase_scale(insample, season_length))[0]


def score_rows(actual: np.ndarray, predicted: np.ndarray, scale: float) -> list[dict[str, float]]:
    """``score`` of each forecast of one holdout, the rows of ``predicted`` (R, H), whose
    history's MASE scale is ``scale``: each row's numbers those of its forecast alone."""
    error = actual - predicted
    maes = np.mean(np.abs(error), axis=1)
    rmses = np.sqrt(np.mean(error**2, axis=1))
    smapes = 100.0 * _smape_terms(actual, predicted).mean(axis=1)
    return [
        {"mae": float(mae), "rmse": float(rmse), "smape": float(smape), "mase": float(mae) / scale}
        for mae, rmse, smape in zip(maes, rmses, smapes, strict=True)
    ]


def naive_forecast(insample: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last value."""
    return np.full(horizon, insample[-1], dtype=np.float64)


def seasonal_naive_forecast(insample: np.ndarray, horizon: int, season_length: int) -> np.ndarray:
    """Repeat the last season (the last value when the history is shorter than a season)."""
    if len(insample) < season_length:
        return naive_forecast(insample, horizon)
    last_season = insample[-season_length:]
    return np.resize(last_season, horizon).astype(np.float64)


def score_windows(
    values: np.ndarray, backtests: np.ndarray, cutoffs: Sequence[int], season_length: int
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Score each window's backtest (W, H) and the baselines'; return the mean and each."""
    per_window, m = [], season_length
    for cut, backtest in zip(cutoffs, backtests, strict=True):
        holdout = len(backtest)
        train_part, actual = values[:cut], values[cut : cut + holdout]
        naive = naive_forecast(train_part, holdout)
        snaive = seasonal_naive_forecast(train_part, holdout, m)
        scale = mase_scale(train_part, m)
        ours, *baselines = score_rows(actual, np.stack([backtest, naive, snaive]), scale)
        metrics = dict(ours)
        for name, scores in zip((Baseline.NAIVE, Baseline.SNAIVE), baselines, strict=True):
            metrics.update({f"{name}_{k}": v for k, v in scores.items()})
        per_window.append(metrics)
    return _finite_means(per_window), per_window


def _finite_means(per_window: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the windows where it is finite (NaN where it never is)."""
    if len(per_window) == 1:  # the default's one window: its own values, as their mean
        return {
            key: value if math.isfinite(value) else math.nan for key, value in per_window[0].items()
        }
    mean: dict[str, float] = {}
    for key in per_window[0] if per_window else ():
        finite = [w[key] for w in per_window if np.isfinite(w[key])]
        mean[key] = float(np.mean(finite)) if finite else float("nan")
    return mean
