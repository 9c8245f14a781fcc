"""Ray dispatch: one task per shard, resources from the spec, summaries as they finish.

The tasks share one ``JobContext`` put in the object store once; each task's argument
is its shard's row ranges, and what comes back is counts. At most ``max_in_flight``
tasks are pending, so a million series never means a million pending tasks or objects.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import ray

from cluster.sections import ResourcesSpec
from lstm_worker.data.layout import PARTS
from lstm_worker.data.place import Place
from lstm_worker.errors import ResourceError
from lstm_worker.shard.messages import LSTM_ALONE, Phase, Placement

if TYPE_CHECKING:  # in annotations only
    from lstm_worker.shard.messages import JobChoice, JobContext, Shard, ShardSummary

# Failures Ray retries up to max_retries times: the worker or its node died.
_RETRIED = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.OutOfMemoryError,
)


class TaskFailure(NamedTuple):
    """Why a shard's task failed; every series of the shard is failed with it."""

    reason: str
    attempts: int


def shard_task(
    job: JobContext,
    shard: Shard,
    num_cpus: float,
    phase: Phase,
    chosen: JobChoice,
    timeout: float | None,
) -> ShardSummary:
    """The Ray task, inside a Ray worker: the shard's work (``lstm_worker.shard``) plus
    the placement Ray chose, and the seconds it ran (the manifest's ``task_seconds`` sums
    them); past ``timeout`` seconds (``resources.task_timeout``) it is stopped."""
    started = time.perf_counter()
    from lstm_worker.shard.run import run_shard  # torch loads in workers only

    placement = Placement(
        ray.get_runtime_context().get_node_id(), [str(gpu) for gpu in ray.get_gpu_ids()]
    )
    with _deadline(timeout, _timeout_marker(job.out, shard.index)):
        summary = run_shard(job, shard, placement, max(1, math.floor(num_cpus)), phase, chosen)
    return replace(summary, seconds=time.perf_counter() - started)


def _timeout_marker(out: Place, index: int) -> Place:
    return out / PARTS / "timeouts" / f"shard-{index:06d}"


@contextmanager
def _deadline(seconds: float | None, marker: Place) -> Iterator[None]:
    """End this worker when the task runs past ``seconds`` (``resources.task_timeout``),
    leaving ``marker`` so the driver can say why. Ray retries a task whose worker died,
    as after a crash. The worker ends itself: a cancel from the driver can crash Ray
    2.60's driver when it meets the task's reply, and a hung task cannot be trusted to
    notice a flag; a watchdog thread runs whatever the task's thread is stuck in (a
    sleep, a lock, a C call that releases the GIL)."""
    if seconds is None:
        yield
        return
    marker.unlink(missing_ok=True)  # a retry starts with a clean slate

    def expire() -> None:
        marker.write_text(f"{seconds:g}")
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def connect(address: str | None) -> bool:
    """Join ``address`` (or ``RAY_ADDRESS``), else start an embedded local Ray.

    Returns whether this call started Ray (and so should shut it down).
    """
    if ray.is_initialized():
        return False
    ray.init(
        address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True
    )
    return True


