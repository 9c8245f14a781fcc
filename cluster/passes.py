"""The job's passes over its shards, and the choices made for the whole table (each
series' own choice is made in its task: ``lstm_worker.shard.select``).

When nothing is chosen for the whole table (one setting or ``search.select:
per_series``, and a fixed ``table.share`` and ``forecast.lstm_weight``) every shard is done
in one task: train every setting, choose per series, write the parts (phase ``final``). A
choice for the whole table (``search.select: global``, or ``table.share`` or
``forecast.lstm_weight`` auto, the default) needs every shard's backtest first, so a shard
is done in two passes: ``search`` trains every setting and keeps the results in
``parts/pending/`` (``lstm_worker.shard.pending``) while the driver sums each setting's and
each (share, weight) pair's score; the driver picks the best mean of each
(``choose_blend``), records them in the manifest (so a resume reuses them), then
``choose`` writes each kept shard's parts with them. A shard whose kept results are gone
is trained again with the choice made (``final``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from cluster.data.output import pending_shards
from cluster.dispatch import TaskFailure, dispatch
from cluster.progress import ProgressSink
from cluster.run_plan import RunPlan, TableChoice
from lstm_worker.data.layout import write_shard
from lstm_worker.intervals import pooled_quantiles
from lstm_worker.names import Status
from lstm_worker.shard.messages import HEDGE, LSTM_ALONE, BlendSum, JobChoice, Phase, Shard
from lstm_worker.shard.results import failed_shard_tables

Scores = dict[int, tuple[float, int]]  # setting -> (sum of the backtest metric, series)
BlendSums = dict[tuple[float, float], BlendSum]  # (share, weight) -> its sums over series
Residuals = dict[tuple[float, float], list[np.ndarray]]  # pair -> each shard's (rows, H)
_DEPART = 2.0  # the paired t a choice needs to depart from the even mix (choose_blend)


class ShardRunner:
    """Runs a plan's shards to their parts; keeps what the job needs to record: the
    choice the parts were written with, the failed shards, the tasks' seconds."""

    def __init__(self, plan: RunPlan, progress: ProgressSink):
        self.plan, self.progress = plan, progress
        self.chosen: TableChoice | None = plan.chosen  # for the whole table, once made
        self.applied: JobChoice | None = None  # what the parts are written with
        self.failed: list[int] = []
        self.seconds = 0.0  # the finished tasks' own run times, summed

    def run(self, on_chosen: Callable[[], object]) -> None:
        """Every shard still to do, in one pass or two; ``on_chosen`` is called once a
        choice for the whole table is made (the job records it before the second pass)."""
        plan, todo = self.plan, self.plan.todo
        if not plan.choose_for_table:
            weight, share = plan.job.cfg.forecast.lstm_weight, plan.job.cfg.table.share
            self.applied = JobChoice(
                lstm_weight=1.0 if weight == "auto" else weight,
                table_share=0.0 if share == "auto" else share,
            )
            self._pass(todo, Phase.FINAL, self.applied)  # auto here: a forecast-only run
            return
        if self.chosen is None:
            self.chosen = self._choose(*self._pass(todo, Phase.SEARCH))
            on_chosen()
        self.applied = self.chosen.choice
        kept = pending_shards(plan.out)
        self._pass([s for s in todo if s.index in kept], Phase.CHOOSE, self.applied)
        rest = [s for s in todo if s.index not in kept and s.index not in self.failed]
        self._pass(rest, Phase.FINAL, self.applied)

    def _choose(self, scores: Scores, blends: BlendSums, residuals: Residuals) -> TableChoice:
        """The best mean backtest metric of each choice the job makes for the table, and
        the intervals' pooled quantiles at the share and weight chosen."""
        setting = global_best(scores) if self.plan.global_select else None
        cfg = self.plan.job.cfg
        share, weight = choose_blend(blends, cfg.table.share, cfg.forecast.lstm_weight)
        means = {f"{a:.4g}/{w:.4g}": b.total / b.count for (a, w), b in blends.items() if b.count}
        pool = residuals.get((share, weight), [])
        quantiles = {}
        if pool and cfg.forecast.levels:
            found = pooled_quantiles(np.concatenate(pool), cfg.forecast.levels)
            if all(np.isfinite(q).all() for q in found.values()):
                quantiles = {level: tuple(float(v) for v in q) for level, q in found.items()}
        rows = sum(len(part) for part in pool) if quantiles else None
        return TableChoice(JobChoice(setting, weight, share, quantiles), means, rows)

    def _pass(
        self, shards: Sequence[Shard], phase: Phase, chosen: JobChoice = LSTM_ALONE
    ) -> tuple[Scores, BlendSums, Residuals]:
        """Dispatch ``shards`` in one phase; write a failed task's shard; sum the scores."""
        job, index = self.plan.job, self.plan.input.index
        scores: Scores = {}
        blends: BlendSums = {}
        residuals: Residuals = {}
        for shard, outcome in dispatch(shards, job, self.plan.spec.resources, phase, chosen):
            if isinstance(outcome, TaskFailure):
                ids = index.ids.slice(shard.start, len(shard))
                tables = failed_shard_tables(
                    job.input,
                    ids,
                    outcome.reason,
                    outcome.attempts,
                    shard.index,
                    job.cfg,
                    job.schema,
                )
                write_shard(job.out, shard.index, tables, failed=True)
                self.failed.append(shard.index)
                skipped = self.plan.passes if phase == Phase.SEARCH else 1  # its choose pass too
                self.progress.advance(len(shard) * skipped, len(shard))
                continue
            for setting, (total, n) in outcome.scores.items():
                so_far = scores.get(setting, (0.0, 0))
                scores[setting] = (so_far[0] + total, so_far[1] + n)
            for pair, found in outcome.blend_sums.items():
                blends[pair] = blends.get(pair, BlendSum()) + found
            for pair, rows in outcome.residuals.items():
                residuals.setdefault(pair, []).append(rows)
            self.seconds += outcome.seconds
            self.progress.advance(len(shard), outcome.counts.get(Status.FAILED, 0))
        return scores, blends, residuals


