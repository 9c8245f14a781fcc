"""Input and outputs on an object store (a real S3 server, moto, on loopback): a whole
job from s3:// to s3://, a resume after the driver is killed, the store going away
mid-run, wrong credentials. Nothing lands on the local disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from cluster.cli import main
from cluster.job import run_job
from cluster.report.page import build_report
from cluster.spec import load_spec
from lstm_worker.data.layout import PARTS
from tests.conftest import TINY, merge, running_task_pids, start_driver, synthetic_frame
from tests.objectstore import free_port, make_user, s3, start_moto

pytestmark = pytest.mark.cluster


# The jobs cut short run one task at a time, so a part is written now and then; a rerun
# needs no such pace (resources are not in the job's key, so it resumes all the same).
_ALL_AT_ONCE = "resources.max_in_flight=null"


def _parts(direct: pafs.S3FileSystem, key: str) -> list[str]:
    selector = pafs.FileSelector(f"runner/{key}/{PARTS}/metrics", allow_not_found=True)
    return [i.path for i in direct.get_file_info(selector) if i.path.endswith(".parquet")]


def _job(tmp_path, direct, key: str, n_series: int = 6, **sections):
    """A spec reading s3://runner/<key>/input.parquet and writing s3://runner/<key>/out."""
    frame = synthetic_frame(n_series)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        f"runner/{key}/input.parquet",
        filesystem=direct,
    )
    raw = merge(
        TINY,
        {
            "input": {"path": f"s3://runner/{key}/input.parquet"},
            "output": {"path": f"s3://runner/{key}/out"},
        },
    )
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(merge(raw, sections)))
    return path


def test_a_job_from_s3_to_s3_writes_every_output_on_the_store(
    ray_cluster, s3_store, tmp_path, monkeypatch
):
    _, direct = s3_store
    monkeypatch.chdir(tmp_path)
    path = _job(tmp_path, direct, "whole")
    summary = run_job(load_spec(path))
    assert summary.counts == {"ok": 6} and str(summary.output) == "s3://runner/whole/out"
    files = {
        i.path.removeprefix("runner/whole/out/")
        for i in direct.get_file_info(pafs.FileSelector("runner/whole/out", recursive=True))
    }
    for name in ("manifest.json", "forecasts.parquet", "metrics.parquet", "backtest.parquet"):
        assert name in files
    assert "models/shard-000000.safetensors" in files and ".lock" not in files
    local = run_job(load_spec(path, [f"output.path={tmp_path / 'local'}"]))
    for name in ("forecasts.parquet", "backtest.parquet"):
        on_store = pq.read_table(f"runner/whole/out/{name}", filesystem=direct).to_pandas()
        pd.testing.assert_frame_equal(
            on_store, pd.read_parquet(local.output / name), check_exact=True
        )
    page = build_report("s3://runner/whole/out")
    assert str(page) == "s3://runner/whole/out/report.html" and page.read_text().startswith("<!")
    result = CliRunner().invoke(main, ["report", "s3://runner/whole/out"])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["job.yaml", "local"]  # no local folder named s3:


