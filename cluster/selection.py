"""Running the job's shards, and the one choice made across all of them.

With ``search.select: per_series`` (or a single setting) every shard is done in one
task: train every setting, choose per series, write the parts (phase ``final``). With
``search.select: global`` the choice needs every shard's backtest first, so a shard is
done in two passes: ``search`` trains every setting and keeps the results in
``parts/pending/`` (``cluster.task.pending``) while the driver sums each setting's score;
the driver picks the setting with the best mean, records it in the manifest (so a
resume reuses it), then ``choose`` writes each kept shard's parts with it. A shard
whose kept results are gone is trained again with the chosen setting (``final``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.data.output import pending_shards, write_shard
from cluster.data.source import SeriesIndex
from cluster.dispatch import TaskFailure, dispatch
from cluster.manifest import Manifest
from cluster.plan import JobContext, Phase, Shard
from cluster.progress import ProgressSink
from cluster.task.results import failed_shard_tables
from lstm_worker.names import Status

Scores = dict[int, tuple[float, int]]  # setting -> (sum of the backtest metric, series)


def global_select(job: JobContext) -> bool:
    """Whether the job chooses one setting for all series, once every shard is in."""
    return job.search.select == "global" and len(job.settings) > 1


def passes(job: JobContext, manifest: Manifest) -> int:
    """Tasks per shard still to run: two while a global choice is still to be made."""
    return 2 if global_select(job) and manifest.global_setting_index is None else 1


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
    """One pass over ``shards``, or, for ``search.select: global``, the search pass and
    the passes that finish each shard with the setting it chose."""
    if not global_select(job):
        run(shards, Phase.FINAL)
        return
    if manifest.global_setting_index is None:
        forced = global_best(run(shards, Phase.SEARCH))
        manifest.global_setting = None if forced is None else job.settings[forced].label()
        manifest.global_setting_index = forced
        manifest.save(job.out)
    forced, kept = manifest.global_setting_index, pending_shards(job.out)
    run([s for s in shards if s.index in kept], Phase.CHOOSE, forced)
    run(
        [s for s in shards if s.index not in kept and s.index not in run.failed],
        Phase.FINAL,
        forced,
    )


def global_best(scores: Scores) -> int | None:
    """The setting with the lowest mean backtest metric over every trained series."""
    means = {index: total / n for index, (total, n) in scores.items() if n}
    return min(means, key=lambda index: means[index]) if means else None


class _Pass:
    """Dispatches shards in one phase; writes a failed task's shard; sums the scores."""

    def __init__(self, job: JobContext, index: SeriesIndex, progress: ProgressSink, passes: int):
        self.job, self.index, self.progress, self.passes = job, index, progress, passes
        self.failed: list[int] = []
        self.seconds = 0.0  # the finished tasks' own run times, summed

    def __call__(self, shards: Sequence[Shard], phase: Phase, forced: int | None = None) -> Scores:
        job = self.job
        scores: Scores = {}
        for shard, outcome in dispatch(shards, job, job.spec.resources, phase, forced):
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
            self.seconds += outcome.seconds
            self.progress.advance(len(shard), outcome.counts.get(Status.FAILED, 0))
        return scores
