"""Whole jobs on a real multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``),
one for the module: each test adds its nodes to it.

A process is connected to one Ray at a time, so this module leaves the session's Ray
(``conftest.ray_cluster``) while it runs and starts it again, as it was, afterwards.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
from ray._common.utils import get_ray_address_file
from ray.cluster_utils import Cluster
from ray.util.state import list_tasks

import cluster.passes
from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker.errors import ResourceError
from tests.conftest import synthetic_frame

pytestmark = pytest.mark.cluster  # each starts Ray clusters of its own

HORIZON = 6  # conftest.TINY's forecast.horizon


@pytest.fixture(scope="module", autouse=True)
def _leave_the_session_ray(request):
    """Shut the session's Ray for this module's clusters; bring it back the same after, when
    a test after this module uses it (conftest runs this module after all those that do)."""
    before = None
    if ray.is_initialized():
        resources = ray.cluster_resources()
        before = {
            "num_cpus": int(resources.get("CPU", 0)),
            "num_gpus": int(resources.get("GPU", 0)),
            "_temp_dir": ray._private.worker._global_node.get_temp_dir_path(),
        }
    ray.shutdown()
    yield
    ray.shutdown()
    items = request.session.items
    mine = [i for i, item in enumerate(items) if item.path == request.path]
    later = items[mine[-1] + 1 :] if mine else items
    if before is not None and any("ray_cluster" in item.fixturenames for item in later):
        ray.init(address="local", include_dashboard=False, logging_level="ERROR", **before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A killed node is known dead after 3 missed half-second health checks (Ray's default: 5
# of 3 s, 15 s the test waited on), and task events reach the state API every 0.1 s, not 1 s.
_SYSTEM_CONFIG = {
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
    "task_events_report_interval_ms": 100,
}


@pytest.fixture(scope="module")
def nodes():
    """One cluster for the module: a head that runs no task (no CPU, no GPU). Each test adds
    the nodes it needs and asks only for what they alone have, so no test's tasks land on
    another's nodes. ``Cluster`` records its address in /tmp/ray/ray_current_cluster,
    where another ``ray.init()`` on this machine would find and join it: that file is put
    back at once."""
    temp = tempfile.mkdtemp(prefix="rm-", dir="/tmp")  # short: socket paths < 107 chars
    address_file = Path(get_ray_address_file(None))
    address_file.parent.mkdir(parents=True, exist_ok=True)  # Ray writes it, not makes its dir
    before = address_file.read_text() if address_file.exists() else None
    started = None
    try:
        started = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "num_gpus": 0,
                "temp_dir": temp,
                "dashboard_port": _free_port(),
                "dashboard_agent_listen_port": _free_port(),
                "_system_config": _SYSTEM_CONFIG,
            },
        )
        _put_back(address_file, before)
        yield started
    finally:
        if started is not None:
            started.shutdown()
        _put_back(address_file, before)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def driver(nodes):
    """This test's driver joined to the module's cluster: a job of its own, so the state
    API's tasks of one test are told from another's by the job id."""
    ray.init(address=nodes.address, logging_level="ERROR")
    yield ray.get_runtime_context().get_job_id()
    ray.shutdown()


def _put_back(address_file: Path, text: str | None) -> None:
    if text is None:
        address_file.unlink(missing_ok=True)
    else:
        address_file.write_text(text)


def _shard_tasks(address: str, job_id: str) -> list:
    """The shard tasks of this test's driver, as Ray's state API records them."""
    time.sleep(1)  # task events reach the state API every 0.1 s (_SYSTEM_CONFIG)
    return list_tasks(
        address=address,
        detail=True,
        raise_on_missing_output=False,
        filters=[("func_or_class_name", "=", "shard_task"), ("job_id", "=", job_id)],
    )


def _add_node(nodes: Cluster, **resources):
    return nodes.add_node(temp_dir=nodes.head_node.get_temp_dir_path(), **resources)


def test_fractional_gpus_custom_resources_and_labels_run_only_where_they_fit(
    nodes, driver, write_job, tmp_path
):
    """0.5 GPU tasks run on the GPU node, four at a time; then a custom resource and a
    label that no node has fail fast, and a node added with them runs every task. (The GPU
    node stays: it has neither, so it must take none of them.)"""
    path = write_job(
        synthetic_frame(n_series=8),  # tasks long enough to overlap: a new worker's first
        train={"epochs": 20, "patience": 20},  # task takes a second or more
        resources={"num_cpus": 0.5, "num_gpus": 0.5, "series_per_task": 1},
    )
    # a resource and a label of its own, not the ones the second request asks for
    gpu_node = _add_node(
        nodes, num_cpus=4, num_gpus=2, resources={"fast_disk": 1}, labels={"pool": "train"}
    )
    summary = run_job(load_spec(path))
    tasks = _shard_tasks(nodes.address, driver)  # before the second request's: these alone
    pinned_node, summaries = _custom_resources_and_labels_pin_tasks_or_fail_fast(
        nodes, write_job, tmp_path
    )
    metrics = pd.read_parquet(summary.output / "metrics.parquet")
    assert summary.counts == {"ok": 8} and metrics["unique_id"].is_unique
    assert (metrics["node_id"] == gpu_node.node_id).all()
    assert set(metrics["gpu_id"]) <= {"0", "1"}  # one id each, never "0,1"
    assert metrics["device"].str.contains("ray gpu").all()
    assert len(tasks) == 2 * 8  # a search pass and a choose pass (forecast.lstm_weight: auto)
    assert {t.node_id for t in tasks} == {gpu_node.node_id}
    assert 1 < _most_at_once([_execution(t) for t in tasks]) <= 4  # 2 GPUs / 0.5 per task
    for pinned in summaries:
        metrics = pd.read_parquet(pinned.output / "metrics.parquet")
        assert (metrics["node_id"] == pinned_node.node_id).all()
        assert (metrics["status"] == "ok").all()


def _custom_resources_and_labels_pin_tasks_or_fail_fast(nodes: Cluster, write_job, tmp_path):
    """Requests no node fits fail fast (the GPU node has another resource and label); then
    a node that fits them: its id, and the jobs."""
    path = write_job(
        resources={"resources": {"gpu_node": 1}}, output={"path": str(tmp_path / "pin")}
    )
    started = time.monotonic()
    with pytest.raises(ResourceError, match="custom resource 'gpu_node'"):
        run_job(load_spec(path))
    by_label = [
        "resources.resources={}",
        "resources.label_selector.pool=gpu",
        f"output.path={path.parent / 'by_label'}",
    ]
    with pytest.raises(ResourceError, match="no node has labels matching"):
        run_job(load_spec(path, by_label))
    assert time.monotonic() - started < 10
    # a node that has them: every task runs there
    pinned = _add_node(nodes, num_cpus=1, resources={"gpu_node": 1}, labels={"pool": "gpu"})
    return pinned, [run_job(load_spec(path)), run_job(load_spec(path, by_label))]


def _execution(task) -> tuple[float, float]:
    """When the task's function ran, as its worker recorded it (while it held its GPU).

    RUNNING and FINISHED times come from the scheduler and the owner, a few ms outside
    the slot the task held, so they can seem to overlap the next task in that slot.
    """
    (span,) = [e for e in task.profiling_data["events"] if e["event_name"] == "task:execute"]
    return span["start_time"], span["end_time"]


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        most = max(most, running)
    return most


def test_a_worker_node_killed_mid_job_loses_and_repeats_no_series(
    nodes, driver, write_job, monkeypatch
):
    n_series = 12
    path = write_job(  # the doomed node and its successor alone have a "spare" to give
        synthetic_frame(n_series=n_series),
        resources={"series_per_task": 1, "max_retries": 3, "resources": {"spare": 1}},
    )
    doomed = _add_node(nodes, num_cpus=1, resources={"spare": 1})
    events = []
    real_dispatch = cluster.passes.dispatch

    def dispatch_then_kill(*args, **kwargs):
        """After the first shard returns, kill the node running the others; add another."""
        for item in real_dispatch(*args, **kwargs):
            if not events:
                nodes.remove_node(doomed, allow_graceful=False)
                events.append(_add_node(nodes, num_cpus=1, resources={"spare": 1}).node_id)
            yield item

    monkeypatch.setattr(cluster.passes, "dispatch", dispatch_then_kill)
    summary = run_job(load_spec(path))
    tasks = _shard_tasks(nodes.address, driver)
    metrics = pd.read_parquet(summary.output / "metrics.parquet")
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    assert sorted(metrics["unique_id"]) == sorted(f"s{i}" for i in range(n_series))
    assert (metrics["status"] == "ok").all(), metrics[["unique_id", "status", "reason"]]
    assert forecasts.groupby("unique_id").size().eq(HORIZON).all()
    assert forecasts["unique_id"].nunique() == n_series
    assert not forecasts.duplicated(["unique_id", "ds"]).any()
    # work both before the kill and after it, on the node added then; the kill hit
    # running tasks, which Ray ran again
    assert set(metrics["node_id"]) == {doomed.node_id, events[0]}
    assert any(t.attempt_number > 0 for t in tasks), [(t.state, t.attempt_number) for t in tasks]
