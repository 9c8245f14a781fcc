"""The table model's place in a run: the sample it learns from and its task.

The sample is drawn from the index, never from the values: blocks of consecutive series
(so a task reads runs of rows, not scattered ones) in an order shuffled with the job's
seed, until the windows they hold reach the bound (``table.windows``) with a margin. It depends on
the table and the spec alone, so it is the same for any shard count, and it bounds what
the table task reads however large the table. The task runs before the shards' first
pass, on one node (all its CPUs, and a GPU where the spec pins tasks to one), and writes
``models/table.safetensors``; every shard's task then reads that file.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import numpy as np
import ray

from cluster.data.index import SeriesIndex
from cluster.dispatch import failure_reason, largest_fit
from cluster.sections import ResourcesSpec
from lstm_worker.config import WorkerConfig
from lstm_worker.shard.messages import JobContext
from lstm_worker.table.examples import ORIGINS_PER_SERIES, first_origin

logger = logging.getLogger(__name__)

_BLOCK = 16  # series a sampled block holds: consecutive, so read as one run of rows
_MARGIN = 1.25  # blocks drawn past the bound: cleaning may shorten or drop a series


def estimated_windows(rows: np.ndarray, cfg: WorkerConfig) -> np.ndarray:
    """Training windows of the refit's table model a series of ``rows`` points gives
    (``lstm_worker.table.examples.train_origins`` of its history less the validation)."""
    steps = cfg.table_steps
    stride = max(1, -(-steps // 2))
    first, least = rows - 2 * steps, first_origin(cfg)  # the latest and earliest origins
    found = np.where(first >= least, (first - least) // stride + 1, 0)
    return np.minimum(found, ORIGINS_PER_SERIES)


def plan_sample(index: SeriesIndex, cfg: WorkerConfig, seed: int) -> tuple[np.ndarray, int]:
    """The sampled series, as index positions in index order, and the windows they are
    estimated to hold."""
    estimate = estimated_windows(index.rows, cfg)
    blocks = np.arange(0, len(index), _BLOCK)
    order = np.random.default_rng(seed).permutation(len(blocks))
    per_block = np.add.reduceat(estimate, blocks) if len(blocks) else np.zeros(0, np.int64)
    taken = np.cumsum(per_block[order])
    enough = int(np.searchsorted(taken, _MARGIN * cfg.table_windows)) + 1
    chosen = np.sort(blocks[order[:enough]])
    positions = np.concatenate([np.arange(b, min(b + _BLOCK, len(index))) for b in chosen])
    return positions.astype(np.int64), int(estimate[positions].sum())


def sample_segments(index: SeriesIndex, positions: np.ndarray) -> tuple[tuple[int, int, int], ...]:
    """The rows of the series at ``positions``: one (file, first row, stop row) per run of
    consecutive series in one file."""
    if not len(positions):
        return ()
    files = index.file[positions]
    breaks = np.flatnonzero(
        np.r_[True, (np.diff(positions) != 1) | (files[1:] != files[:-1]), True]
    )
    return tuple(
        (
            int(files[a]),
            int(index.first_row[positions[a]]),
            int(index.first_row[positions[b - 1]] + index.rows[positions[b - 1]]),
        )
        for a, b in itertools.pairwise(breaks)
    )


def _table_task(job: JobContext, segments: tuple[tuple[int, int, int], ...], threads: int) -> Any:
    """The Ray task: the table model's training, inside a worker (torch loads there)."""
    from lstm_worker.table.task import run_table

    return run_table(job, segments, threads)


def train_table_model(
    job: JobContext, index: SeriesIndex, resources: ResourcesSpec, seed: int
) -> dict[str, Any]:
    """Train the table model in its own task and say how (the manifest's
    ``table_model``). A failed task fails nothing: every series' LSTM forecast is then
    its own LSTM's, and the manifest says why."""
    started = time.perf_counter()
    positions, estimate = plan_sample(index, job.cfg, seed)
    segments = sample_segments(index, positions)
    cpus = max(largest_fit(resources), resources.num_cpus)
    task = ray.remote(_table_task).options(
        num_cpus=cpus,
        num_gpus=resources.num_gpus,
        memory=resources.memory,
        resources=resources.resources or None,
        label_selector=resources.label_selector or None,
        max_retries=resources.max_retries,
        retry_exceptions=False,
    )
    report: dict[str, Any] = {"sampled_series": len(positions), "estimated_windows": estimate}
    try:
        summary = ray.get(task.remote(job, segments, max(1, int(cpus))))
    except ray.exceptions.RayError as error:
        reason = failure_reason(error)
        logger.warning("the table model was not trained: %s", reason)
        return {**report, "trained": False, "reason": reason}
    windows = {str(w): vars(fit) for w, fit in summary.windows.items()}
    return {
        **report,
        "trained": True,
        "series": summary.series,
        "warm_from": summary.warm or None,
        "windows": windows,
        "task_seconds": round(summary.seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }
