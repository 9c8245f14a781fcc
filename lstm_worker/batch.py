"""One setting on a batch of series (a shard's, in its task): one result per series out.

Each series is backtested (trained without its last ``holdout`` points and scored on
them against naive baselines), then refitted on all its history and forecast
``horizon`` steps past its end. A series that fails becomes a result with a reason;
it never stops the rest of the batch. A series whose training loss stops being finite
is trained once more at a tenth of the learning rate before it is given up as failed;
a series too short to train is forecast as ``forecast.short_series`` says (by default
the statistical models' forecast, status ``fallback``), or skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from lstm_worker.config import WorkerConfig
from lstm_worker.fit import forecast_many
from lstm_worker.names import Status
from lstm_worker.result import (
    SeriesResult,
    StoredModel,
    scored,
    short_result,
    too_short,
    view_details,
)
from lstm_worker.views import FittedView

_RETRY_LR_FACTOR = 0.1  # a diverged series is trained once more at this share of the lr


def pick_device() -> torch.device:
    """The GPU this process was given (Ray sets CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")


def series_seed(job_seed: int, series_id: object) -> int:
    """A seed that depends on the series alone, never on which shard it landed in."""
    return zlib.crc32(f"{job_seed}:{series_id}".encode())


def _retry_config(cfg: WorkerConfig) -> WorkerConfig:
    train = cfg.train.model_copy(update={"lr": cfg.train.lr * _RETRY_LR_FACTOR})
    return cfg.model_copy(update={"train": train})


def _diverged_reason(cfg: WorkerConfig) -> str:
    return (
        f"training loss became NaN or infinite, at lr {cfg.train.lr:g} and again at "
        f"{cfg.train.lr * _RETRY_LR_FACTOR:g}"
    )


def run_stacked(
    series_ids: Sequence[object],
    values: Sequence[np.ndarray],
    cfg: WorkerConfig,
    device: torch.device,
    warm: Mapping[object, Sequence[StoredModel]] | None = None,
    covariates: Sequence[np.ndarray] | None = None,
) -> list[SeriesResult]:
    """Every backtest model and every refit model of the shard, trained as one stack.

    Series whose loss diverged are trained again, alone in a second, smaller stack at a
    lower learning rate; the others keep the results of the first stack unchanged.
    """
    results: dict[int, SeriesResult] = {}
    usable = []
    for position, (series_id, series_values) in enumerate(zip(series_ids, values, strict=True)):
        reason = too_short(series_values, cfg)
        if reason:
            results[position] = short_result(series_id, series_values, reason, cfg, str(device))
        else:
            usable.append(position)
    for attempt, attempt_cfg in enumerate((cfg, _retry_config(cfg)), start=1):
        if usable:
            context = (attempt_cfg, device, attempt, results, warm or {}, covariates)
            usable = _stack_attempt(series_ids, values, usable, *context)
    for position in usable:  # diverged twice
        results[position] = SeriesResult(
            series_ids[position],
            Status.FAILED,
            _diverged_reason(cfg),
            device=str(device),
            attempts=2,
        )
    return [results[p] for p in range(len(series_ids))]


def _stack_attempt(
    series_ids: Sequence[object],
    values: Sequence[np.ndarray],
    positions: list[int],
    cfg: WorkerConfig,
    device: torch.device,
    attempt: int,
    results: dict[int, SeriesResult],
    warm: Mapping[object, Sequence[StoredModel]],
    covariates: Sequence[np.ndarray] | None,
) -> list[int]:
    """Train the series at ``positions`` as one stack; fill ``results``; return the diverged.

    Series p has one backtest model per window it keeps (a short series keeps fewer) and
    one refit model; ``models[p]`` lists their rows in the stack, the refit last. A
    shared start is one per window (group w), and one for the refits (group -1). A model
    with a stored model of its series and window in ``warm`` starts from it.
    """
    holdout, horizon = cfg.forecast.holdout_steps, cfg.forecast.horizon
    histories: list[np.ndarray] = []
    groups, seeds, models, starts, known = [], [], {}, [], []
    for p in positions:
        stored = {m.window: m for m in warm.get(series_ids[p], ())}
        cuts = cfg.cutoffs(len(values[p]))
        seed = series_seed(cfg.seed, series_ids[p])
        rows = []
        for group, cut in [*enumerate(cuts), (-1, len(values[p]))]:
            rows.append(len(histories))
            histories.append(values[p][:cut])
            groups.append(group)
            seeds.append(seed)
            starts.append(stored.get(group))
            if covariates is not None:  # the whole track: a backtest's holdout inputs are known
                known.append(covariates[p])
        models[p] = rows
    tracks = known if covariates is not None else None
    steps = max(holdout, horizon)
    stack = forecast_many(histories, steps, cfg, seeds, device, groups, starts, tracks)
    fit = stack.fit
    seconds = (fit.seconds + (stack.shared.seconds if stack.shared else 0.0)) / len(positions)
    diverged, params = [], fit.model.model_params()
    for p in positions:
        rows = models[p]
        if fit.diverged[rows].any():
            diverged.append(p)
            continue
        results[p] = scored(
            series_ids[p],
            values[p],
            stack.forecasts[rows[:-1], :holdout],
            stack.forecasts[rows[-1], :horizon],
            cfg,
            epochs=int(fit.epochs[rows[-1]]),
            train_seconds=seconds,
            forecast_seconds=stack.forecast_seconds / len(positions),
            device=str(device),
            attempts=attempt,
            inputs=view_details(stack.views[rows[-1]], cfg, bool(stack.calendar[rows[-1]])),
            models=tuple(
                StoredModel(
                    window,
                    params[row],
                    FittedView.of(stack.views[row]),
                    int(fit.epochs[row]),
                )
                for window, row in zip([*range(len(rows) - 1), -1], rows, strict=True)
            ),
        )
    return diverged


def forecast_batch(
    series_ids: Sequence[object],
    values: Sequence[np.ndarray],
    cfg: WorkerConfig,
    num_threads: int | None = None,
    warm: Mapping[object, Sequence[StoredModel]] | None = None,
    covariates: Sequence[np.ndarray] | None = None,
) -> list[SeriesResult]:
    """Run every series of a shard; one result per series, in input order. ``warm``: a
    series' stored models, its own start from them. ``covariates``: each series' known inputs
    (``cfg.covariates``), (n + horizon, E) for a series of n points."""
    if num_threads is not None:
        torch.set_num_threads(max(1, num_threads))
    device = pick_device()
    values = [np.asarray(v, np.float64) for v in values]
    if cfg.covariates:
        _check_covariates(values, covariates, cfg)
    try:
        return run_stacked(series_ids, values, cfg, device, warm, covariates)
    except Exception as error:  # noqa: BLE001 - the whole shard failed: say why per series
        reason = f"{type(error).__name__}: {error}"
        return [
            SeriesResult(i, Status.FAILED, reason, device=str(device), attempts=1)
            for i in series_ids
        ]


def _check_covariates(
    values: Sequence[np.ndarray], covariates: Sequence[np.ndarray] | None, cfg: WorkerConfig
) -> None:
    """Every series has its known inputs through its horizon (else a caller's bug)."""
    if covariates is None or len(covariates) != len(values):
        raise ValueError(f"cfg.covariates {cfg.covariates} need one (n + horizon, E) per series")
    for series_values, track in zip(values, covariates, strict=True):
        want = (len(series_values) + cfg.forecast.horizon, len(cfg.covariates))
        if track.shape != want:
            raise ValueError(f"covariates of shape {track.shape}, expected {want}")