def global_best(scores: Scores) -> int | None:
    """The setting with the lowest mean backtest metric over every trained series."""
    means = {index: total / n for index, (total, n) in scores.items() if n}
    return min(means, key=lambda index: means[index]) if means else None


def choose_blend(sums: BlendSums, share: float | str, weight: float | str) -> tuple[float, float]:
    """The table share, then the LSTM weight (a fixed one as it is).

    The share is chosen on the LSTM's forecast alone (at weight 1 where the weight is
    auto), so that forecast (``y_hat_lstm``) is the best the LSTMs make; the weight then
    on the combination at that share. Each is the best mean backtest metric, but only
    where it beats the even mix (``HEDGE``) by a paired t of ``_DEPART`` over the
    table's series; else the even mix. One backtest window is noisy: on the M3 backtests
    the best weight beat the even mix by under 1% there and lost to it by 2 to 3% on
    the points after (docs/benchmarks.md). No table forecast anywhere (every share
    scores alike): share 0; no series scored: share 0 and the LSTM alone."""
    means = {pair: b.total / b.count for pair, b in sums.items() if b.count}
    if not means:
        return (0.0 if share == "auto" else float(share)), (
            1.0 if weight == "auto" else float(weight)
        )
    if share == "auto":
        at = 1.0 if weight == "auto" else float(weight)
        judged = {a: v for (a, w), v in means.items() if w == at}
        share = _depart(
            judged, lambda a: sums[(a, at)], lambda b: b.share_spread, sums.get((HEDGE, at))
        )
        if len(set(judged.values())) == 1:
            share = 0.0  # the table model forecast nothing (every share is the series' LSTM)
    if weight == "auto":
        judged = {w: v for (a, w), v in means.items() if a == share}
        hedge = sums.get((float(share), HEDGE))
        weight = _depart(
            judged, lambda w: sums[(float(share), w)], lambda b: b.weight_spread, hedge
        )
    return float(share), float(weight)


def _depart(
    means: dict[float, float],
    sum_of: Callable[[float], BlendSum],
    spread: Callable[[BlendSum], float],
    hedge: BlendSum | None,
) -> float:
    """The value of the best mean, where it is better than the even mix's by a paired t
    of ``_DEPART`` over the series (the spread is of each series' difference to it)."""
    best = min(means, key=lambda v: means[v])
    if hedge is None or best == HEDGE:
        return best
    found = sum_of(best)
    n = found.count
    mean = (found.total - hedge.total) / n  # < 0: the best is better, on average
    variance = max(spread(found) / n - mean * mean, 0.0)
    t = -mean / math.sqrt(variance / n) if variance > 0 else (math.inf if mean < 0 else 0.0)
    return best if t >= _DEPART else HEDGE
