"""The job: the one place that knows the order YAML -> index -> shards -> Ray -> Parquet.

A problem of the job (spec, input, output) raises before any work. A problem of one
series is its row in the outputs: every series appears exactly once in metrics.parquet
whatever happened to it. The driver holds an index of the input (ids and row ranges),
never its values, and counts, never results: tasks read their own rows and write their
own parts, which the driver finally streams into one file per output.
"""

from __future__ import annotations

import importlib.metadata
import platform
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import ray

from cluster.dispatch import TaskFailure, connect, dispatch
from cluster.errors import FailureLimitError, InputError
from cluster.output import (MANIFEST, METRICS_FILE, OUTPUTS, PREPARED, check_output_path,
                            compact, finished_shards, pending_shards, prepare_output_dir,
                            read_manifest, write_json, write_shard)
from cluster.plan import JobContext, Shard, plan_shards
from cluster.prepare import prepare_input, prepared_from
from cluster.progress import JobProgress
from cluster.results import failed_shard_tables
from cluster.search import SearchSpec, expand, global_best
from cluster.source import SeriesIndex, input_fingerprint, read_rows, scan_index
from cluster.spec import JobSpec
from lstm_worker.config import MIN_FIT_POINTS
from cluster.table import SeriesTable, seasons_from_freq, series_table

_SAMPLE = 1000  # series the driver reads itself, to infer the frequency and check the input


@dataclass(frozen=True)
class JobSummary:
    output: Path
    counts: dict[str, int]
    wall_seconds: float
    series_per_second: float


@dataclass(frozen=True)
class InputPlan:
    """What the driver knows of the input before any task runs."""

    spec: JobSpec  # its input.path is the table the tasks read: a prepared copy if needed
    index: SeriesIndex
    freq: object  # a pandas offset, or the step of an integer clock
    calendar: tuple[int, ...]  # the frequency's seasons, shortest first
    sample: SeriesTable  # the first series, read and cleaned on the driver
    prepared: dict | None  # the re-partition's report, when this call made one


def plan_input(spec: JobSpec, prepare_dir: Path, fingerprint: str) -> InputPlan:
    """Index the input, infer its frequency from the first series, check that a series
    could be trained. Input whose series are not runs of rows is re-partitioned into
    ``prepare_dir`` first (reused while the input, whose ``fingerprint`` this is, is
    unchanged)."""
    index, prepared, named = scan_index(spec.input), None, spec.input.path
    if not index.grouped:
        if prepared_from(prepare_dir) != fingerprint:
            prepared = prepare_input(spec.input, prepare_dir, fingerprint)
        spec = spec.model_copy(update={"input": spec.input.model_copy(
            update={"path": str(prepare_dir)})})
        index = scan_index(spec.input)
    first = plan_shards(index, _SAMPLE)[0]
    rows = read_rows(spec.input, index.files, list(first.segments), index.schema)
    sample = series_table(rows, spec.input, None, index.id_type)  # infers the frequency
    _check_trainable(spec, named, index, sample)
    return InputPlan(spec, index, sample.freq, seasons_from_freq(sample.freq), sample, prepared)


def _check_trainable(spec: JobSpec, named: str, index: SeriesIndex, sample: SeriesTable
                     ) -> None:
    """Refuse a job no series of which could be trained; ``named`` is the user's input."""
    usable = sample.usable()
    if len(sample) == len(index) and not usable:  # the sample is the whole table
        first = next(p for p, note in enumerate(sample.notes) if note)
        raise InputError(
            f"{named}: every one of the {len(index)} series is unusable, so the "
            f"job has nothing to do; the first, {sample.ids[first]!r}: {sample.notes[first]}"
        )
    needed = spec.forecast.min_series_points()
    longest = max([int(index.rows.max()), *(len(sample.values[p]) for p in usable)])
    if longest < needed:
        raise InputError(
            f"{named}: the longest series has {longest} points, fewer than the "
            f"{needed} that one backtest window (forecast.holdout, "
            f"{spec.forecast.holdout_steps}) and the shortest fit ({MIN_FIT_POINTS}) need; "
            "no series could be trained"
        )


