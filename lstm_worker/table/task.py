"""The table model's task: read a sample of the table, train one stack of members per
backtest window and one for the refit, and store them with the run.

Like the series' models, the table model of backtest window ``w`` learns only from each
series' history before that series' cut-off ``w``, so no backtest is scored on points
its table model saw; the refit's learns from every history. Each history is cut at an
origin every half horizon; a backtest window's last origin (the last ``steps`` points as
targets) is kept apart to score it. At most ``cfg.table_windows`` training windows are
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
from lstm_worker.table.examples import Examples, cut_examples, first_origin, train_origins
from lstm_worker.table.fit import new_model, stack, train_table
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
    """Train every window's members on ``values`` (the sample's series).

    A backtest window's members start fresh (or from ``stored``'s same window, where its
    shape matches, for ``table.warm_epochs``); their validation origins are scored at
    the start and the end, for the manifest. The refit's start from the latest backtest
    window's and train ``table.warm_epochs`` more on every origin, the newest ones too:
    so the refit forecasts as the model that was backtested did, updated with the
    points the backtest held out.
    A window's examples are its series cut at its origins; one cut is computed once,
    whichever windows share it (the statistical fits are most of the cost)."""
    steps, lookback, seeds = cfg.table_steps, cfg.table_lookback, member_seeds(cfg)
    plans = {window: _cuts(values, steps, cfg, window) for window in model_windows(cfg)}
    every = sorted({cut for train, val in plans.values() for cut in (*train, *val)})
    examples = cut_examples(values, every, steps, lookback, cfg)
    row = {cut: i for i, cut in enumerate(every)}

    def of(cuts: list[tuple[int, int]]) -> Examples:
        return examples.take(np.array([row[c] for c in cuts], dtype=np.int64))

    params: dict[int, dict[str, np.ndarray]] = {}
    fits: dict[int, TableWindow] = {}
    for window in model_windows(cfg):  # the backtest windows, then the refit
        train, val = plans[window]
        refit = window == -1
        if refit:
            model = stack(cfg.table, lookback, params[0])
            epochs = cfg.table.warm_epochs
        else:
            model, epochs = _start(cfg, lookback, seeds, stored, window)
        checked = None if refit else of(val)
        if not train or (checked is not None and not len(checked)):
            epochs = 0  # nothing to learn from, or to judge it by: the start forecasts
        seed = zlib.crc32(f"{cfg.seed}:table-order:{window}".encode())
        fit = train_table(model, of(train), checked, cfg.table, epochs, seed, device)
        params[window] = {n: p.detach().cpu().numpy() for n, p in fit.model.named_parameters()}
        fits[window] = TableWindow(
            len(train),
            len(val),
            fit.epochs,
            None if refit else fit.start_loss,
            None if refit else fit.final_loss,
            fit.seconds,
        )
    return TableModels(cfg.table, lookback, steps, params, fits)


def _cuts(
    values: Sequence[np.ndarray], steps: int, cfg: WorkerConfig, window: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """A window's training (series, origin) pairs, at most ``cfg.table_windows``, and
    each history's last origin for validation (the refit trains on those too): each
    series' history ends at its cut-off ``window`` (``history_end``)."""
    train: list[tuple[int, int]] = []
    val: list[tuple[int, int]] = []
    for k, series in enumerate(values):
        end = history_end(len(series), window, cfg)
        if end is None:
            continue
        held = 0 if window == -1 else steps
        seed = zlib.crc32(f"{cfg.seed}:table-origins:{window}:{k}".encode())
        train.extend((k, origin) for origin in train_origins(end - held, steps, cfg, seed))
        if window != -1 and end - steps >= first_origin(cfg):
            val.append((k, end - steps))
    if len(train) > cfg.table_windows:
        draw = np.random.default_rng(zlib.crc32(f"{cfg.seed}:table-sample:{window}".encode()))
        train = [train[i] for i in np.sort(draw.choice(len(train), cfg.table_windows, False))]
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
    return stack(cfg.table, lookback, kept), cfg.table.warm_epochs


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
