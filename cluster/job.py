"""The job: the one place that knows the order YAML -> index -> shards -> Ray -> Parquet.

A problem of the job (spec, input, output) raises before any work. A problem of one
series is its row in the outputs: every series appears exactly once in metrics.parquet
whatever happened to it. The driver holds an index of the input (ids and row ranges),
never its values, and counts, never results: tasks read their own rows and write their
own parts, which the driver finally streams into one file per output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow.parquet as pq
import ray

from cluster.data.output import check_output_path, compact
from cluster.dispatch import connect
from cluster.ledger import ledger_scores
from cluster.lock import output_lock
from cluster.manifest import Manifest, RunStatus, now, versions
from cluster.passes import ShardRunner
from cluster.progress import NoProgress, ProgressSink
from cluster.run_plan import RunPlan, plan_run
from cluster.runs import new_run_id, output_path, resolve_links
from cluster.sections import JobSpec
from cluster.table import train_table_model
from lstm_worker.data.layout import LEDGER, METRICS_FILE, OUTPUTS
from lstm_worker.data.place import Place
from lstm_worker.data.table import freq_alias
from lstm_worker.errors import FailureLimitError, InputError, OutputError
from lstm_worker.names import Status

ProgressFactory = Callable[[int, int], ProgressSink]  # (series to do, already done) -> sink


@dataclass(frozen=True)
class JobSummary:
    output: Place
    counts: dict[str, int]
    wall_seconds: float
    series_per_second: float


def run_job(
    spec: JobSpec,
    address: str | None = None,
    overwrite: bool = False,
    progress: ProgressFactory = NoProgress,
) -> JobSummary:
    """Run a whole job, or the rest of it, and write its outputs; returns counts and timings.

    Each shard's task writes its own parts; shards already written by an earlier run of
    the same job (same spec digest and input) are skipped. Raises ``FailureLimitError``
    after writing everything when more series failed than
    ``output.max_failed_fraction`` allows.
    """
    clock, template, run_id = _Clock(), spec.output.path, new_run_id()
    spec = spec.model_copy(
        update={"output": spec.output.model_copy(update={"path": output_path(template, run_id)})}
    )
    check_output_path(spec.output.path, spec.input.path)
    with output_lock(Place(spec.output.path), run_id):  # one run at a time per output
        try:
            spec, links = resolve_links(spec, template, Place(spec.output.path))
            plan = plan_run(spec, links, template, run_id, overwrite)
            clock.lap("plan_seconds")
            return _execute(plan, address, progress, clock)
        except OSError as error:  # a disk full, a store gone away: what is written stays
            raise OutputError(
                f"output.path: {spec.output.path}: the job stopped, its storage failed: "
                f"{str(error).splitlines()[0]}. The shards already written are kept; run "
                "the same command again once the storage is back to finish the rest"
            ) from None


def _execute(
    plan: RunPlan, address: str | None, progress: ProgressFactory, clock: _Clock
) -> JobSummary:
    """Run the plan's shards on Ray, then gather their parts into the outputs."""
    series, per_series = len(plan.input.index), plan.passes
    sink = progress(series * per_series, (series - plan.series_to_compute) * per_series)
    runner = ShardRunner(plan, sink)
    manifest = _planned(plan)

    def record() -> Manifest:
        return _write_manifest(manifest, runner, plan.out)

    record()
    with _ray(address, needed=bool(plan.todo)):
        clock.lap("ray_start_seconds")
        try:
            if plan.trains_table:
                spec = plan.spec
                trained = train_table_model(plan.job, plan.input.index, spec.resources, spec.seed)
                manifest.table_model = trained
                runner.seconds += trained.get("task_seconds", 0.0)  # a task of the run too
                clock.lap("table_seconds")
                record()
            runner.run(on_chosen=record)
        except KeyboardInterrupt:  # finished shards are on disk; say so, then let the CLI exit
            manifest.status, manifest.interrupted_at = RunStatus.INTERRUPTED, now()
            record()
            raise
        finally:
            sink.close()
            clock.lap("compute_seconds")  # before Ray stops: shutting it down is not work
    clock.lap("ray_stop_seconds")
    counts, cleaning = compact(plan.out, len(plan.shards))
    clock.lap("compact_seconds")
    _finish(manifest, plan, runner, counts, cleaning, clock)
    return _outcome(plan.spec, record(), plan.out)


def _planned(plan: RunPlan) -> Manifest:
    """The manifest as the plan decides it, before any task: the same at every write."""
    spec, job, planned = plan.spec, plan.job, plan.input
    return Manifest(
        name=spec.name,
        run_id=plan.run_id,
        spec_digest=plan.key["spec_digest"],
        input_fingerprint=plan.key["input_fingerprint"],
        spec=spec.model_dump(mode="json"),
        input_read=planned.spec.input.path,
        input_prepared=planned.prepared,
        freq=freq_alias(planned.sample.freq),
        season_length=job.cfg.season_length,
        resolved=planned.resolved,
        output_template=plan.template if plan.template != spec.output.path else None,
        warm_started_from=plan.links.warm_start,
        forecast_from=plan.links.from_models,
        ledger_of=plan.links.previous,
        links=plan.links.notes,
        series=len(planned.index),
        rows=planned.index.total_rows,
        shards=len(plan.shards),
        shards_resumed=len(plan.shards) - len(plan.todo),
        settings=[s.label() for s in job.settings],
        tasks=len(plan.todo) * plan.passes,
        table_model=plan.table_model,
        started_at=plan.started_at,
        versions=versions(),
    )


