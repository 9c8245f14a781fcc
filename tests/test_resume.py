"""A driver killed mid-job loses nothing: the rerun computes only the missing shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker.data.layout import PARTS
from tests.conftest import running_task_pids, start_driver, synthetic_frame

_ALL_AT_ONCE = "resources.max_in_flight=null"  # the killed driver ran one task at a time
RUN_TO_RUN_COLUMNS = [
    "train_seconds",
    "forecast_seconds",
    "node_id",
    "device",
    "gpu_id",
]  # not what


def test_killed_driver_resumes_only_missing_shards(ray_cluster, write_job, tmp_path):
    path = write_job(
        synthetic_frame(n_series=12), resources={"series_per_task": 1, "max_in_flight": 1}
    )
    killed_out, clean_out = tmp_path / "killed", tmp_path / "clean"
    driver = start_driver(
        ray_cluster,
        path,
        "--set",
        f"output.path={killed_out}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    parts = killed_out / PARTS / "metrics"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("shard-*.parquet"))) < 3 and time.monotonic() < deadline:
        assert driver.poll() is None, "the driver ended before it could be killed"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 60  # a task already running writes its part, then ends
    while running_task_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    written = len(list(parts.glob("shard-*.parquet")))
    assert 3 <= written < 12, written
    assert json.loads((killed_out / "manifest.json").read_text())["status"] == "running"

    # resources are not in the job's key: the rest run two at a time, and still resume
    resumed = run_job(load_spec(path, [f"output.path={killed_out}", _ALL_AT_ONCE]))
    manifest = json.loads((resumed.output / "manifest.json").read_text())
    assert manifest["shards_resumed"] == written
    assert manifest["series_computed"] == 12 - written and manifest["status"] == "finished"

    clean = run_job(load_spec(path, [f"output.path={clean_out}", _ALL_AT_ONCE]))
    for name in ("forecasts.parquet", "backtest.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(resumed.output / name),
            pd.read_parquet(clean.output / name),
            check_exact=True,
        )
    pd.testing.assert_frame_equal(
        pd.read_parquet(resumed.output / "metrics.parquet").drop(columns=RUN_TO_RUN_COLUMNS),
        pd.read_parquet(clean.output / "metrics.parquet").drop(columns=RUN_TO_RUN_COLUMNS),
        check_exact=True,
    )


def test_a_finished_job_rerun_computes_nothing(ray_cluster, write_job):
    path = write_job()
    first = run_job(load_spec(path))
    again = run_job(load_spec(path))
    manifest = json.loads((again.output / "manifest.json").read_text())
    assert manifest["series_computed"] == 0 and manifest["shards_resumed"] == 2
    pd.testing.assert_frame_equal(
        pd.read_parquet(first.output / "forecasts.parquet"),
        pd.read_parquet(again.output / "forecasts.parquet"),
        check_exact=True,
    )
    # from the command line, in a process where Ray was never started
    rerun = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "run", str(path), "--no-report"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0 and "5 ok" in rerun.stdout, rerun.stderr


@pytest.mark.parametrize("flag", [[], ["--overwrite"]])
def test_a_different_job_is_refused_unless_overwrite(ray_cluster, write_job, flag):
    from click.testing import CliRunner

    from cluster.cli import main

    path = write_job()
    run_job(load_spec(path))
    result = CliRunner().invoke(
        main, ["run", str(path), "--no-report", "--set", "train.epochs=1", *flag]
    )
    assert result.exit_code == (0 if flag else 1), result.output
    manifest = json.loads((path.parent / "out" / "manifest.json").read_text())
    if not flag:
        assert "different job" in result.output and "--overwrite" in result.output
        assert manifest["spec"]["train"]["epochs"] == 2  # the first job's outputs, untouched
    else:
        assert manifest["spec"]["train"]["epochs"] == 1 and manifest["status"] == "finished"
