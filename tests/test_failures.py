"""Bad luck: a diverging loss, a task that raises, a worker the OS kills, Ctrl-C. Each one
stays as small as it is: a retry, or failed rows; the rest finishes; nothing is lost."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import lstm_worker.batch
from cluster.cli import main
from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker import WorkerConfig, forecast_batch
from lstm_worker.data.layout import PARTS
from tests.conftest import running_task_pids, start_driver, synthetic_frame

CFG = WorkerConfig(
    model={"lookback": 8, "hidden_size": 8},
    train={"epochs": 2},
    forecast={"horizon": 5},
    season_length=24,
)


def _values(n: int) -> list[np.ndarray]:
    frame = synthetic_frame(n)
    return [group["y"].to_numpy() for _, group in frame.groupby("unique_id")]


# --- a loss that becomes NaN: one retry at a tenth of the lr, then failed ------------------


def test_a_diverged_series_is_retried_at_a_lower_lr_and_the_others_are_untouched(monkeypatch):
    calls = []
    train = lstm_worker.fit.train_stacked

    def first_call_diverges_for_b(
        pools, cfg, seeds, device, start=None, max_epochs=None, hold=None
    ):
        fit = train(pools, cfg, seeds, device, start, max_epochs, hold)
        calls.append((len(pools), cfg.train.lr))
        if len(calls) > 1:
            return fit
        diverged = fit.diverged.copy()
        diverged[2] = True  # models 2 and 3 are series b's backtest and refit models
        return dataclasses.replace(fit, diverged=diverged)

    clean = forecast_batch(["a", "b", "c"], _values(3), CFG, num_threads=1)
    monkeypatch.setattr(lstm_worker.fit, "train_stacked", first_call_diverges_for_b)
    results = forecast_batch(["a", "b", "c"], _values(3), CFG, num_threads=1)
    assert calls == [(6, CFG.train.lr), (2, CFG.train.lr * 0.1)]  # b alone, both its models
    assert [r.status for r in results] == ["ok"] * 3
    assert [r.attempts for r in results] == [1, 2, 1]
    for k in (0, 2):
        np.testing.assert_array_equal(results[k].forecast, clean[k].forecast)


# Adam moves each weight by about lr a step, clipped gradients or not: predictions near
# 1e30 whose square overflows float32, at lr and at lr / 10 alike.
_DIVERGE = ["--set", "train.lr=1e30", "--set", "train.loss=mse"]


def test_a_loss_that_diverges_everywhere_fails_every_series_yet_the_job_exits_0(
    ray_cluster, write_job
):
    path = write_job(synthetic_frame(3))
    result = CliRunner().invoke(main, ["run", str(path), "--no-report", *_DIVERGE])
    assert result.exit_code == 0, result.output
    assert "0 ok" in result.output and "3 failed" in result.output
    metrics = pd.read_parquet(path.parent / "out" / "metrics.parquet")
    assert (metrics["status"] == "failed").all() and (metrics["attempts"] == 2).all()
    assert (
        metrics["reason"]
        .str.contains("NaN or infinite, at lr 1e+30 and again at 1e+29", regex=False)
        .all()
    )


def test_more_failures_than_the_spec_allows_exit_1_after_writing_everything(ray_cluster, write_job):
    path = write_job(synthetic_frame(3), output={"max_failed_fraction": 0.5})
    result = CliRunner().invoke(main, ["run", str(path), *_DIVERGE])
    assert result.exit_code == 1, result.output
    summary, error = result.output.index("3 failed"), result.output.index("error: ")
    assert summary < error and "output.max_failed_fraction (0.5)" in result.output
    out = path.parent / "out"
    for name in ("metrics.parquet", "forecasts.parquet", "backtest.parquet", "report.html"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["failure_limit_exceeded"] is True


# --- a task that raises, a worker that dies -----------------------------------------------


def test_a_shard_that_raises_marks_its_own_series_failed_with_the_error(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    good = forecast_batch(["a", "b"], _values(2), CFG, num_threads=1)
    monkeypatch.setattr(lstm_worker.batch, "forecast_many", out_of_memory)
    bad = forecast_batch(["c", "d"], _values(2), CFG, num_threads=1)
    assert [r.status for r in good] == ["ok", "ok"]
    assert [r.status for r in bad] == ["failed", "failed"]
    assert all(r.reason == "RuntimeError: DefaultCPUAllocator: not enough memory" for r in bad)


def _kill_one_task_while(job: threading.Thread) -> int:
    """SIGKILL the worker of the first running task seen, as the OOM killer would."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.is_alive():
        if pids := running_task_pids():
            os.kill(pids[0], signal.SIGKILL)
            return pids[0]
        time.sleep(0.02)
    raise AssertionError("no task was seen running")