def check_resources(resources: ResourcesSpec) -> int:
    """Fail fast when no node could ever run one task; return how many fit at once.

    Ray leaves such a task pending forever, so the job would hang instead of failing.
    """
    fits, demand = _fitting_nodes(resources), _demand(resources)
    per_node = [
        int(min(node.get(name, 0) // amount for name, amount in demand.items())) for node in fits
    ]
    return max(1, sum(per_node))


def largest_fit(resources: ResourcesSpec) -> float:
    """The most CPUs a node that can run one task has: what a task that runs alone (the
    table model's) may take."""
    return max(node.get("CPU", 0.0) for node in _fitting_nodes(resources))


def _fitting_nodes(resources: ResourcesSpec) -> list[dict[str, float]]:
    """The alive nodes' resources that one task fits in; ``ResourceError`` if none."""
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    demand = _demand(resources)
    fits = [
        node["Resources"]
        for node in nodes
        if _selects(node.get("Labels") or {}, resources.label_selector)
        and all(node["Resources"].get(name, 0) >= amount for name, amount in demand.items())
    ]
    if not fits:
        raise ResourceError(_unfit_message(resources, demand, nodes))
    return fits


def _demand(resources: ResourcesSpec) -> dict[str, float]:
    """What one task needs, by Ray resource name (as in ``ray.nodes()``)."""
    demand = {"CPU": resources.num_cpus, "GPU": resources.num_gpus, **resources.resources}
    if resources.memory:
        demand["memory"] = resources.memory
    return {name: amount for name, amount in demand.items() if amount > 0}


def _selects(labels: dict[str, str], selector: dict[str, str]) -> bool:
    """Ray's label selector per key: ``v``, ``!v``, ``in(a,b)`` or ``!in(a,b)``."""
    for key, rule in selector.items():
        negate, rule = rule.startswith("!"), rule.lstrip("!")
        allowed = rule[3:-1].replace(" ", "").split(",") if rule.startswith("in(") else [rule]
        if (labels.get(key) in allowed) == negate:
            return False
    return True


def _unfit_message(resources: ResourcesSpec, demand: dict[str, float], nodes: list) -> str:
    asks = f"num_cpus={resources.num_cpus}, num_gpus={resources.num_gpus}"
    for name in ("memory", "resources", "label_selector"):
        if getattr(resources, name):
            asks += f", {name}={getattr(resources, name)}"
    units = {"CPU": "CPUs", "GPU": "GPUs", "memory": "bytes of memory"}
    reasons = []
    for name, amount in demand.items():
        most = max((node["Resources"].get(name, 0) for node in nodes), default=0)
        if most < amount:
            what = units.get(name, f"of the custom resource {name!r}")
            reasons.append(f"no node has {amount:g} {what} (the most any node has: {most:g})")
    if not any(_selects(node.get("Labels") or {}, resources.label_selector) for node in nodes):
        reasons.append(f"no node has labels matching {resources.label_selector}")
    reason = "; ".join(reasons) or "no single node has all of it"
    return f"resources: each task asks for {asks}, but {reason}; the job would wait forever"


_POLL_SECONDS = 0.2  # how often the loop looks for a Ctrl-C between waits


def failure_reason(error: ray.exceptions.RayError) -> str:
    """One line a user can act on: the exception the task raised (not Ray's wrapper) and
    its message, or Ray's own error (a dead worker, a lost node) when the task raised none."""
    cause = error.cause if isinstance(error, ray.exceptions.RayTaskError) else None
    if isinstance(cause, BaseException):
        return f"task failed: {type(cause).__name__}: {cause}".splitlines()[0]
    return f"task failed: {type(error).__name__}: {str(error).splitlines()[0]}"


@contextmanager
def _interrupt_between_calls() -> Iterator[Callable[[], bool]]:
    """Ctrl-C while tasks are in flight sets a flag the dispatch loop checks between Ray
    calls, so the interrupt lands at a point where Ray's own state is whole (raised in the
    middle of a Ray call it could leave that state broken), and within a poll's time.
    Only the main thread can handle signals; elsewhere Ctrl-C behaves as it always does."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hit = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: hit.set())
    try:
        yield hit.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def dispatch(
    shards: Sequence[Shard],
    job: JobContext,
    resources: ResourcesSpec,
    phase: Phase = Phase.FINAL,
    chosen: JobChoice = LSTM_ALONE,
) -> Iterator[tuple[Shard, ShardSummary | TaskFailure]]:
    """Launch one task per shard, at most ``max_in_flight`` pending; yield each shard with
    its ``ShardSummary`` as it finishes, or a ``TaskFailure`` if the task raised or its
    worker died more than ``max_retries`` times. The other tasks go on either way.
    """
    if not shards:  # nothing to run: Ray may not even be started
        return
    concurrent = check_resources(resources)
    limit = resources.max_in_flight or 2 * concurrent
    task = ray.remote(shard_task).options(
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
        memory=resources.memory,
        resources=resources.resources or None,
        label_selector=resources.label_selector or None,
        max_retries=resources.max_retries,
        retry_exceptions=False,  # our own errors are per-series rows, not worth a blind retry
    )
    shared, timeout = ray.put(job), resources.task_timeout
    queue = iter(shards)
    pending: dict[ray.ObjectRef, Shard] = {}
    with _interrupt_between_calls() as interrupted:
        try:
            while True:
                if interrupted():  # checked before anything is submitted or awaited
                    raise KeyboardInterrupt
                while len(pending) < limit and (shard := next(queue, None)) is not None:
                    pending[
                        task.remote(*(shared, shard, resources.num_cpus, phase, chosen), timeout)
                    ] = shard
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_SECONDS)
                if not done:
                    continue
                shard = pending.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except ray.exceptions.RayError as error:
                    tries = 1 + resources.max_retries if isinstance(error, _RETRIED) else 1
                    timed_out = _timeout_marker(job.out, shard.index).exists()
                    reason = (
                        f"task ran past resources.task_timeout ({resources.task_timeout:g} s) "
                        f"on each of its {tries} tries"
                        if timed_out
                        else failure_reason(error)
                    )
                    outcome = TaskFailure(reason, tries)
                yield shard, outcome
        finally:
            # Interrupted, tasks in flight are not cancelled: Ray 2.60's driver can crash
            # ("Tried to complete task that was not pending") when a cancel meets a reply
            # already on its way. The job's tasks end when its driver disconnects from Ray
            # (run_job shuts down the Ray it joined or started); a caller that stays
            # connected lets them finish, and the parts they write count on a rerun.
            pending.clear()
