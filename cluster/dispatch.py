"""Ray dispatch: one task per shard, resources from the spec, results as they finish."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import ray

from cluster.errors import ResourceError
from cluster.plan import Shard
from cluster.spec import ResourcesSpec
from lstm_worker import SeriesResult, WorkerConfig, run_shard


@dataclass
class ShardOutcome:
    """A shard's results plus where they were computed."""

    results: list[SeriesResult]
    node_id: str = ""
    gpu_ids: list[str] = field(default_factory=list)
    task_error: str = ""  # set when the task itself failed: the shard is not written as done


def _run_shard_task(
    series_ids: list[object], values: list[np.ndarray], cfg: WorkerConfig, num_cpus: float
) -> ShardOutcome:
    """Runs inside a Ray worker: the worker entry plus the placement Ray chose."""
    results = run_shard(series_ids, values, cfg, num_threads=max(1, math.floor(num_cpus)))
    gpu_ids = [str(gpu) for gpu in ray.get_gpu_ids()]
    return ShardOutcome(results, ray.get_runtime_context().get_node_id(), gpu_ids)


def connect(address: str | None) -> bool:
    """Join ``address`` (or ``RAY_ADDRESS``), else start an embedded local Ray.

    Returns whether this call started Ray (and so should shut it down).
    """
    if ray.is_initialized():
        return False
    ray.init(address=address, include_dashboard=False, logging_level="WARNING",
             log_to_driver=True)
    return True


def check_resources(resources: ResourcesSpec) -> int:
    """Fail fast when no node could ever run one task; return how many fit at once."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    fits = [
        node for node in nodes
        if node.get("CPU", 0) >= resources.num_cpus and node.get("GPU", 0) >= resources.num_gpus
    ]
    if not fits:
        best_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
        best_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
        raise ResourceError(
            f"resources: each task asks for num_cpus={resources.num_cpus}, "
            f"num_gpus={resources.num_gpus}, but the largest node of this cluster has "
            f"{best_cpu:g} CPUs and {best_gpu:g} GPUs; the job would wait forever"
        )
    per_node = []
    for node in fits:
        by_cpu = node.get("CPU", 0) // resources.num_cpus
        by_gpu = node.get("GPU", 0) // resources.num_gpus if resources.num_gpus else by_cpu
        per_node.append(int(min(by_cpu, by_gpu)))
    return max(1, sum(per_node))


def dispatch(
    shards: Sequence[Shard],
    payload: Callable[[Shard], tuple[list[object], list[np.ndarray]]],
    cfg: WorkerConfig,
    resources: ResourcesSpec,
) -> Iterator[tuple[Shard, ShardOutcome]]:
    """Launch shards with at most ``max_in_flight`` pending; yield each as it finishes.

    A task that raised, or whose worker died more than ``max_retries`` times, yields
    every series of its shard as ``failed`` with the error; the other shards go on.
    """
    concurrent = check_resources(resources)
    limit = resources.max_in_flight or 2 * concurrent
    task = ray.remote(_run_shard_task).options(
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
        max_retries=resources.max_retries,
        retry_exceptions=False,  # our own errors are per-series rows, not worth a blind retry
    )
    queue = iter(shards)
    pending: dict[ray.ObjectRef, tuple[Shard, list[object]]] = {}
    try:
        while True:
            while len(pending) < limit and (shard := next(queue, None)) is not None:
                series_ids, values = payload(shard)
                ref = task.remote(series_ids, values, cfg, resources.num_cpus)
                pending[ref] = (shard, series_ids)
            if not pending:
                return
            done, _ = ray.wait(list(pending), num_returns=1)
            shard, series_ids = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayError as error:
                reason = f"task failed: {type(error).__name__}: {str(error).splitlines()[0]}"
                outcome = ShardOutcome([SeriesResult(i, "failed", reason) for i in series_ids],
                                       task_error=reason)
            yield shard, outcome
    finally:
        for ref in pending:  # interrupted: do not leave work running for nobody
            ray.cancel(ref, force=True)