def test_a_driver_killed_mid_job_resumes_on_the_store(ray_cluster, s3_store, tmp_path):
    _, direct = s3_store
    path = _job(
        tmp_path, direct, "killed", 12, resources={"series_per_task": 1, "max_in_flight": 1}
    )
    driver = start_driver(
        ray_cluster,
        path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(_parts(direct, "killed/out")) < 3 and time.monotonic() < deadline:
        assert driver.poll() is None, "the driver ended before it could be killed"
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 60
    while running_task_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    written = len(_parts(direct, "killed/out"))
    assert 3 <= written < 12
    # the dead driver's lock is taken over; the rest run two at a time (not in the job's key)
    resumed = run_job(load_spec(path, [_ALL_AT_ONCE]))
    manifest = json.loads(direct.open_input_stream("runner/killed/out/manifest.json").read())
    assert manifest["shards_resumed"] == written and resumed.counts == {"ok": 12}
    metrics = pq.read_table("runner/killed/out/metrics.parquet", filesystem=direct).to_pandas()
    assert sorted(metrics["unique_id"]) == sorted(f"s{i}" for i in range(12))


def test_the_store_going_away_fails_the_job_clearly_and_a_rerun_finishes(
    ray_cluster, s3_store, tmp_path
):
    proxy, direct = s3_store
    path = _job(tmp_path, direct, "away", 12, resources={"series_per_task": 1, "max_in_flight": 1})

    def cut_once_two_parts_are_written() -> None:
        deadline = time.monotonic() + 120
        while len(_parts(direct, "away/out")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proxy.cut()

    cutter = threading.Thread(target=cut_once_two_parts_are_written)
    cutter.start()
    try:  # the CLI as a user runs it, in this process: the session's Ray runs its tasks
        result = CliRunner().invoke(main, ["run", str(path), "--no-report"])
    finally:
        cutter.join()
        proxy.restore()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "s3://runner/away/out" in result.stderr and "storage failed" in result.stderr
    assert "Traceback" not in result.output, result.output
    kept = len(_parts(direct, "away/out"))
    assert 2 <= kept < 12
    rerun = run_job(load_spec(path, [_ALL_AT_ONCE]))
    assert rerun.counts == {"ok": 12}
    metrics = pq.read_table("runner/away/out/metrics.parquet", filesystem=direct).to_pandas()
    forecasts = pq.read_table("runner/away/out/forecasts.parquet", filesystem=direct)
    assert metrics["unique_id"].is_unique and len(metrics) == 12
    assert forecasts.num_rows == 12 * TINY["forecast"]["horizon"]  # nothing twice


def test_nights_on_the_store_warm_start_from_and_score_the_night_before(
    ray_cluster, s3_store, tmp_path
):
    _, direct = s3_store
    frame = synthetic_frame(6, length=66)
    horizon = TINY["forecast"]["horizon"]
    night1 = frame.groupby("unique_id").head(60)  # night 2 sees each series' next 6 points
    for name, table in (("day1", night1), ("day2", frame)):
        pq.write_table(
            pa.Table.from_pandas(table, preserve_index=False),
            f"runner/nightly/{name}.parquet",
            filesystem=direct,
        )
    path = tmp_path / "nightly.yaml"
    nightly = {
        "name": "nightly",
        "train": {"warm_start": "latest"},
        "ledger": {"previous": "latest"},
        "output": {"path": "s3://runner/nightly/runs/{run_id}"},
    }
    path.write_text(yaml.safe_dump(merge(TINY, nightly)))
    first = run_job(load_spec(path, ["input.path=s3://runner/nightly/day1.parquet"]))
    second = run_job(load_spec(path, ["input.path=s3://runner/nightly/day2.parquet"]))
    key = str(second.output).removeprefix("s3://")
    manifest = json.loads(direct.open_input_stream(f"{key}/manifest.json").read())
    assert manifest["warm_started_from"] == manifest["ledger_of"] == str(first.output)
    metrics = pq.read_table(f"{key}/metrics.parquet", filesystem=direct).to_pandas()
    assert (metrics["init"] == "warm").all() and (metrics["status"] == "ok").all()
    ledger = pq.read_table(f"{key}/ledger.parquet", filesystem=direct).to_pandas()
    assert len(ledger) == 6 * horizon and manifest["ledger"]["steps"] == 6 * horizon
    # a forecast-only night from the stored models gives the night's own forecasts
    only = run_job(
        load_spec(
            path,
            ["input.path=s3://runner/nightly/day2.parquet", "forecast.from_models=latest"],
        )
    )
    forecasts = [
        pq.read_table(f"{str(out).removeprefix('s3://')}/forecasts.parquet", filesystem=direct)
        for out in (second.output, only.output)
    ]
    np.testing.assert_array_equal(forecasts[0]["y_hat"], forecasts[1]["y_hat"])


def test_wrong_credentials_exit_1_naming_the_bucket(write_job, tmp_path, monkeypatch):
    port = free_port()
    server = start_moto(port, auth=True)
    try:
        s3(port, *make_user(port)).create_dir("guarded")
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        path = write_job(output={"path": "s3://guarded/out"})
        result = CliRunner().invoke(main, ["run", str(path), "--no-report"])
        assert result.exit_code == 1, result.output
        assert "output.path: cannot write to s3://guarded/out" in result.output
        result = CliRunner().invoke(
            main, ["validate", str(path), "--set", "input.path=s3://guarded/in.parquet"]
        )
        assert result.exit_code == 1, result.output
        assert "input.path: cannot read s3://guarded/in.parquet" in result.output
    finally:
        server.terminate()
        server.wait(timeout=30)
