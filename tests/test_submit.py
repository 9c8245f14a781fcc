"""``runner submit/status/logs/stop`` and ``run --address`` against a real ``ray start`` head.

The head runs in its own process group with its own temp dir, ports and auth token, so
it never meets another Ray on this machine (no ``ray stop``: that stops every Ray here).
Commands run as subprocesses through the installed ``runner`` script, as a user runs them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.cluster  # each starts Ray clusters of its own

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = [
    "--set",
    "train.epochs=2",
    "--set",
    "model.lookback=24",
    "--set",
    "forecast.horizon=6",
    "--set",
    "resources.series_per_task=6",
]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def head():
    """A one-node Ray cluster (1 CPU, no GPU) with its Job API on loopback, started by its
    full path from an environment that is not on its PATH, as `.venv/bin/ray start --head`
    without activating it: a job submitted to it runs only if the entrypoint finds the
    head's own interpreter (with the environment on PATH, ``python3`` would do)."""
    with _head() as started:
        yield started


@contextmanager
def _head():
    temp = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: socket paths < 107 chars
    token = temp / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    (
        gcs,
        dashboard,
        client,
        agent,
        agent_grpc,
        runtime_env,
        metrics,
        node_manager,
        object_manager,
    ) = _free_ports(9)
    head_env = {**env, "PATH": "/usr/bin:/bin"}  # the project's environment is not on it
    process = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            "--num-cpus=1",
            "--num-gpus=0",
            f"--temp-dir={temp / 'ray'}",
            f"--port={gcs}",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--ray-client-server-port={client}",
            f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}",
            f"--node-manager-port={node_manager}",
            f"--object-manager-port={object_manager}",
            "--disable-usage-stats",
        ],
        env=head_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_job_api(url, token.read_text())
        yield {"url": url, "gcs": f"127.0.0.1:{gcs}", "env": env, "temp": temp}
    finally:
        process.send_signal(signal.SIGTERM)  # `ray start --block` takes its processes down
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of our own group only
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_job_api(url: str, token: str, timeout: float = 60.0) -> None:
    """Until the Job API lists jobs (what ``JobSubmissionClient.list_jobs`` asks), polled
    over HTTP from here: a Python started per probe took seconds to import Ray."""
    request = _job_api(url, token, "")
    deadline, error = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError as failed:  # refused, reset, or an HTTP error while it starts
            error = str(failed)
        time.sleep(0.25)
    raise RuntimeError(f"the Job API at {url} did not come up: {error}")


def _job_api(url: str, token: str, job_id: str) -> urllib.request.Request:
    """A request to the Job API for one job, or for the list with ``job_id`` empty."""
    return urllib.request.Request(
        f"{url}/api/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}
    )


def _job_status(head, job_id: str) -> str:
    """The job's status as the Job API reports it, asked over HTTP from here."""
    request = _job_api(head["url"], (head["temp"] / "auth_token").read_text(), job_id)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["status"]


