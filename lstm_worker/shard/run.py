"""What one task does with its shard: read its rows, clean, train every search setting,
choose per series, and write the shard's Parquet parts. Only counts go back to the driver.

It runs inside a Ray worker, yet is plain Python: tests call it in-process. The
phases of ``search.select: global`` are described, with the driver's side, in
``cluster.passes``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import replace

import numpy as np
import torch

from lstm_worker import SeriesResult, WorkerConfig, forecast_batch
from lstm_worker.data.future import known_inputs, with_future
from lstm_worker.data.layout import LEDGER, pending_part, write_shard
from lstm_worker.data.models import model_part, write_models
from lstm_worker.data.source import read_rows
from lstm_worker.data.table import SeriesTable, series_table
from lstm_worker.names import Status
from lstm_worker.shard.blend import blend_sums
from lstm_worker.shard.combine import statistical_of
from lstm_worker.shard.ledger import ledger_table
from lstm_worker.shard.messages import (
    LSTM_ALONE,
    JobChoice,
    JobContext,
    Phase,
    Placement,
    Shard,
    ShardSummary,
)
from lstm_worker.shard.pending import read_pending, write_pending
from lstm_worker.shard.results import shard_tables
from lstm_worker.shard.select import Choice, ShardResults, choose_shard
from lstm_worker.shard.store import Warm, forecast_from_store, store_entries, warm_models
from lstm_worker.table.forecasts import shard_table_forecasts
from lstm_worker.table.models import table_path


def run_shard(
    job: JobContext,
    shard: Shard,
    placement: Placement,
    num_threads: int = 1,
    phase: Phase = Phase.FINAL,
    chosen: JobChoice = LSTM_ALONE,
) -> ShardSummary:
    """Run ``shard`` to its parts in ``phase``; ``chosen``: what the job chose for every
    series. Torch runs on the ``num_threads`` CPUs the task holds, whether it trains or
    not."""
    torch.set_num_threads(max(1, num_threads))
    rows = read_rows(job.input, job.files, list(shard.segments), job.schema)
    table = series_table(rows, job.input, job.freq, job.schema)
    table = with_future(table, job.input, job.cfg.forecast.horizon)
    if job.from_models:
        choices = forecast_from_store(job, table, placement, job.from_models)
        return _write(job, shard.index, table, choices)
    pending = pending_part(job.out, shard.index)
    if phase == Phase.CHOOSE:
        outcomes, placement, statistical, tables = read_pending(pending)
    else:
        warm, cold = warm_models(job, table, job.warm_start) if job.warm_start else ({}, {})
        outcomes = {
            setting.index: _train(table, cfg, warm, cold, setting.index)
            for setting, cfg in zip(job.settings, job.configs, strict=True)
        }
        statistical = statistical_of(table, job.cfg)
        tables = shard_table_forecasts(table, job.cfg, table_path(job.out))
    results = ShardResults(table, outcomes, job.settings, statistical, tables)
    if phase == Phase.SEARCH:
        write_pending(pending, outcomes, placement, statistical, tables)
        pairs = job.cfg.blend_pairs()
        sums, residuals = blend_sums(
            results, job.search, job.cfg, pairs, lambda series_id: pooled_series(job, series_id)
        )
        return ShardSummary({}, _scores(outcomes, job.search.metric), sums, residuals)
    choices = choose_shard(results, job.search, job.cfg, chosen, placement)
    configs = {index: cfg.model_dump(mode="json") for index, cfg in enumerate(job.configs)}
    entries = store_entries(table, choices, outcomes)
    write_models(model_part(job.out, shard.index), job.digest, configs, entries)
    summary = _write(job, shard.index, table, choices)
    if phase == Phase.CHOOSE:
        pending.unlink()
    return summary


def _write(job: JobContext, index: int, table: SeriesTable, choices: list[Choice]) -> ShardSummary:
    """The shard's parts, with its rows of the forecast ledger when the run scores a
    previous one (``ledger.previous``)."""
    tables = shard_tables(job.input, table, index, choices, job.cfg)
    if job.ledger_previous:
        tables[LEDGER] = ledger_table(
            table, job.ledger_previous, job.ledger_of, job.input, job.cfg.season_length
        )
    write_shard(job.out, index, tables, table.cleaning)
    return ShardSummary(dict(Counter(choice.result.status for choice in choices)))


def _train(
    table: SeriesTable,
    cfg: WorkerConfig,
    warm: Warm,
    cold: dict[object, str],
    setting: int,
) -> list[SeriesResult]:
    """One setting over the shard's usable series; skipped ones keep their read note. A
    series with stored models of this setting in ``warm`` starts from them; ``cold`` says
    why one that was asked to start warm did not."""
    usable = table.usable()
    ids = [table.ids[p] for p in usable]
    starts = {i: warm[i][setting] for i in ids if setting in warm.get(i, {})}
    computed = iter(
        forecast_batch(
            ids,
            [table.values[p] for p in usable],
            cfg,
            warm=starts,
            covariates=known_inputs(table, cfg, usable),
        )
    )
    results = []
    for series_id, note in zip(table.ids, table.notes, strict=True):
        if note:
            results.append(SeriesResult(series_id, Status.SKIPPED, note))
            continue
        result = next(computed)
        if warm or cold:  # a warm start was asked for: say how each series began
            init = "warm" if series_id in starts else "cold"
            inputs = {**result.inputs, "init": init, "init_reason": cold.get(series_id)}
            result = replace(result, inputs=inputs)
        results.append(result)
    return results


def pooled_series(job: JobContext, series_id: object) -> bool:
    """Whether a series' residuals join the intervals' pool: every series of a table up
    to ``cluster.run_plan``'s bound, else a share drawn by its id and the job's seed
    alone (so the pool is the same for any shard count)."""
    if job.pooled >= 1.0:
        return True
    return zlib.crc32(f"{job.cfg.seed}:interval:{series_id}".encode()) < job.pooled * 2**32


def _scores(outcomes: dict[int, list[SeriesResult]], metric: str) -> dict[int, tuple[float, int]]:
    """Per setting, the sum and count of ``metric`` over its trained series."""
    scores = {}
    for index, results in outcomes.items():
        values = [
            r.metrics[metric]
            for r in results
            if r.status == Status.OK and np.isfinite(r.metrics.get(metric, np.nan))
        ]
        scores[index] = (float(np.sum(values)), len(values))
    return scores
