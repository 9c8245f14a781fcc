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
from lstm_worker.forecast import recursive_forecast
from lstm_worker.metrics import naive_forecast, score, seasonal_naive_forecast
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
    predicted = recursive_forecast(model, context, horizon)[0].cpu().numpy()  # (horizon,)
    return scaler.inverse(predicted), stats.epochs, stats.seconds


def run_series(
    series_id: object, values: np.ndarray, cfg: WorkerConfig, device: torch.device
) -> SeriesResult:
    """Backtest, refit and forecast one series."""
    holdout, horizon, m = cfg.forecast.holdout_steps, cfg.forecast.horizon, cfg.season_length
    needed = cfg.model.lookback + holdout + 1
    if len(values) < needed:
        return SeriesResult(
            series_id,
            "skipped",
            f"{len(values)} points, fewer than lookback + holdout + 1 = {needed}",
            device=str(device),
        )
    seed = series_seed(cfg.seed, series_id)
    train_part, actual = values[:-holdout], values[-holdout:]
    backtest, _, bt_seconds = fit_and_forecast(train_part, holdout, cfg, seed, device)
    metrics = score(actual, backtest, train_part, m)
    for name, baseline in (
        ("naive", naive_forecast(train_part, holdout)),
        ("snaive", seasonal_naive_forecast(train_part, holdout, m)),
    ):
        metrics.update({f"{name}_{k}": v for k, v in score(actual, baseline, train_part, m).items()})
    forecast, epochs, fc_seconds = fit_and_forecast(values, horizon, cfg, seed, device)
    return SeriesResult(
        series_id,
        "ok",
        metrics=metrics,
        backtest=backtest,
        forecast=forecast,
        epochs=epochs,
        train_seconds=bt_seconds + fc_seconds,
        device=str(device),
    )


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
    results = []
    for series_id, series_values in zip(series_ids, values, strict=True):
        try:
            results.append(
                run_series(series_id, np.asarray(series_values, np.float64), cfg, device)
            )
        except Exception as error:  # one bad series is a row, not a crash
            results.append(
                SeriesResult(
                    series_id, "failed", f"{type(error).__name__}: {error}", device=str(device)
                )
            )
    return results
