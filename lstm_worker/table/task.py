"""The table model's task: read a sample of the table, train one stack of members per
backtest window and one for the refit, and store them with the run.

Like the series' models, the table model of backtest window ``w`` learns only from each
series' history before that series' cut-off ``w``, so no backtest is scored on points
its table model saw; the refit's learns from every history. Each history is cut at an
origin every half horizon; its last origin (the last ``steps`` points as targets) is
kept apart to choose the best epoch. At most ``table.windows`` training windows are
drawn, at random with the job's seed, from those of the sample.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.batch import pick_device
from lstm_worker.config import WorkerConfig
from lstm_worker.data.place import Place
from lstm_worker.data.source import read_rows
from lstm_worker.data.table import series_table
from lstm_worker.shard.messages import JobContext
from lstm_worker.stacked import StackedLSTM
from lstm_worker.table.examples import cut_examples, train_origins
from lstm_worker.table.fit import new_model, train_table
from lstm_worker.table.models import TableModels, TableWindow, read_table, table_path, write_table


@dataclass(frozen=True)
class TableSummary:
    """What the table task sends back: how each window's members trained."""

    series: int  # the sample's usable series
    windows: dict[int, TableWindow]
    warm: str  # the stored table model it started from ("": none)
    seconds: float  # the task's own run time


def model_windows(cfg: WorkerConfig) -> list[int]:
    """The table model's windows: each backtest window (0 the latest), then -1, the refit."""
    return [*range(cfg.forecast.n_windows), -1]


def forecast_steps(cfg: WorkerConfig) -> int:
    """How far the table model forecasts: the backtest's holdout or the horizon."""
    return max(cfg.forecast.holdout_steps, cfg.forecast.horizon)


def table_lookback(cfg: WorkerConfig) -> int:
    return cfg.table.lookback or cfg.lookback


def history_end(n_points: int, window: int, cfg: WorkerConfig) -> int | None:
    """Where the history a window's table model may learn from ends, for a series of
    ``n_points``: its cut-off ``window`` (None: it has none), or its end for the refit."""
    if window == -1:
        return n_points
    cuts = cfg.cutoffs(n_points)
    return cuts[window] if window < len(cuts) else None


def member_seeds(cfg: WorkerConfig) -> list[int]:
    return [zlib.crc32(f"{cfg.seed}:table:{m}".encode()) for m in range(cfg.table.members)]


def train_table_models(
    values: Sequence[np.ndarray],
    cfg: WorkerConfig,
    device: torch.device,
    stored: TableModels | None = None,
) -> TableModels:
    """Train every window's members on ``values`` (the sample's series); each window
    starts from ``stored``'s same window where its shape matches (``table.warm_epochs``).

    A backtest window's members are kept where they forecast the validation origins
    better than their start. The refit's then train on every origin, the last ones too,
    where the latest backtest window's were kept, else they stay at their start: so the
    refit forecasts as the model that was backtested did, and learns from the newest
    points the backtest held out."""
    steps, lookback, seeds = forecast_steps(cfg), table_lookback(cfg), member_seeds(cfg)
    params: dict[int, dict[str, np.ndarray]] = {}
    fits: dict[int, TableWindow] = {}
    for window in model_windows(cfg):
        histories = [v[:end] for v in values if (end := history_end(len(v), window, cfg))]
        refit = window == -1
        train, val = _cuts(histories, steps, cfg, window, refit)
        model, epochs = _start(cfg, lookback, seeds, stored, window)
        if refit and 0 in fits and not fits[0].kept:
            epochs = 0  # the latest backtest's training lost to its start: so does this
        train_examples = cut_examples(histories, train, steps, lookback, cfg)
        val_examples = None if refit else cut_examples(histories, val, steps, lookback, cfg)
        if not len(train_examples) or (val_examples is not None and not len(val_examples)):
            epochs = 0  # nothing to learn from, or to judge it by: the start forecasts
        seed = zlib.crc32(f"{cfg.seed}:table-order:{window}".encode())
        fit = train_table(model, train_examples, val_examples, cfg.table, epochs, seed, device)
        params[window] = {n: p.detach().cpu().numpy() for n, p in fit.model.named_parameters()}
        fits[window] = TableWindow(
            len(train_examples),
            len(val),
            fit.epochs,
            fit.kept,
            None if refit else fit.start_loss,
            None if refit else fit.final_loss,
            fit.seconds,
        )
    return TableModels(cfg.table, lookback, steps, params, fits)


def _cuts(
    histories: Sequence[np.ndarray], steps: int, cfg: WorkerConfig, window: int, refit: bool
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Training (series, origin) pairs, at most ``table.windows`` of them, and each
    history's last origin for validation (the refit trains on those too)."""
    held = 0 if refit else steps
    train = [
        (k, origin)
        for k, history in enumerate(histories)
        for origin in train_origins(len(history) - held, steps, cfg)
    ]
    if len(train) > cfg.table.windows:
        draw = np.random.default_rng(zlib.crc32(f"{cfg.seed}:table-sample:{window}".encode()))
        train = [train[i] for i in np.sort(draw.choice(len(train), cfg.table.windows, False))]
    val = [(k, len(h) - steps) for k, h in enumerate(histories) if len(h) - steps >= cfg.min_fit]
    return train, val


def _start(
    cfg: WorkerConfig,
    lookback: int,
    seeds: list[int],
    stored: TableModels | None,
    window: int,
) -> tuple[StackedLSTM, int]:
    """A window's members and their epochs: the stored ones, warm, where their shape
    matches; else fresh ones from the seeds."""
    fresh = new_model(cfg.table, lookback, seeds)
    kept = None if stored is None else stored.params.get(window)
    if kept is None or any(kept[n].shape != p.shape for n, p in fresh.named_parameters()):
        return fresh, cfg.table.epochs
    start = StackedLSTM.from_params(fresh.cfg, {n: torch.from_numpy(v) for n, v in kept.items()})
    return start, cfg.table.warm_epochs


def run_table(
    job: JobContext, segments: Sequence[tuple[int, int, int]], num_threads: int = 1
) -> TableSummary:
    """Read the sample's rows (``segments``: file, first row, stop row), train the table
    model (warm from ``job.warm_start``'s when it stored one) and write it to the run's
    model store."""
    started = time.perf_counter()
    torch.set_num_threads(max(1, num_threads))
    rows = read_rows(job.input, job.files, list(segments), job.schema)
    table = series_table(rows, job.input, job.freq, job.schema)
    values = [table.values[p] for p in table.usable()]
    stored, warm = None, ""
    if job.warm_start and (found := table_path(Place(job.warm_start))).exists():
        stored, warm = read_table(found), str(found)
    models = train_table_models(values, job.cfg, pick_device(), stored)
    write_table(table_path(job.out), models)
    return TableSummary(len(values), models.windows, warm, time.perf_counter() - started)
