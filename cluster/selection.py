"""Running the job's shards, and the choices made across all of them.

When nothing is chosen for the whole table (one setting or ``search.select:
per_series``, and a fixed ``forecast.lstm_weight``) every shard is done in one task: train
every setting, choose per series, write the parts (phase ``final``). A choice for the
whole table (``search.select: global``, or ``forecast.lstm_weight: auto``, the default)
needs every shard's backtest first, so a shard is done in two passes: ``search`` trains
every setting and keeps the results in ``parts/pending/`` (``cluster.task.pending``)
while the driver sums each setting's and each LSTM weight's score; the driver picks the
best mean of each, records them in the manifest (so a resume reuses them), then
``choose`` writes each kept shard's parts with them. A shard whose kept results are gone
is trained again with the choice made (``final``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.data.output import pending_shards, write_shard
from cluster.data.source import SeriesIndex
from cluster.dispatch import TaskFailure, dispatch
from cluster.manifest import Manifest
from cluster.plan import LSTM_ALONE, JobChoice, JobContext, Phase, Shard
from cluster.progress import ProgressSink
from cluster.task.results import failed_shard_tables
from lstm_worker.names import Status

Scores = dict[int, tuple[float, int]]  # setting -> (sum of the backtest metric, series)
WeightScores = dict[float, tuple[float, int]]  # LSTM weight -> (sum, series)


def global_select(job: JobContext) -> bool:
    """Whether the job chooses one setting for all series, once every shard is in."""
    return job.search.select == "global" and len(job.settings) > 1


def weight_auto(job: JobContext) -> bool:
    """Whether the job chooses the LSTM's weight for all series (a run that trains)."""
    return job.cfg.forecast.lstm_weight == "auto" and not job.spec.forecast.from_models


def passes(job: JobContext, manifest: Manifest) -> int:
    """Tasks per shard still to run: two while a choice for the table is still to make."""
    needed = global_select(job) or weight_auto(job)
    return 2 if needed and not manifest.job_chosen else 1


def run_shards(
    job: JobContext,
    index: SeriesIndex,
    shards: Sequence[Shard],
    manifest: Manifest,
    progress: ProgressSink,
) -> list[int]:
    """Run ``shards`` to their parts, in one pass or two; return the shards whose task
    failed (their series are written as failed, and a rerun retries them)."""
    run = _Pass(job, index, progress, passes(job, manifest))
    _passes(run, job, shards, manifest)
    manifest.task_seconds = round(run.seconds, 3)
    return run.failed


def _passes(run: _Pass, job: JobContext, shards: Sequence[Shard], manifest: Manifest) -> None:
    """One pass over ``shards``, or, for a choice for the whole table, the search pass and
    the passes that finish each shard with what it chose."""
    if not (global_select(job) or weight_auto(job)):
        weight = job.cfg.forecast.lstm_weight
        manifest.lstm_weight = 1.0 if weight == "auto" else weight  # auto: forecast-only
        run(shards, Phase.FINAL, JobChoice(lstm_weight=manifest.lstm_weight))
        return
    if not manifest.job_chosen:
        scores, weights = run(shards, Phase.SEARCH)
        if global_select(job):
            forced = global_best(scores)
            manifest.global_setting = None if forced is None else job.settings[forced].label()
            manifest.global_setting_index = forced
        fixed = job.cfg.forecast.lstm_weight
        manifest.lstm_weight = fixed if fixed != "auto" else _best_weight(weights)
        manifest.lstm_weight_scores = {
            f"{w:.4g}": total / n for w, (total, n) in weights.items() if n
        }
        manifest.job_chosen = True
        manifest.save(job.out)
    assert manifest.lstm_weight is not None
    chosen = JobChoice(manifest.global_setting_index, manifest.lstm_weight)
    kept = pending_shards(job.out)
    run([s for s in shards if s.index in kept], Phase.CHOOSE, chosen)
    run(
        [s for s in shards if s.index not in kept and s.index not in run.failed],
        Phase.FINAL,
        chosen,
    )


def global_best(scores: Scores) -> int | None:
    """The setting with the lowest mean backtest metric over every trained series."""
    means = {index: total / n for index, (total, n) in scores.items() if n}
    return min(means, key=lambda index: means[index]) if means else None


def _best_weight(scores: WeightScores) -> float:
    """The LSTM weight with the lowest mean backtest metric; 1 (the LSTM alone) when no
    series had an LSTM forecast to weigh."""
    means = {weight: total / n for weight, (total, n) in scores.items() if n}
    return min(means, key=lambda weight: means[weight]) if means else 1.0


class _Pass:
    """Dispatches shards in one phase; writes a failed task's shard; sums the scores."""

    def __init__(self, job: JobContext, index: SeriesIndex, progress: ProgressSink, passes: int):
        self.job, self.index, self.progress, self.passes = job, index, progress, passes
        self.failed: list[int] = []
        self.seconds = 0.0  # the finished tasks' own run times, summed

    def __call__(
        self, shards: Sequence[Shard], phase: Phase, chosen: JobChoice = LSTM_ALONE
    ) -> tuple[Scores, WeightScores]:
        job = self.job
        scores: Scores = {}
        weights: WeightScores = {}
        for shard, outcome in dispatch(shards, job, job.spec.resources, phase, chosen):
            if isinstance(outcome, TaskFailure):
                ids = self.index.ids.slice(shard.start, len(shard))
                tables = failed_shard_tables(
                    job.spec,
                    ids,
                    outcome.reason,
                    outcome.attempts,
                    shard.index,
                    job.cfg,
                    job.schema,
                )
                write_shard(job.out, shard.index, tables, failed=True)
                self.failed.append(shard.index)
                skipped = self.passes if phase == Phase.SEARCH else 1  # its choose pass too
                self.progress.advance(len(shard) * skipped, len(shard))
                continue
            for setting, (total, n) in outcome.scores.items():
                so_far = scores.get(setting, (0.0, 0))
                scores[setting] = (so_far[0] + total, so_far[1] + n)
            for weight, (total, n) in outcome.weight_scores.items():
                sum_so_far, n_so_far = weights.get(weight, (0.0, 0))
                weights[weight] = (sum_so_far + total, n_so_far + n)
            self.seconds += outcome.seconds
            self.progress.advance(len(shard), outcome.counts.get(Status.FAILED, 0))
        return scores, weights
