"""The entry of one task: a batch of series in, one result per series out.

Each series is backtested (trained without its last ``holdout`` points and scored on
them against naive baselines), then refitted on all its history and forecast
``horizon`` steps past its end. A series that fails becomes a result with a reason;
it never stops the rest of the batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lstm_worker.config import WorkerConfig
from lstm_worker.forecast import history_needed, recursive_forecast
from lstm_worker.metrics import naive_forecast, score, seasonal_naive_forecast
from lstm_worker.shard_train import ShardFit, train_stacked
from lstm_worker.stacked import stacked_forecast
from lstm_worker.train import train_model
from lstm_worker.windows import Scaler

_EMPTY = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class SeriesResult:
    """What one series produced; arrays are de-normalised, in the input's units."""

    series_id: object
    status: str  # ok | skipped | failed
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    backtest: np.ndarray = field(default_factory=lambda: _EMPTY)  # (holdout,) forecast of the held-out tail
    forecast: np.ndarray = field(default_factory=lambda: _EMPTY)  # (horizon,) forecast past the end of the history
    epochs: int = 0  # epochs the final (refitted) model trained
    train_seconds: float = 0.0  # backtest and refit together
    device: str = ""


def pick_device() -> torch.device:
    """The GPU this process was given (Ray sets CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")


def series_seed(job_seed: int, series_id: object) -> int:
    """A seed that depends on the series alone, never on which shard it landed in."""
    return zlib.crc32(f"{job_seed}:{series_id}".encode())


def fit_and_forecast(
    history: np.ndarray, horizon: int, cfg: WorkerConfig, seed: int, device: torch.device
) -> tuple[np.ndarray, int, float]:
    """Scale on ``history`` alone, train, forecast ``horizon`` steps, de-normalise."""
    scaler = Scaler.fit(history, cfg.model.scaler)
    scaled = scaler.transform(history)
    model, stats = train_model(scaled, cfg, seed, device)
    context = torch.from_numpy(scaled).to(device).unsqueeze(0)  # (1, n)
    predicted = recursive_forecast(model, context, horizon, cfg.lag)[0].cpu().numpy()
    return scaler.inverse(predicted), stats.epochs, stats.seconds


def _too_short(series_id: object, values: np.ndarray, cfg: WorkerConfig) -> str:
    needed = cfg.forecast.holdout_steps + cfg.min_fit_points()
    if len(values) < needed:
        return (f"{len(values)} points, fewer than the {needed} that holdout, validation "
                "and one lookback window need")
    return ""


def _scored(
    series_id: object,
    values: np.ndarray,
    backtest: np.ndarray,
    forecast: np.ndarray,
    cfg: WorkerConfig,
    **details,
) -> SeriesResult:
    """The ok result: the backtest scored against the holdout and the naive baselines."""
    holdout, m = cfg.forecast.holdout_steps, cfg.season_length
    train_part, actual = values[:-holdout], values[-holdout:]
    metrics = score(actual, backtest, train_part, m)
    for name, baseline in (
        ("naive", naive_forecast(train_part, holdout)),
        ("snaive", seasonal_naive_forecast(train_part, holdout, m)),
    ):
        metrics.update({f"{name}_{k}": v for k, v in score(actual, baseline, train_part, m).items()})
    return SeriesResult(series_id, "ok", metrics=metrics, backtest=backtest, forecast=forecast,
                        **details)


def forecast_many(
    histories: Sequence[np.ndarray], horizon: int, cfg: WorkerConfig, seeds: Sequence[int],
    device: torch.device,
) -> tuple[np.ndarray, ShardFit]:
    """Scale each history on itself, train all as one stack, forecast, de-normalise.

    Returns (K, horizon) forecasts in the input's units and the fit (epochs, losses).
    """
    scalers = [Scaler.fit(h, cfg.model.scaler) for h in histories]
    scaled = [s.transform(h) for s, h in zip(scalers, histories)]
    fit = train_stacked(scaled, cfg, seeds, device)
    keep = history_needed(cfg.model.lookback, cfg.lag)
    context = torch.from_numpy(np.stack([s[-keep:] for s in scaled])).to(device)  # (K, keep)
    predicted = stacked_forecast(fit.model, context, horizon, cfg.lag).cpu().numpy()
    return np.stack([s.inverse(p) for s, p in zip(scalers, predicted)]), fit


def run_series(
    series_id: object, values: np.ndarray, cfg: WorkerConfig, device: torch.device
) -> SeriesResult:
    """The reference path: backtest, refit and forecast one series with one ``nn.LSTM``."""
    reason = _too_short(series_id, values, cfg)
    if reason:
        return SeriesResult(series_id, "skipped", reason, device=str(device))
    seed, holdout = series_seed(cfg.seed, series_id), cfg.forecast.holdout_steps
    backtest, _, bt_seconds = fit_and_forecast(values[:-holdout], holdout, cfg, seed, device)
    forecast, epochs, fc_seconds = fit_and_forecast(values, cfg.forecast.horizon, cfg, seed, device)
    return _scored(series_id, values, backtest, forecast, cfg, epochs=epochs,
                   train_seconds=bt_seconds + fc_seconds, device=str(device))


def run_stacked(
    series_ids: Sequence[object], values: Sequence[np.ndarray], cfg: WorkerConfig,
    device: torch.device,
) -> list[SeriesResult]:
    """The grouped path: every backtest model and every refit model of the shard at once.

    Series k's backtest model and its refit model are models k and K + k of one stack.
    """
    results: dict[int, SeriesResult] = {}
    usable = []
    for position, (series_id, series_values) in enumerate(zip(series_ids, values)):
        reason = _too_short(series_id, series_values, cfg)
        if reason:
            results[position] = SeriesResult(series_id, "skipped", reason, device=str(device))
        else:
            usable.append(position)
    if usable:
        holdout, horizon = cfg.forecast.holdout_steps, cfg.forecast.horizon
        histories = [values[p][:-holdout] for p in usable] + [values[p] for p in usable]
        seeds = [series_seed(cfg.seed, series_ids[p]) for p in usable] * 2
        predicted, fit = forecast_many(histories, max(holdout, horizon), cfg, seeds, device)
        n, seconds = len(usable), fit.seconds / len(usable)
        for j, position in enumerate(usable):
            series_id = series_ids[position]
            if fit.diverged[j] or fit.diverged[n + j]:
                results[position] = SeriesResult(
                    series_id, "failed", "training loss became NaN or infinite",
                    epochs=int(fit.epochs[n + j]), device=str(device))
                continue
            results[position] = _scored(
                series_id, values[position], predicted[j, :holdout], predicted[n + j, :horizon],
                cfg, epochs=int(fit.epochs[n + j]), train_seconds=seconds, device=str(device))
    return [results[p] for p in range(len(series_ids))]


def run_shard(
    series_ids: Sequence[object],
    values: Sequence[np.ndarray],
    cfg: WorkerConfig,
    num_threads: int | None = None,
) -> list[SeriesResult]:
    """Run every series of a shard; one result per series, in input order."""
    if num_threads is not None:
        torch.set_num_threads(max(1, num_threads))
    device = pick_device()
    values = [np.asarray(v, np.float64) for v in values]
    if cfg.train.trainer == "stacked" and not cfg.model.bidirectional:
        try:
            return run_stacked(series_ids, values, cfg, device)
        except Exception as error:  # noqa: BLE001 - the whole shard failed: say why per series
            reason = f"{type(error).__name__}: {error}"
            return [SeriesResult(i, "failed", reason, device=str(device)) for i in series_ids]
    results = []
    for series_id, series_values in zip(series_ids, values, strict=True):
        try:
            results.append(run_series(series_id, series_values, cfg, device))
        except Exception as error:  # one bad series is a row, not a crash
            results.append(
                SeriesResult(
                    series_id, "failed", f"{type(error).__name__}: {error}", device=str(device)
                )
            )
    return results