_SLOW = {
    "train": {"epochs": 30, "patience": 30},
    "resources": {"series_per_task": 1, "max_in_flight": 1},
}


def _run_in_thread(spec):
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(summary=run_job(spec)))
    job.start()
    return job, outcome


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_by_the_os_is_retried_else_only_its_shard_fails(
    ray_cluster, write_job, retries
):
    path = write_job(synthetic_frame(4, length=200), **_SLOW)
    spec = load_spec(path, [f"resources.max_retries={retries}"])
    job, outcome = _run_in_thread(spec)
    _kill_one_task_while(job)
    job.join(timeout=300)
    metrics = pd.read_parquet(outcome["summary"].output / "metrics.parquet")
    forecasts = pd.read_parquet(outcome["summary"].output / "forecasts.parquet")
    assert sorted(metrics["unique_id"]) == ["s0", "s1", "s2", "s3"]
    if retries:
        assert (metrics["status"] == "ok").all() and len(forecasts) == 4 * 6
        return
    failed = metrics[metrics["status"] == "failed"]
    assert len(failed) == 1 and "WorkerCrashedError" in failed["reason"].iloc[0]
    assert (metrics["status"] == "ok").sum() == 3 and len(forecasts) == 3 * 6
    rerun = run_job(spec)  # the failed shard was not written as done: the rerun retries it
    manifest = json.loads((rerun.output / "manifest.json").read_text())
    assert manifest["series_computed"] == 1 and rerun.counts == {"ok": 4}


# --- Ctrl-C on the driver ----------------------------------------------------------------


def test_ctrl_c_cancels_tasks_keeps_finished_shards_and_exits_130(ray_cluster, write_job):
    path = write_job(synthetic_frame(12), resources={"series_per_task": 1, "max_in_flight": 1})
    out = path.parent / "out"
    driver = start_driver(
        ray_cluster, path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    parts = out / PARTS / "metrics"
    deadline = time.monotonic() + 120
    while not list(parts.glob("shard-*.parquet")) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    written = sorted(parts.glob("shard-*.parquet"))
    assert 1 <= len(written) < 12
    for part in written:
        assert len(pd.read_parquet(part)) == 1  # whole, readable parts only
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    deadline = time.monotonic() + 15
    while running_task_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running_task_pids(), "a task kept running after Ctrl-C"

    # resources are not in the job's key: the rest run two at a time, and still resume
    resumed = run_job(load_spec(path, ["resources.max_in_flight=null"]))
    manifest = json.loads((resumed.output / "manifest.json").read_text())
    assert manifest["shards_resumed"] == len(written) and resumed.counts == {"ok": 12}


# --- a task that hangs ---------------------------------------------------------------------


def test_a_task_past_task_timeout_is_retried_then_fails_its_series_only(ray_cluster, write_job):
    path = write_job(
        synthetic_frame(3),
        resources={"series_per_task": 1, "task_timeout": 3, "max_retries": 1},
    )
    root = str(Path(__file__).resolve().parents[1])  # where workers import tests.hooks from
    hook = {
        "runtime_env": {
            "worker_process_setup_hook": "tests.hooks.stall_shard_zero",
            "env_vars": {"PYTHONPATH": root},
        }
    }
    env = {**os.environ, "RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(hook)}
    started = time.monotonic()
    driver = start_driver(
        ray_cluster, path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, stderr = driver.communicate(timeout=240)
    assert driver.returncode == 0, stderr
    assert time.monotonic() - started < 120  # two tries of 3 s, not an hour
    metrics = pd.read_parquet(path.parent / "out" / "metrics.parquet").set_index("unique_id")
    assert metrics.loc["s0", "status"] == "failed" and metrics.loc["s0", "attempts"] == 2
    assert metrics.loc["s0", "reason"] == (
        "task ran past resources.task_timeout (3 s) on each of its 2 tries"
    )
    assert (metrics.loc[["s1", "s2"], "status"] == "ok").all()
    assert len(pd.read_parquet(path.parent / "out" / "forecasts.parquet")) == 2 * 6
