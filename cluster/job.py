"""The job: the one place that knows the order YAML -> table -> shards -> Ray -> Parquet.

A problem of the job (spec, input, output) raises before any work. A problem of one
series is its row in the outputs: series skipped while reading never go to Ray, and
every series appears exactly once in metrics.parquet whatever happened to it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from cluster.dispatch import ShardOutcome, connect, dispatch
from cluster.errors import FailureLimitError, InputError
from cluster.output import (MANIFEST, METRICS_FILE, OUTPUTS, check_output_path, compact,
                            finished_shards, prepare_output_dir, write_json, write_shard)
from cluster.plan import Shard, plan_shards
from cluster.progress import JobProgress
from cluster.results import shard_tables
from cluster.search import SearchSpec, expand
from cluster.select import choose_shard, global_best
from cluster.spec import JobSpec
from cluster.table import SeriesTable, open_dataset, read_series, season_from_freq
from lstm_worker import SeriesResult

@dataclass(frozen=True)
class JobSummary:
    output: Path
    counts: dict[str, int]
    wall_seconds: float
    series_per_second: float


def input_fingerprint(spec: JobSpec) -> str:
    """Names, sizes and modification times of the input files: cheap and change-sensitive."""
    digest = hashlib.sha256()
    for name in sorted(open_dataset(spec.input).files):
        stat = Path(name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def validate_job(spec: JobSpec) -> tuple[SeriesTable, int]:
    """Read and check the input the way ``run_job`` will; return it and the season length."""
    table = read_series(spec.input)
    season_length = spec.forecast.season_length or season_from_freq(table.freq)
    cfg = spec.worker_config(season_length)
    usable = table.usable()
    if not usable:
        first = next(p for p, note in enumerate(table.notes) if note)
        raise InputError(
            f"{spec.input.path}: every one of the {len(table)} series is unusable, so the "
            f"job has nothing to do; the first, {table.ids[first]!r}: {table.notes[first]}"
        )
    needed = cfg.min_series_points()
    longest = max(len(table.values[p]) for p in usable)
    if longest < needed:
        raise InputError(
            f"{spec.input.path}: the longest series has {longest} points, fewer than the "
            f"{needed} that model.lookback ({spec.model.lookback}), train.val_size, "
            "forecast.holdout and forecast.n_windows need; no series could be trained"
        )
    return table, season_length


def run_job(spec: JobSpec, address: str | None = None, overwrite: bool = False) -> JobSummary:
    """Run a whole job, or the rest of it, and write its outputs; returns counts and timings.

    Each shard's outputs are written as it finishes; shards already written by an
    earlier run of the same job (same spec digest and input) are skipped. Raises
    ``FailureLimitError`` after writing everything when more series failed than
    ``output.max_failed_fraction`` allows.
    """
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    job_key = {"spec_digest": spec.digest(), "input_fingerprint": input_fingerprint(spec)}
    check_output_path(spec.output.path, spec.input.path)
    out = prepare_output_dir(spec.output.path, job_key, overwrite)
    table, season_length = validate_job(spec)
    cfg = spec.worker_config(season_length)
    search, settings = spec.search or SearchSpec(), expand(spec.search, spec.seed)
    configs = [spec.for_setting(s).worker_config(season_length) for s in settings]
    hold_all = search.select == "global" and len(settings) > 1  # choose once all are in
    shards = plan_shards(len(table), spec.resources.series_per_task)
    done = finished_shards(out)
    todo = [shard for shard in shards if shard.index not in done]
    manifest = {
        "name": spec.name,
        **job_key,
        "status": "running",
        "spec": spec.model_dump(mode="json"),
        "freq": str(table.freq),
        "season_length": season_length,
        "series": len(table),
        "shards": len(shards),
        "shards_resumed": len(shards) - len(todo),
        "settings": [s.label() for s in settings],
        "input_cleaning": table.cleaning,
        "started_at": started_at.isoformat(),
        "versions": _versions(),
    }
    write_json(manifest, out / MANIFEST)

    def payload(shard: Shard) -> tuple[list[object], list[np.ndarray]]:
        usable = [p for p in range(shard.start, shard.stop) if not table.notes[p]]
        return [table.ids[p] for p in usable], [table.values[p] for p in usable]

    def finish(shard: Shard, outcomes: dict[int, ShardOutcome], forced: int | None = None):
        outcomes = {i: _with_read_skips(table, shard, o) for i, o in outcomes.items()}
        choices = choose_shard(table, shard, outcomes, settings, search, cfg, forced)
        tables = shard_tables(spec, table, shard, choices, cfg)
        if any(outcome.task_error for outcome in outcomes.values()):
            unwritten[shard.index] = tables
        else:
            write_shard(out, shard.index, tables)
        progress.advance(len(shard), sum(c.result.status == "failed" for c in choices))

    unwritten: dict[int, dict[str, pa.Table]] = {}  # shards whose task failed: retried next run
    computed = sum(len(shard) for shard in todo)
    remote = [s for s in todo if not all(table.notes[s.start:s.stop])]  # others: nothing to run
    local = [s for s in todo if all(table.notes[s.start:s.stop])]
    progress = JobProgress(len(table), already=len(table) - computed)
    started_ray = connect(address) if remote else False
    units = [(shard, setting.index) for shard in remote for setting in settings]
    manifest["tasks"] = len(units)
    finished = dispatch(units, payload, configs, spec.resources)
    arrived: dict[int, dict[int, ShardOutcome]] = {}  # shard -> setting -> outcome
    try:
        for shard in local:
            finish(shard, {setting.index: ShardOutcome([]) for setting in settings})
        for shard, index, outcome in finished:
            arrived.setdefault(shard.index, {})[index] = outcome
            if len(arrived[shard.index]) == len(settings) and not hold_all:
                finish(shard, arrived.pop(shard.index))
        if hold_all:
            forced = global_best(arrived, search.metric)
            manifest["global_setting"] = None if forced is None else settings[forced].label()
            for index, outcomes in sorted(arrived.items()):
                finish(shards[index], outcomes, forced)
    except KeyboardInterrupt:  # finished shards are on disk; say so, then let the CLI exit
        manifest.update(status="interrupted",
                        interrupted_at=datetime.now(timezone.utc).isoformat())
        write_json(manifest, out / MANIFEST)
        raise
    finally:
        finished.close()  # cancels the tasks still running, before Ray goes away
        progress.close()
        if started_ray:
            ray.shutdown()

    compact(out, len(shards), unwritten)
    statuses = pq.read_table(out / METRICS_FILE, columns=["status"]).column("status")
    counts = dict(Counter(statuses.to_pylist()))
    wall = time.perf_counter() - started
    failed_fraction = counts.get("failed", 0) / len(table)
    limit = spec.output.max_failed_fraction
    manifest.update(
        status="finished",
        counts=counts,
        failed_fraction=round(failed_fraction, 6),
        failure_limit_exceeded=limit is not None and failed_fraction > limit,
        shards_failed=sorted(unwritten),
        finished_at=datetime.now(timezone.utc).isoformat(),
        wall_seconds=round(wall, 3),
        series_computed=computed,
        series_per_second=round(computed / wall, 3),
        outputs=list(OUTPUTS),
    )
    write_json(manifest, out / MANIFEST)
    summary = JobSummary(out, counts, wall, computed / wall)
    if manifest["failure_limit_exceeded"]:
        raise FailureLimitError(
            f"{counts['failed']} of {len(table)} series failed ({failed_fraction:.1%}), more "
            f"than output.max_failed_fraction ({limit:g}) allows; every output is written "
            f"in {out}", summary)
    return summary


def _with_read_skips(table: SeriesTable, shard: Shard, outcome: ShardOutcome) -> ShardOutcome:
    """The shard's results in table order, with the series skipped while reading put back."""
    computed = iter(outcome.results)
    results = [
        SeriesResult(table.ids[p], "skipped", table.notes[p]) if table.notes[p] else next(computed)
        for p in range(shard.start, shard.stop)
    ]
    return replace(outcome, results=results)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("runner", "torch", "ray", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
