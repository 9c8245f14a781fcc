"""What one task does with its shard: read its rows, clean, train every search setting,
choose per series, and write the shard's Parquet parts. Only counts go back to the driver.

It runs inside a Ray worker, yet is plain Python: tests call it in-process. With
``search.select: global`` a shard is done in two passes: ``search`` trains and keeps
the results in ``parts/pending/`` while the driver learns each setting's score, then
``choose`` writes the parts with the setting the driver chose for every series.
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from cluster.output import pending_part, write_bytes, write_shard
from cluster.plan import JobContext, Shard
from cluster.results import shard_tables
from cluster.select import choose_shard
from cluster.source import read_rows
from cluster.table import SeriesTable, series_table
from lstm_worker import SeriesResult, WorkerConfig, run_shard


@dataclass(frozen=True)
class Placement:
    """Where a shard was trained, as written in metrics.parquet."""

    node_id: str = ""
    gpu_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ShardSummary:
    """What a task sends back: counts, never rows."""

    counts: dict[str, int]  # status -> series
    scores: dict[int, tuple[float, int]] = field(default_factory=dict)  # setting -> (sum, n)


def run_shard_job(
    job: JobContext, shard: Shard, placement: Placement, num_threads: int = 1,
    phase: str = "final", forced: int | None = None,
) -> ShardSummary:
    """Run ``shard`` to its parts; ``phase`` is final, or search then choose (global)."""
    spec = job.spec
    rows = read_rows(spec.input, job.files, list(shard.segments), job.schema)
    table = series_table(rows, spec.input, job.freq, job.id_type)
    pending = pending_part(job.out, shard.index)
    if phase == "choose":
        outcomes, placement = pickle.loads(pending.read_bytes())
    else:
        outcomes = {setting.index: _train(table, cfg, num_threads)
                    for setting, cfg in zip(job.settings, job.configs)}
    if phase == "search":
        write_bytes(pickle.dumps((outcomes, placement)), pending)
        return ShardSummary({}, _scores(outcomes, job.search.metric))
    choices = choose_shard(table, outcomes, job.settings, job.search, job.cfg, forced,
                           placement.node_id, placement.gpu_ids)
    write_shard(job.out, shard.index, shard_tables(spec, table, shard.index, choices, job.cfg),
                table.cleaning)
    if phase == "choose":
        pending.unlink()
    return ShardSummary(dict(Counter(choice.result.status for choice in choices)))


def _train(table: SeriesTable, cfg: WorkerConfig, num_threads: int) -> list[SeriesResult]:
    """One setting over the shard's usable series; skipped ones keep their read note."""
    usable = table.usable()
    computed = iter(run_shard([table.ids[p] for p in usable], [table.values[p] for p in usable],
                              cfg, num_threads=num_threads))
    return [next(computed) if not note else SeriesResult(series_id, "skipped", note)
            for series_id, note in zip(table.ids, table.notes)]


def _scores(outcomes: dict[int, list[SeriesResult]], metric: str) -> dict[int, tuple[float, int]]:
    """Per setting, the sum and count of ``metric`` over its trained series."""
    scores = {}
    for index, results in outcomes.items():
        values = [r.metrics[metric] for r in results
                  if r.status == "ok" and np.isfinite(r.metrics.get(metric, np.nan))]
        scores[index] = (float(np.sum(values)), len(values))
    return scores