def validate_job(spec: JobSpec) -> tuple[InputPlan, dict]:
    """Check the input the way ``run_job`` will, then read and clean every series once,
    shard by shard (never the whole table at once); return the plan and a report."""
    with tempfile.TemporaryDirectory(prefix="runner-validate-") as temp:
        plan = plan_input(spec, Path(temp) / PREPARED, input_fingerprint(spec.input))
        lengths, skipped, cleaning = [], [], Counter()
        for shard in plan_shards(plan.index, plan.spec.resources.series_per_task):
            rows = read_rows(plan.spec.input, plan.index.files, list(shard.segments),
                             plan.index.schema)
            table = series_table(rows, plan.spec.input, plan.freq, plan.index.id_type)
            lengths.extend(len(v) for v in table.values)
            skipped.extend((i, note) for i, note in zip(table.ids, table.notes) if note)
            cleaning.update(table.cleaning)
    report = {"series": len(plan.index), "rows": plan.index.total_rows,
              "min_points": min(lengths), "max_points": max(lengths),
              "skipped": len(skipped), "first_skipped": skipped[0] if skipped else None,
              "too_short": sum(n < spec.forecast.min_series_points() for n in lengths),
              "cleaning": dict(cleaning)}
    return plan, report


def run_job(spec: JobSpec, address: str | None = None, overwrite: bool = False) -> JobSummary:
    """Run a whole job, or the rest of it, and write its outputs; returns counts and timings.

    Each shard's task writes its own parts; shards already written by an earlier run of
    the same job (same spec digest and input) are skipped. Raises ``FailureLimitError``
    after writing everything when more series failed than
    ``output.max_failed_fraction`` allows.
    """
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    job_key = {"spec_digest": spec.digest(), "input_fingerprint": input_fingerprint(spec.input)}
    check_output_path(spec.output.path, spec.input.path)
    previous = {} if overwrite else read_manifest(Path(spec.output.path))
    out = prepare_output_dir(spec.output.path, job_key, overwrite)
    plan = plan_input(spec, out / PREPARED, job_key["input_fingerprint"])
    index = plan.index
    timings: dict[str, float] = {}
    _lap(timings, "plan_seconds", started)
    cfg = spec.worker_config(plan.calendar)
    search, settings = spec.search or SearchSpec(), expand(spec.search, spec.seed)
    configs = [spec.for_setting(s).worker_config(plan.calendar) for s in settings]
    hold_all = search.select == "global" and len(settings) > 1  # choose once all are in
    shards = plan_shards(index, spec.resources.series_per_task)
    done = finished_shards(out)
    todo = [shard for shard in shards if shard.index not in done]
    computed = sum(len(shard) for shard in todo)
    manifest = {
        "name": spec.name,
        **job_key,
        "status": "running",
        "spec": spec.model_dump(mode="json"),
        "input_read": plan.spec.input.path,
        "input_prepared": plan.prepared,
        "freq": str(plan.freq),
        "season_length": cfg.season_length,
        "resolved": _resolved(spec, plan.calendar),
        "series": len(index),
        "rows": index.total_rows,
        "shards": len(shards),
        "shards_resumed": len(shards) - len(todo),
        "settings": [s.label() for s in settings],
        "started_at": started_at.isoformat(),
        "versions": _versions(),
    }
    if hold_all and "global_setting_index" in previous:
        manifest.update({k: previous[k] for k in ("global_setting", "global_setting_index")})
    passes = 2 if hold_all and "global_setting_index" not in manifest else 1
    manifest["tasks"] = len(todo) * passes
    write_json(manifest, out / MANIFEST)
    context = JobContext(plan.spec, index.files, index.schema, plan.freq, cfg, settings,
                         configs, search, out)
    empty = SeriesTable([], [], [], plan.freq, index.time_type, index.id_type, [], [], {})
    progress = JobProgress(len(index) * passes, already=(len(index) - computed) * passes)
    failed: list[int] = []

    def run_pass(shards: list[Shard], phase: str, forced: int | None = None) -> dict:
        """Dispatch ``shards``; write a failed shard's rows; sum the settings' scores."""
        scores: dict[int, tuple[float, int]] = {}  # setting -> (sum of the metric, series)
        for shard, outcome in dispatch(shards, context, spec.resources, phase, forced):
            if isinstance(outcome, TaskFailure):
                ids = index.ids.slice(shard.start, len(shard))
                write_shard(out, shard.index, failed_shard_tables(
                    spec, ids, empty, outcome.reason, outcome.attempts, shard.index, cfg),
                    failed=True)
                failed.append(shard.index)
                progress.advance(len(shard) * (passes if phase == "search" else 1), len(shard))
                continue
            for setting, (total, n) in outcome.scores.items():
                so_far = scores.get(setting, (0.0, 0))
                scores[setting] = (so_far[0] + total, so_far[1] + n)
            progress.advance(len(shard), outcome.counts.get("failed", 0))
        return scores

    started_ray = connect(address) if todo else False
    _lap(timings, "ray_start_seconds", started)
    try:
        if not hold_all:
            run_pass(todo, "final")
        else:
            if "global_setting_index" not in manifest:
                forced = global_best(run_pass(todo, "search"))
                manifest.update(global_setting=None if forced is None else settings[forced].label(),
                                global_setting_index=forced)
                write_json(manifest, out / MANIFEST)
            forced, kept = manifest["global_setting_index"], pending_shards(out)
            run_pass([s for s in todo if s.index in kept], "choose", forced)
            run_pass([s for s in todo if s.index not in kept and s.index not in failed],
                     "final", forced)
    except KeyboardInterrupt:  # finished shards are on disk; say so, then let the CLI exit
        manifest.update(status="interrupted",
                        interrupted_at=datetime.now(timezone.utc).isoformat())
        write_json(manifest, out / MANIFEST)
        raise
    finally:
        progress.close()
        if started_ray:
            ray.shutdown()

    _lap(timings, "compute_seconds", started)
    counts, cleaning = compact(out, len(shards))
    _lap(timings, "compact_seconds", started)
    wall = time.perf_counter() - started
    failed_fraction = counts.get("failed", 0) / len(index)
    limit = spec.output.max_failed_fraction
    manifest.update(
        status="finished",
        counts=counts,
        input_cleaning=cleaning,
        failed_fraction=round(failed_fraction, 6),
        failure_limit_exceeded=limit is not None and failed_fraction > limit,
        shards_failed=sorted(failed),
        finished_at=datetime.now(timezone.utc).isoformat(),
        wall_seconds=round(wall, 3),
        timings=timings,
        series_computed=computed,
        series_per_second=round(computed / wall, 3),
        outputs=list(OUTPUTS),
    )
    write_json(manifest, out / MANIFEST)
    summary = JobSummary(out, counts, wall, computed / wall)
    if set(counts) == {"skipped"}:
        raise InputError(f"{spec.input.path}: every one of the {len(index)} series is "
                         f"unusable; {out / METRICS_FILE} gives each one's reason")
    if manifest["failure_limit_exceeded"]:
        raise FailureLimitError(
            f"{counts['failed']} of {len(index)} series failed ({failed_fraction:.1%}), more "
            f"than output.max_failed_fraction ({limit:g}) allows; every output is written "
            f"in {out}", summary)
    return summary


def _resolved(spec: JobSpec, calendar: tuple[int, ...]) -> dict:
    """What the job resolved from the data, and why (the manifest's ``resolved``)."""
    resolved = spec.resolved(calendar)
    return {"season_length": resolved["season_length"], "seasons": list(resolved["seasons"]),
            "model.lookback": resolved["lookback"], "why": resolved["why"]}


def _lap(timings: dict[str, float], name: str, started: float) -> None:
    """Record as ``name`` the seconds since ``started`` that no earlier lap accounts for."""
    timings[name] = round(time.perf_counter() - started - sum(timings.values()), 3)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("runner", "torch", "ray", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
