"""One run at a time per output: a live holder refuses a second run by name; a dead
run's lock (a gone pid on this host, a lock this process left behind, or a heartbeat
long silent) is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cluster.job import run_job
from cluster.lock import LOCK, STALE, output_lock
from cluster.spec import load_spec
from lstm_worker.data.place import Place
from lstm_worker.errors import OutputError


def _hold(out, pid: int, host: str | None = None, age: float = 0.0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    holder = {"host": host or socket.gethostname(), "pid": pid, "run_id": "r1", "started": "t0"}
    (out / LOCK).write_text(json.dumps({**holder, "beat": time.time() - age}))


@pytest.fixture
def live_pid():
    sleeper = subprocess.Popen(["sleep", "60"])
    yield sleeper.pid
    sleeper.kill()
    sleeper.wait()


def test_a_second_run_on_a_held_output_is_refused_naming_the_holder(write_job, live_pid):
    spec = load_spec(write_job())
    out = spec.output.path
    _hold(Path(out), live_pid)
    with pytest.raises(
        OutputError, match=rf"in use by run r1 \(host .*, pid {live_pid}, started t0"
    ):
        run_job(spec)
    assert json.loads((Path(out) / LOCK).read_text())["pid"] == live_pid  # left as it was


def test_a_dead_runs_lock_is_taken_over_and_released(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    _hold(tmp_path, dead.pid)
    with output_lock(Place(tmp_path), "r2"):
        assert json.loads((tmp_path / LOCK).read_text())["run_id"] == "r2"
        with pytest.raises(OutputError, match="already in use by this process"):
            with output_lock(Place(tmp_path), "r3"):
                pass
    assert not (tmp_path / LOCK).exists()


def test_a_lock_this_process_left_behind_is_taken_over_by_its_next_run(tmp_path):
    """A run whose store went away could not delete its lock; the same process (a notebook,
    a scheduler's worker) runs again: no run of it holds the lock, so it is taken over."""
    _hold(tmp_path, os.getpid())
    with output_lock(Place(tmp_path), "r2"):
        assert json.loads((tmp_path / LOCK).read_text())["run_id"] == "r2"
    assert not (tmp_path / LOCK).exists()


def test_another_hosts_lock_counts_until_its_heartbeat_goes_stale(tmp_path):
    _hold(tmp_path, 1, host="elsewhere", age=5)
    with pytest.raises(OutputError, match="host elsewhere"):
        with output_lock(Place(tmp_path), "r2"):
            pass
    _hold(tmp_path, 1, host="elsewhere", age=STALE + 5)
    with output_lock(Place(tmp_path), "r2"):
        assert json.loads((tmp_path / LOCK).read_text())["host"] == socket.gethostname()