def runner(
    head, *args: str, cwd: Path = ROOT, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "runner"), *args],
        env=head["env"] if env is None else env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def test_submit_runs_the_example_job_with_the_heads_own_python_and_status_logs_work(head, tmp_path):
    out = tmp_path / "out"
    done = runner(
        head,
        "submit",
        "jobs/example.yaml",
        "--address",
        head["url"],
        "--no-report",
        "--set",
        f"output.path={out}",
        *SMALL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = re.search(r"submitted (\S+) to", done.stderr).group(1)
    assert "24 ok" in done.stdout and f"outputs: {out}/" in done.stdout  # the driver's own log
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert len(forecasts) == 24 * 6 and metrics["unique_id"].is_unique and len(metrics) == 24
    assert (metrics["status"] == "ok").all() and (out / "manifest.json").exists()
    assert not (out / "report.html").exists()  # --no-report reached the driver

    address = ["--address", head["url"]]
    no_token = {**head["env"], "RAY_AUTH_MODE": "disabled"}
    with ThreadPoolExecutor(4) as pool:  # four reads of the finished job: at once, not in turn
        asked = [
            pool.submit(runner, head, "status", job_id, *address),
            pool.submit(runner, head, "logs", job_id, *address),
            pool.submit(runner, head, "status", "raysubmit_nosuchjob", *address),
            pool.submit(runner, head, "status", job_id, *address, env=no_token),
        ]
        status, logs, unknown, refused = (question.result() for question in asked)
    assert status.returncode == 0 and f"{job_id}: SUCCEEDED" in status.stdout
    assert logs.returncode == 0 and "24 ok" in logs.stdout
    assert unknown.returncode == 1 and "no job 'raysubmit_nosuchjob'" in unknown.stderr
    assert refused.returncode == 1 and "set RAY_AUTH_MODE=token" in refused.stderr


def test_no_interpreter_with_the_project_is_named_in_the_failure(tmp_path):
    from cluster.submit import entrypoint

    failed = subprocess.run(  # the entrypoint's parent, an outer sh, has no Ray loaded
        ["/bin/sh", "-c", '/bin/sh -c "$0"; exit $?', entrypoint(["cluster.cli", "--help"])],
        env={"PATH": str(tmp_path), "RUNNER_PYTHON": "/nowhere/python"},
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1 and failed.stdout == ""
    assert "RUNNER_PYTHON (/nowhere/python)" in failed.stderr
    assert "no python3" in failed.stderr and "runner submit --python" in failed.stderr


def test_stop_ends_a_running_job(head, tmp_path):
    started = runner(
        head,
        "submit",
        "jobs/example.yaml",
        "--address",
        head["url"],
        "--no-wait",
        "--set",
        f"output.path={tmp_path / 'out'}",
        "--set",
        "train.epochs=1000",
        "--set",
        "train.patience=1000",
    )
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip()
    deadline = time.monotonic() + 60
    while _job_status(head, job_id) != "RUNNING":  # `runner status` is the first test's
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.25)
    stopped = runner(head, "stop", job_id, "--address", head["url"])
    assert stopped.returncode == 0 and f"{job_id}: STOPPED" in stopped.stdout, stopped.stderr
    follow = runner(head, "logs", job_id, "--follow", "--address", head["url"])
    assert follow.returncode == 130 and "STOPPED" in follow.stderr  # the job's outcome
    assert not (tmp_path / "out" / "forecasts.parquet").exists()


def test_impossible_request_fails_within_seconds_here_and_through_the_job_api(head, tmp_path):
    started = time.monotonic()
    here = [
        "run",
        "jobs/example.yaml",
        "--address",
        head["gcs"],
        "--set",
        f"output.path={tmp_path / 'here'}",
        "--set",
        "resources.num_gpus=1",
    ]
    there = [
        "submit",
        "jobs/example.yaml",
        "--address",
        head["url"],
        "--set",
        f"output.path={tmp_path / 'there'}",
        "--set",
        "resources.resources.gpu_node=1",
    ]
    with ThreadPoolExecutor(2) as pool:  # two jobs of their own: run at once, not in turn
        asked = [pool.submit(runner, head, *here), pool.submit(runner, head, *there)]
        run, submitted = (question.result() for question in asked)
    assert run.returncode == 1 and "num_gpus=1.0" in run.stderr
    assert "no node has 1 GPUs (the most any node has: 0)" in run.stderr, run.stderr
    assert submitted.returncode == 1, submitted.stdout + submitted.stderr
    assert "custom resource 'gpu_node'" in submitted.stdout and "FAILED" in submitted.stderr
    assert time.monotonic() - started < 60


def test_bad_spec_or_unreachable_cluster_fail_before_submitting(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cluster.cli import main

    monkeypatch.chdir(ROOT)
    (port,) = _free_ports(1)
    url = f"http://127.0.0.1:{port}"  # nothing listens there
    bad = CliRunner().invoke(
        main, ["submit", "jobs/example.yaml", "--address", url, "--set", "train.epochs=-1"]
    )
    assert bad.exit_code == 2 and "train.epochs" in bad.output
    outside = tmp_path / "job.yaml"
    shutil.copy(ROOT / "jobs" / "example.yaml", outside)
    away = CliRunner().invoke(main, ["submit", str(outside), "--address", url])
    assert away.exit_code == 2 and "outside" in away.output
    future = ["--set", "input.features=[price]", "--set", "input.future_path=gone.parquet"]
    no_future = CliRunner().invoke(main, ["submit", "jobs/example.yaml", "--address", url, *future])
    assert no_future.exit_code == 2 and "input.future_path: gone.parquet does not exist" in (
        no_future.output
    )
    store = ["--set", "input.path=s3://b/t/", "--set", "output.path=s3://b/out"]
    on_a_store = CliRunner().invoke(main, ["submit", "jobs/example.yaml", "--address", url, *store])
    # an object store is no path under the upload: it gets as far as the cluster
    assert on_a_store.exit_code == 1, on_a_store.output
    assert f"cannot reach the Ray Job API at {url}" in on_a_store.output
    down = CliRunner().invoke(main, ["status", "x", "--address", url])
    assert down.exit_code == 1 and f"cannot reach the Ray Job API at {url}" in down.output
