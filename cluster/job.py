"""The job: the one place that knows the order YAML -> table -> shards -> Ray -> Parquet."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray

from cluster.dispatch import ShardOutcome, connect, dispatch
from cluster.errors import InputError
from cluster.output import MANIFEST, prepare_output_dir, write_json, write_parquet
from cluster.plan import Shard, plan_shards
from cluster.progress import JobProgress
from cluster.spec import JobSpec
from cluster.table import SeriesTable, future_times, open_dataset, read_series, season_from_freq
from lstm_worker.metrics import METRICS

FORECASTS, BACKTEST, METRICS_FILE = "forecasts.parquet", "backtest.parquet", "metrics.parquet"
_METRIC_COLUMNS = [f"{prefix}{m}" for prefix in ("", "naive_", "snaive_") for m in METRICS]
_METRICS_SCHEMA = {  # metrics.parquet after the id column
    "status": pa.string(), "reason": pa.string(), "model": pa.string(), "n_points": pa.int64(),
    **{name: pa.float64() for name in _METRIC_COLUMNS},
    "epochs": pa.int64(), "train_seconds": pa.float64(), "device": pa.string(),
    "gpu_id": pa.string(), "node_id": pa.string(), "shard": pa.int64(),
}


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
    needed = cfg.forecast.holdout_steps + cfg.min_fit_points()
    longest = max(len(v) for v in table.values)
    if longest < needed:
        raise InputError(
            f"{spec.input.path}: the longest series has {longest} points, fewer than the "
            f"{needed} that forecast.holdout, train.val_size and model.lookback need; "
            "no series could be trained"
        )
    return table, season_length


def run_job(spec: JobSpec, address: str | None = None, overwrite: bool = False) -> JobSummary:
    """Run a whole job and write its outputs; returns counts and timings."""
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    job_key = {"spec_digest": spec.digest(), "input_fingerprint": input_fingerprint(spec)}
    out = prepare_output_dir(spec.output.path, job_key, overwrite)
    table, season_length = validate_job(spec)
    cfg = spec.worker_config(season_length)
    shards = plan_shards(len(table), spec.resources.series_per_task)

    def payload(shard: Shard) -> tuple[list[object], list[np.ndarray]]:
        return table.ids[shard.start:shard.stop], table.values[shard.start:shard.stop]

    started_ray = connect(address)
    progress = JobProgress(len(table))
    outcomes: dict[int, ShardOutcome] = {}
    try:
        for shard, outcome in dispatch(shards, payload, cfg, spec.resources):
            outcomes[shard.index] = outcome
            failed = sum(r.status == "failed" for r in outcome.results)
            progress.advance(len(shard), failed)
    finally:
        progress.close()
        if started_ray:
            ray.shutdown()

    ordered = [(shards[i], outcomes[i]) for i in sorted(outcomes)]
    write_parquet(_forecasts_table(spec, table, ordered), out / FORECASTS)
    write_parquet(_backtest_table(spec, table, ordered), out / BACKTEST)
    metrics = _metrics_table(spec, table, ordered)
    write_parquet(metrics, out / METRICS_FILE)
    counts = dict(Counter(metrics.column("status").to_pylist()))
    wall = time.perf_counter() - started
    write_json(
        {
            "name": spec.name,
            **job_key,
            "spec": spec.model_dump(mode="json"),
            "freq": str(table.freq),
            "season_length": season_length,
            "series": len(table),
            "shards": len(shards),
            "counts": counts,
            "started_at": started_at.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "wall_seconds": round(wall, 3),
            "series_per_second": round(len(table) / wall, 3),
            "versions": _versions(),
            "outputs": [FORECASTS, METRICS_FILE, BACKTEST],
        },
        out / MANIFEST,
    )
    return JobSummary(out, counts, wall, len(table) / wall)


def _time_array(times: list[np.ndarray], table: SeriesTable) -> pa.Array:
    merged = np.concatenate(times) if times else np.empty(0, "datetime64[ns]")
    array = pa.array(merged)
    return array if pa.types.is_date(table.time_type) else array.cast(table.time_type)


def _forecasts_table(spec: JobSpec, table: SeriesTable, ordered) -> pa.Table:
    ids, times, y_hat, cutoffs = [], [], [], []
    for shard, outcome in ordered:
        for position, result in zip(range(shard.start, shard.stop), outcome.results):
            if result.status != "ok":
                continue
            last = table.times[position][-1]
            ids.extend([table.ids[position]] * len(result.forecast))
            times.append(future_times(last, len(result.forecast), table.freq))
            cutoffs.append(np.full(len(result.forecast), last))
            y_hat.append(result.forecast)
    return pa.table({
        spec.input.id_col: pa.array(ids, type=table.id_type),
        spec.input.time_col: _time_array(times, table),
        "y_hat": pa.array(np.concatenate(y_hat) if y_hat else [], pa.float64()),
        "cutoff": _time_array(cutoffs, table),
    })


def _backtest_table(spec: JobSpec, table: SeriesTable, ordered) -> pa.Table:
    ids, times, actual, y_hat, cutoffs = [], [], [], [], []
    for shard, outcome in ordered:
        for position, result in zip(range(shard.start, shard.stop), outcome.results):
            steps = len(result.backtest)
            if result.status != "ok" or steps == 0:
                continue
            series_times = table.times[position]
            ids.extend([table.ids[position]] * steps)
            times.append(series_times[-steps:])
            cutoffs.append(np.full(steps, series_times[-steps - 1]))
            actual.append(table.values[position][-steps:])
            y_hat.append(result.backtest)
    return pa.table({
        spec.input.id_col: pa.array(ids, type=table.id_type),
        spec.input.time_col: _time_array(times, table),
        spec.input.target_col: pa.array(np.concatenate(actual) if actual else [], pa.float64()),
        "y_hat": pa.array(np.concatenate(y_hat) if y_hat else [], pa.float64()),
        "cutoff": _time_array(cutoffs, table),
    })


def _metrics_table(spec: JobSpec, table: SeriesTable, ordered) -> pa.Table:
    rows: dict[str, list] = {name: [] for name in _METRICS_SCHEMA}
    ids = []
    for shard, outcome in ordered:
        gpu = ",".join(outcome.gpu_ids)
        for position, result in zip(range(shard.start, shard.stop), outcome.results):
            ids.append(table.ids[position])
            rows["status"].append(result.status)
            rows["reason"].append(result.reason)
            rows["model"].append("lstm" if result.status == "ok" else None)
            rows["n_points"].append(len(table.values[position]))
            for name in _METRIC_COLUMNS:
                value = result.metrics.get(name, np.nan)
                rows[name].append(value if np.isfinite(value) else None)
            rows["epochs"].append(result.epochs)
            rows["train_seconds"].append(result.train_seconds)
            rows["device"].append(f"{result.device} (ray gpu {gpu})" if gpu else result.device)
            rows["gpu_id"].append(gpu or None)
            rows["node_id"].append(outcome.node_id)
            rows["shard"].append(shard.index)
    columns = {spec.input.id_col: pa.array(ids, type=table.id_type)}
    columns.update({name: pa.array(rows[name], kind) for name, kind in _METRICS_SCHEMA.items()})
    return pa.table(columns)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("runner", "torch", "ray", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
