"""Shared fixtures: one real local Ray per test session, small synthetic Parquet tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.objectstore import Proxy, free_port, s3, start_moto

# The tests' object store: set before any Ray starts, so every worker inherits it. The
# proxy's port is the store's address; the moto server behind it starts on first use.
S3_PORT, _MOTO_PORT = free_port(), free_port()
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1",
    AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{S3_PORT}",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_SESSION_TOKEN", None)

TINY = {  # a model and training small enough for a test, real all the same
    "model": {"lookback": 8, "hidden_size": 8},
    "train": {"epochs": 2, "batch_size": 32},
    "forecast": {"horizon": 6},
    "table": {"hidden_size": 8, "members": 2, "epochs": 2},
    "resources": {"num_cpus": 1, "series_per_task": 3},
}


def synthetic_frame(n_series: int = 5, length: int = 60, seed: int = 0) -> pd.DataFrame:
    """Hourly series with a daily cycle and noise, ids ``s0``, ``s1``, ..."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        t = np.arange(length)
        y = 10 + i + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, length)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{i}",
                    "ds": pd.date_range("2024-01-01", periods=length, freq="h"),
                    "y": y,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def merge(base: dict, extra: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


@pytest.fixture
def write_job(tmp_path: Path):
    """Write a table and a spec into ``tmp_path``; return the spec's path."""

    def write(frame: pd.DataFrame | None = None, **sections) -> Path:
        data = tmp_path / "input.parquet"
        (frame if frame is not None else synthetic_frame()).to_parquet(data, index=False)
        raw = merge(TINY, {"input": {"path": str(data)}, "output": {"path": str(tmp_path / "out")}})
        raw = merge(raw, sections)
        spec = tmp_path / "job.yaml"
        spec.write_text(yaml.safe_dump(raw))
        return spec

    return write


def start_driver(ray_cluster, spec: Path, *args: str, **popen) -> subprocess.Popen:
    """``runner run SPEC`` as a separate driver process joined to the session's Ray."""
    address = ray_cluster.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "cluster.cli", "run", str(spec), "--address", address]
    return subprocess.Popen([*command, "--no-report", *args], **popen)


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])  # after the name, which may hold spaces


def _descends_from_this_process(pid: int) -> bool:
    """Whether ``pid`` was started, through any chain, by this test process: its Ray's
    raylet, and so that Ray's workers, are. Another Ray on the machine (a benchmark, another
    checkout's tests) has its own tasks, which are no business of these tests."""
    me = os.getpid()
    while pid > 1:
        pid = _parent(pid)
        if pid == me:
            return True
    return False


def running_task_pids() -> list[int]:
    """The shard tasks running under this test process's Ray: Ray names a worker process
    after the task it runs (``ray::IDLE`` between tasks)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and (proc / "cmdline").read_bytes().startswith(b"ray::shard_task")
                and _descends_from_this_process(int(proc.name))
            ):
                pids.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


# The modules that take longest, longest first. They start first, so that with the
# suite's two workers (``-n``, pytest-xdist) the short ones fill in at the end and both
# workers finish together. test_multinode leaves a worker's Ray for a cluster of its own;
# run first, before that worker's Ray has started, it leaves nothing to start again.
_FIRST = (
    "test_multinode.py",
    "test_submit.py",
    "test_object_store.py",
    "test_failures.py",
    "test_m4_job.py",
    "test_api.py",
    "test_tracking.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """What a test costs, said by its markers: one that boots a Ray cluster (the session's,
    through ``ray_cluster``, or its own, marked ``cluster``) is ``cluster``, and so ``slow``:
    ``pytest -m "not slow"`` runs the rest in well under a minute. The modules of ``_FIRST``
    are moved to the front, in that order."""
    for item in items:
        if "ray_cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slow)
    rank = {name: i - len(_FIRST) for i, name in enumerate(_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, 0))  # stable: the rest keep their order


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per core, at most 4: each worker has a Ray of its own (a few
    hundred MB, more with its idle workers)."""
    return max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def s3_store():
    """A real S3 server (moto) on loopback behind a proxy the tests can cut: yields the
    proxy and a pyarrow file system on the server itself, with bucket ``runner``."""
    server = start_moto(_MOTO_PORT)
    proxy = Proxy(S3_PORT, _MOTO_PORT)
    direct = s3(_MOTO_PORT)
    direct.create_dir("runner")
    yield proxy, direct
    proxy.cut()
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray with 2 logical GPUs, shared by the whole session (by each xdist
    worker's: a Ray of its own, never one it finds on the machine), with the worker's share
    of the cores, 2 CPUs at most: on a 2-core machine 1 each for its two workers. A CPU
    more than the core behind it runs nothing faster; it only starts another worker process
    for each job (the test's own and each driver it starts), and each loads torch."""
    import ray

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(
        address="local",
        num_cpus=max(1, min(2, (os.cpu_count() or 2) // workers)),
        num_gpus=2,
        include_dashboard=False,
        _temp_dir=temp_dir,
        logging_level="ERROR",
        # Ray keeps about as many idle workers as CPUs and ends the rest after a second:
        # after the GPU tests' workers and the driver processes' jobs, this session's next
        # job often waited for new workers to import torch. A few more idle workers (a few
        # hundred MB each) keep this session's warm.
        _system_config={"num_workers_soft_limit": 6},
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
