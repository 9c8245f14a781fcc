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

from collections.abc import Callable, Sequence

from cluster.data.output import pending_shards
from cluster.dispatch import TaskFailure, dispatch
from cluster.progress import ProgressSink
from cluster.run_plan import RunPlan, TableChoice
from lstm_worker.data.layout import write_shard
from lstm_worker.names import Status
from lstm_worker.shard.messages import LSTM_ALONE, JobChoice, Phase, Shard
from lstm_worker.shard.results import failed_shard_tables

Scores = dict[int, tuple[float, int]]  # setting -> (sum of the backtest metric, series)
BlendSums = dict[tuple[float, float], tuple[float, int]]  # (share, weight) -> (sum, series)


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

    def _choose(self, scores: Scores, blends: BlendSums) -> TableChoice:
        """The best mean backtest metric of each choice the job makes for the table."""
        setting = global_best(scores) if self.plan.global_select else None
        cfg = self.plan.job.cfg
        share, weight = choose_blend(blends, cfg.table.share, cfg.forecast.lstm_weight)
        means = {f"{a:.4g}/{w:.4g}": total / n for (a, w), (total, n) in blends.items() if n}
        return TableChoice(JobChoice(setting, weight, share), means)

    def _pass(
        self, shards: Sequence[Shard], phase: Phase, chosen: JobChoice = LSTM_ALONE
    ) -> tuple[Scores, BlendSums]:
        """Dispatch ``shards`` in one phase; write a failed task's shard; sum the scores."""
        job, index = self.plan.job, self.plan.input.index
        scores: Scores = {}
        blends: BlendSums = {}
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
            for pair, (total, n) in outcome.blend_scores.items():
                sum_so_far, n_so_far = blends.get(pair, (0.0, 0))
                blends[pair] = (sum_so_far + total, n_so_far + n)
            self.seconds += outcome.seconds
            self.progress.advance(len(shard), outcome.counts.get(Status.FAILED, 0))
        return scores, blends


def global_best(scores: Scores) -> int | None:
    """The setting with the lowest mean backtest metric over every trained series."""
    means = {index: total / n for index, (total, n) in scores.items() if n}
    return min(means, key=lambda index: means[index]) if means else None


def choose_blend(sums: BlendSums, share: float | str, weight: float | str) -> tuple[float, float]:
    """The table share, then the LSTM weight, each the best mean backtest metric of those
    summed (a fixed one as it is). The share is chosen on the LSTM's forecast alone (its
    weight 1, where the weight is auto), so that forecast (``y_hat_lstm``) is the best the
    LSTMs make; the weight then on the combination at that share. With no series scored:
    the series' own LSTM (share 0) and the LSTM alone (weight 1)."""
    means = {pair: total / n for pair, (total, n) in sums.items() if n}
    if share == "auto":
        judged = {a: v for (a, w), v in means.items() if w == (1.0 if weight == "auto" else weight)}
        share = min(judged, key=lambda a: judged[a]) if judged else 0.0
    if weight == "auto":
        judged = {w: v for (a, w), v in means.items() if a == share}
        weight = min(judged, key=lambda w: judged[w]) if judged else 1.0
    return float(share), float(weight)
