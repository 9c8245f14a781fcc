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

from cluster.data.output import (
    ACCURACY,
    METRICS_FILE,
    OUTPUTS,
    PREPARED,
    check_output_path,
    compact,
    finished_shards,
    prepare_output_dir,
)
from cluster.data.place import Place
from cluster.data.source import input_fingerprint
from cluster.data.table import freq_alias
from cluster.dispatch import connect
from cluster.errors import FailureLimitError, InputError, OutputError
from cluster.inputs import InputPlan, plan_input
from cluster.lock import output_lock
from cluster.manifest import Manifest, RunStatus, now, read_manifest, versions
from cluster.plan import JobContext, Shard, plan_shards
from cluster.progress import NoProgress, ProgressSink
from cluster.report.realised import night_scores
from cluster.runs import RunLinks, new_run_id, output_path, resolve_links
from cluster.search import SearchSpec, expand
from cluster.selection import passes, run_shards
from cluster.spec import JobSpec
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
            return _run_held(spec, links, template, run_id, address, overwrite, progress, clock)
        except OSError as error:  # a disk full, a store gone away: what is written stays
            raise OutputError(
                f"output.path: {spec.output.path}: the job stopped, its storage failed: "
                f"{str(error).splitlines()[0]}. The shards already written are kept; run "
                "the same command again once the storage is back to finish the rest"
            ) from None


def _run_held(
    spec: JobSpec,
    links: RunLinks,
    template: str,
    run_id: str,
    address: str | None,
    overwrite: bool,
    progress: ProgressFactory,
    clock: _Clock,
) -> JobSummary:
    """``run_job`` once the output is this run's and the runs it builds on are found."""
    key = {"spec_digest": spec.digest(), "input_fingerprint": input_fingerprint(spec.input)}
    out, previous = _open_output(spec, key, overwrite)
    plan = plan_input(spec, out / PREPARED, key["input_fingerprint"])
    clock.lap("plan_seconds")
    job = _context(spec, plan, out, _run_id_of(links.previous))
    shards = plan_shards(plan.index, spec.resources.series_per_task)
    done = finished_shards(out)
    todo = [shard for shard in shards if shard.index not in done]
    manifest = _started(spec, key, plan, job, shards, todo, previous)
    manifest.run_id = previous.run_id if previous and previous.run_id else run_id
    manifest.output_template = template if template != spec.output.path else None
    manifest.warm_started_from, manifest.forecast_from = links.warm_start, links.from_models
    manifest.scored_run, manifest.links = links.previous, links.notes
    manifest.save(out)
    computed, per_series = sum(len(shard) for shard in todo), passes(job, manifest)
    sink = progress(len(plan.index) * per_series, (len(plan.index) - computed) * per_series)
    with _ray(address, needed=bool(todo)):
        clock.lap("ray_start_seconds")
        try:
            failed = run_shards(job, plan.index, todo, manifest, sink)
        except KeyboardInterrupt:  # finished shards are on disk; say so, then let the CLI exit
            manifest.status, manifest.interrupted_at = RunStatus.INTERRUPTED, now()
            manifest.save(out)
            raise
        finally:
            sink.close()
            clock.lap("compute_seconds")  # before Ray stops: shutting it down is not work
    clock.lap("ray_stop_seconds")
    counts, cleaning = compact(out, len(shards))
    clock.lap("compact_seconds")
    _finished(manifest, spec, counts, cleaning, failed, clock, computed, out, job.scored_run)
    manifest.save(out)
    return _outcome(spec, manifest, out)


def _open_output(
    spec: JobSpec, key: dict[str, str], overwrite: bool
) -> tuple[Place, Manifest | None]:
    """The output directory, checked and ready; the earlier run's manifest, if resuming."""
    previous = None if overwrite else read_manifest(spec.output.path)
    out = prepare_output_dir(spec.output.path, previous.key if previous else None, key, overwrite)
    return out, previous


def _run_id_of(path: str | None) -> str:
    """The run id of the run at ``path`` (its directory name if its manifest has none)."""
    if path is None:
        return ""
    manifest = read_manifest(path)
    return manifest.run_id if manifest and manifest.run_id else Place(path).name


def _context(spec: JobSpec, plan: InputPlan, out: Place, scored_run: str) -> JobContext:
    """What every task shares: the resolved config of every search setting, and more."""
    settings = expand(spec.search, spec.seed)
    freq = plan.sample.freq
    configs = [spec.for_setting(s).worker_config(plan.calendar, freq) for s in settings]
    return JobContext(
        plan.spec,
        plan.index.files,
        plan.index.schema,
        plan.sample.freq,
        spec.worker_config(plan.calendar, freq),
        settings,
        configs,
        spec.search or SearchSpec(),
        out,
        scored_run,
    )


def _started(
    spec: JobSpec,
    key: dict[str, str],
    plan: InputPlan,
    job: JobContext,
    shards: list[Shard],
    todo: list[Shard],
    previous: Manifest | None,
) -> Manifest:
    resolved = spec.resolved(plan.calendar)
    manifest = Manifest(
        name=spec.name,
        **key,
        spec=spec.model_dump(mode="json"),
        input_read=plan.spec.input.path,
        input_prepared=plan.prepared,
        freq=freq_alias(plan.sample.freq),
        season_length=job.cfg.season_length,
        resolved={
            "season_length": resolved["season_length"],
            "seasons": list(resolved["seasons"]),
            "model.lookback": resolved["lookback"],
            "model.calendar": list(job.cfg.calendar),
            "train.shared_start": job.cfg.train.shared_start,
            "why": resolved["why"],
        },
        series=len(plan.index),
        rows=plan.index.total_rows,
        shards=len(shards),
        shards_resumed=len(shards) - len(todo),
        settings=[s.label() for s in job.settings],
        started_at=now(),
        versions=versions(),
    )
    if previous is not None and previous.job_chosen:  # a resume keeps the choices made
        manifest.job_chosen = True
        manifest.global_setting = previous.global_setting
        manifest.global_setting_index = previous.global_setting_index
        manifest.lstm_weight = previous.lstm_weight
        manifest.lstm_weight_scores = previous.lstm_weight_scores
    manifest.tasks = len(todo) * passes(job, manifest)
    return manifest


def _finished(
    manifest: Manifest,
    spec: JobSpec,
    counts: dict[str, int],
    cleaning: dict[str, int],
    failed: list[int],
    clock: _Clock,
    computed: int,
    out: Place,
    scored_run: str,
) -> None:
    if manifest.scored_run and (out / ACCURACY).exists():
        manifest.realised = night_scores(out, spec.input.id_col, spec.monitor.jump, scored_run)
    wall = clock.elapsed()
    failed_fraction = counts.get(Status.FAILED, 0) / manifest.series
    limit = spec.output.max_failed_fraction
    manifest.status, manifest.finished_at = RunStatus.FINISHED, now()
    manifest.counts, manifest.input_cleaning = counts, cleaning
    manifest.failed_fraction = round(failed_fraction, 6)
    manifest.failure_limit_exceeded = limit is not None and failed_fraction > limit
    manifest.shards_failed = sorted(failed)
    manifest.wall_seconds, manifest.timings = round(wall, 3), clock.laps
    manifest.series_computed = computed
    manifest.series_per_second = round(computed / wall, 3)
    manifest.outputs = [name for name in OUTPUTS if (out / name).exists()]


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
