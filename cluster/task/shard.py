"""What one task does with its shard: read its rows, clean, train every search setting,
choose per series, and write the shard's Parquet parts. Only counts go back to the driver.

It runs inside a Ray worker, yet is plain Python: tests call it in-process. The
phases of ``search.select: global`` are described, with the driver's side, in
``cluster.selection``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from cluster.data.output import pending_part, write_shard
from cluster.data.source import read_rows
from cluster.data.table import SeriesTable, series_table
from cluster.plan import JobContext, Phase, Placement, Shard, ShardSummary
from cluster.task.pending import read_pending, write_pending
from cluster.task.results import shard_tables
from cluster.task.select import choose_shard
from lstm_worker import SeriesResult, WorkerConfig, forecast_batch
from lstm_worker.names import Status


def process_shard(
    job: JobContext,
    shard: Shard,
    placement: Placement,
    num_threads: int = 1,
    phase: Phase = Phase.FINAL,
    forced: int | None = None,
) -> ShardSummary:
    """Run ``shard`` to its parts in ``phase``; ``forced``: the setting chosen globally."""
    spec = job.spec
    rows = read_rows(spec.input, job.files, list(shard.segments), job.schema)
    table = series_table(rows, spec.input, job.freq, job.schema)
    pending = pending_part(job.out, shard.index)
    if phase == Phase.CHOOSE:
        outcomes, placement = read_pending(pending)
    else:
        outcomes = {
            setting.index: _train(table, cfg, num_threads)
            for setting, cfg in zip(job.settings, job.configs, strict=True)
        }
    if phase == Phase.SEARCH:
        write_pending(pending, outcomes, placement)
        return ShardSummary({}, _scores(outcomes, job.search.metric))
    choices = choose_shard(table, outcomes, job.settings, job.search, job.cfg, forced, placement)
    write_shard(
        job.out,
        shard.index,
        shard_tables(spec, table, shard.index, choices, job.cfg),
        table.cleaning,
    )
    if phase == Phase.CHOOSE:
        pending.unlink()
    return ShardSummary(dict(Counter(choice.result.status for choice in choices)))


def _train(table: SeriesTable, cfg: WorkerConfig, num_threads: int) -> list[SeriesResult]:
    """One setting over the shard's usable series; skipped ones keep their read note."""
    usable = table.usable()
    computed = iter(
        forecast_batch(
            [table.ids[p] for p in usable],
            [table.values[p] for p in usable],
            cfg,
            num_threads=num_threads,
        )
    )
    return [
        next(computed) if not note else SeriesResult(series_id, Status.SKIPPED, note)
        for series_id, note in zip(table.ids, table.notes, strict=True)
    ]


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