def _write_manifest(manifest: Manifest, runner: ShardRunner, out: Place) -> Manifest:
    """manifest.json, the one place it is written, with what the runner chose so far.
    Written when the run starts, once the table model has trained, once a choice for the
    whole table is made, on Ctrl-C and at the end."""
    chosen, settings = runner.chosen, runner.plan.job.settings
    applied = runner.applied or (chosen.choice if chosen else None)
    setting = chosen.choice.setting if chosen else None
    manifest.job_chosen = chosen is not None
    manifest.global_setting = None if setting is None else settings[setting].label()
    manifest.global_setting_index = setting
    manifest.lstm_weight = applied.lstm_weight if applied else None
    manifest.table_share = applied.table_share if applied else None
    manifest.blend_scores = chosen.blend_scores if chosen else {}
    quantiles = applied.quantiles if applied else {}
    manifest.interval_quantiles = {str(level): list(q) for level, q in quantiles.items()}
    manifest.interval_pool = chosen.interval_pool if chosen else None
    manifest.save(out)
    return manifest


def _finish(
    manifest: Manifest,
    plan: RunPlan,
    runner: ShardRunner,
    counts: dict[str, int],
    cleaning: dict[str, int],
    clock: _Clock,
) -> None:
    """The manifest's fields of a finished run, the ledger's scores of the night among them."""
    if plan.links.previous and (plan.out / LEDGER).exists():
        spec = plan.spec
        manifest.ledger = ledger_scores(
            plan.out, spec.input.id_col, spec.ledger.jump, plan.job.ledger_of
        )
    wall, computed = clock.elapsed(), plan.series_to_compute
    failed_fraction = counts.get(Status.FAILED, 0) / len(plan.input.index)
    limit = plan.spec.output.max_failed_fraction
    manifest.status, manifest.finished_at = RunStatus.FINISHED, now()
    manifest.counts, manifest.input_cleaning = counts, cleaning
    manifest.failed_fraction = round(failed_fraction, 6)
    manifest.failure_limit_exceeded = limit is not None and failed_fraction > limit
    manifest.shards_failed = sorted(runner.failed)
    manifest.task_seconds = round(runner.seconds, 3)
    manifest.wall_seconds = round(wall, 3)
    manifest.timings = clock.laps
    manifest.series_computed = computed
    manifest.series_per_second = round(computed / wall, 3)
    manifest.outputs = [name for name in OUTPUTS if (plan.out / name).exists()]


def _outcome(spec: JobSpec, manifest: Manifest, out: Place) -> JobSummary:
    """The run's summary; raises when no series was usable or too many failed."""
    counts, total = manifest.counts, manifest.series
    summary = JobSummary(
        out, counts, manifest.wall_seconds or 0.0, manifest.series_per_second or 0.0
    )
    if set(counts) == {Status.SKIPPED}:
        first = _first_reason(out / METRICS_FILE, spec.input.id_col)
        raise InputError(
            f"{spec.input.path}: every one of the {total} series is "
            f"unusable; {out / METRICS_FILE} gives each one's reason; the first, {first}"
        )
    if manifest.failure_limit_exceeded:
        raise FailureLimitError(
            f"{counts[Status.FAILED]} of {total} series failed "
            f"({manifest.failed_fraction:.1%}), more than output.max_failed_fraction "
            f"({spec.output.max_failed_fraction:g}) allows; every output is written in {out}",
            out,
        )
    return summary


def _first_reason(metrics: Place, id_col: str) -> str:
    """The first series of ``metrics`` and its reason, read from the file's first rows."""
    with metrics.fs.open_input_file(metrics.path) as handle:
        batch = next(pq.ParquetFile(handle).iter_batches(batch_size=1, columns=[id_col, "reason"]))
    row = batch.to_pylist()[0]
    return f"{row[id_col]!r}: {row['reason']}"


@contextmanager
def _ray(address: str | None, needed: bool) -> Iterator[None]:
    """Join (or start) Ray when there is work; shut down what this call started."""
    started = connect(address) if needed else False
    try:
        yield
    finally:
        if started:
            ray.shutdown()


class _Clock:
    """Seconds since the run started, and per phase (the manifest's ``timings``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.laps: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def lap(self, name: str) -> None:
        """Record as ``name`` the seconds that no earlier lap accounts for."""
        self.laps[name] = round(self.elapsed() - sum(self.laps.values()), 3)
