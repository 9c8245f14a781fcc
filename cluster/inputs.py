"""What the driver knows of the input before any task runs, and ``runner validate``.

The driver indexes the input (ids and row ranges), reads and cleans its first series
itself to infer the frequency and check that a series could be trained, and never
reads the rest: tasks do. ``validate_job`` reads every series once, shard by shard.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass

from cluster.data.index import SeriesIndex, input_fingerprint, scan_index
from cluster.data.prepare import prepare_input, prepared_from
from cluster.plan import plan_shards
from cluster.resolve import Resolved, resolve, worker_config
from cluster.sections import JobSpec
from lstm_worker.data.future import check_future, with_future
from lstm_worker.data.layout import PREPARED
from lstm_worker.data.place import Place
from lstm_worker.data.source import read_rows
from lstm_worker.data.table import SAMPLE_SERIES, SeriesTable, seasons_from_freq, series_table
from lstm_worker.errors import InputError


@dataclass(frozen=True)
class InputPlan:
    """What the driver knows of the input before any task runs."""

    spec: JobSpec  # its input.path is the table the tasks read: a prepared copy if needed
    index: SeriesIndex
    freq_seasons: tuple[int, ...]  # the frequency's seasons, shortest first
    resolved: Resolved  # what the spec leaves to the data, resolved from them
    sample: SeriesTable  # the first series, read and cleaned on the driver
    prepared: dict | None  # the re-partition's report, when this call made one


def plan_input(spec: JobSpec, prepare_dir: Place, fingerprint: str) -> InputPlan:
    """Index the input, infer its frequency from the first series, check that a series
    could be trained. Input whose series are not runs of rows is re-partitioned into
    ``prepare_dir`` first (reused while the input, whose ``fingerprint`` this is, is
    unchanged)."""
    index, prepared, named = scan_index(spec.input), None, spec.input.path
    if not index.grouped:
        if prepared_from(prepare_dir) != fingerprint:
            prepared = prepare_input(spec.input, prepare_dir, fingerprint)
        spec = spec.model_copy(
            update={"input": spec.input.model_copy(update={"path": str(prepare_dir)})}
        )
        index = scan_index(spec.input)
    first = plan_shards(index, SAMPLE_SERIES)[0]
    rows = read_rows(spec.input, index.files, list(first.segments), index.schema)
    sample = series_table(rows, spec.input, None, index.schema)  # infers the frequency
    freq_seasons = seasons_from_freq(sample.freq)
    _check_trainable(spec, named, index, sample, freq_seasons)
    check_future(spec.input, index.schema)
    resolved = resolve(spec, freq_seasons, sample.freq)
    return InputPlan(spec, index, freq_seasons, resolved, sample, prepared)


def _check_trainable(
    spec: JobSpec,
    named: str,
    index: SeriesIndex,
    sample: SeriesTable,
    freq_seasons: tuple[int, ...],
) -> None:
    """Refuse a job that would forecast nothing; ``named`` is the user's input. A series
    too short to train is still forecast, by a baseline, unless the spec skips it."""
    usable = sample.usable()
    if len(sample) == len(index) and not usable:  # the sample is the whole table
        first = next(p for p, note in enumerate(sample.notes) if note)
        raise InputError(
            f"{named}: every one of the {len(index)} series is unusable, so the "
            f"job has nothing to do; the first, {sample.ids[first]!r}: {sample.notes[first]}"
        )
    if spec.forecast.short_series != "skip":
        return
    cfg = worker_config(spec, freq_seasons, sample.freq)
    needed = cfg.min_series_points()
    longest = max([int(index.rows.max()), *(len(sample.values[p]) for p in usable)])
    if longest < needed:
        raise InputError(
            f"{named}: the longest series has {longest} points, fewer than the "
            f"{needed} that one backtest window (forecast.holdout, "
            f"{spec.forecast.holdout_steps}) and the shortest fit ({cfg.min_fit}) need, "
            "and forecast.short_series is skip: no series would be forecast"
        )


def validate_job(spec: JobSpec) -> tuple[InputPlan, dict]:
    """Check the input the way ``run_job`` will, then read and clean every series once,
    shard by shard (never the whole table at once); return the plan and a report."""
    with tempfile.TemporaryDirectory(prefix="runner-validate-") as temp:
        plan = plan_input(spec, Place(temp) / PREPARED, input_fingerprint(spec.input))
        lengths: list[int] = []
        skipped: list[tuple[object, str]] = []
        cleaning: Counter[str] = Counter()
        for shard in plan_shards(plan.index, plan.spec.resources.series_per_task):
            rows = read_rows(
                plan.spec.input, plan.index.files, list(shard.segments), plan.index.schema
            )
            table = series_table(rows, plan.spec.input, plan.sample.freq, plan.index.schema)
            table = with_future(table, plan.spec.input, spec.forecast.horizon)
            lengths.extend(len(v) for v in table.values)
            skipped.extend(
                (i, note) for i, note in zip(table.ids, table.notes, strict=True) if note
            )
            cleaning.update(table.cleaning)
    needed = worker_config(spec, plan.freq_seasons, plan.sample.freq).min_series_points()
    report = {
        "series": len(plan.index),
        "rows": plan.index.total_rows,
        "min_points": min(lengths),
        "max_points": max(lengths),
        "skipped": len(skipped),
        "first_skipped": skipped[0] if skipped else None,
        "trained_from": needed,
        "too_short": sum(n < needed for n in lengths),
        "cleaning": dict(cleaning),
    }
    return plan, report
