"""MLflow tracking against a real tracking server on loopback (SQLite in tmp): a job logs
one run that reads back whole; a server that is down fails nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cluster.cli import main
from tests.objectstore import free_port

# the extra's own test (imported where used: MLflow takes a second to import, in each
# worker's collection)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs mlflow")


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """``mlflow server`` on a free loopback port, its store and artifacts in tmp."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    log = (root / "server.log").open("w")
    # Without MLflow's job execution (GenAI evaluation jobs, which runs do not use): it
    # starts a job runner and a pool of huey consumers, each importing MLflow, that took
    # both cores for the first ~20 s of the server's life, the job under test with them.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()}")
            time.sleep(0.5)
    yield uri
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _run(write_job, uri: str) -> tuple[str, str]:
    path = write_job(track={"mlflow_uri": uri, "experiment": "nightly"})
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 0, result.output
    return result.output, str(path.parent / "out")


def test_a_job_logs_one_run_with_its_spec_scores_counts_and_artifacts(
    ray_cluster, write_job, tracking_server
):
    import mlflow

    printed, out = _run(write_job, tracking_server)
    manifest = json.loads(Path(out, "manifest.json").read_text())
    assert "tracking: MLflow run " in printed and "in experiment 'nightly'" in printed
    client = mlflow.MlflowClient(tracking_uri=tracking_server)
    experiment = client.get_experiment_by_name("nightly")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["runner.run_id"] == manifest["run_id"]
    assert run.data.tags["runner.output"] == out
    params = run.data.params
    assert params["forecast.horizon"] == "6" and params["train.epochs"] == "2"
    assert params["resolved.season_length"] == "24"
    assert float(params["resolved.lstm_weight"]) == manifest["lstm_weight"]
    metrics = run.data.metrics
    ok = pd.read_parquet(f"{out}/metrics.parquet").query("status == 'ok'")
    assert metrics["forecast_smape_mean"] == pytest.approx(ok["smape"].mean())
    assert metrics["series_ok"] == 5 and metrics["wall_seconds"] == manifest["wall_seconds"]
    assert metrics["lstm_weight"] == manifest["lstm_weight"] and "compute_seconds" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "report.html"} <= artifacts
    assert run.info.status == "FINISHED" and manifest["tracking"] in printed


def test_a_server_that_is_down_fails_nothing_and_the_summary_says_so(ray_cluster, write_job):
    started = time.monotonic()
    printed, out = _run(write_job, f"http://127.0.0.1:{free_port()}")  # nothing listens
    assert "tracking failed: " in printed
    assert time.monotonic() - started < 120  # no minutes of retries
    forecasts = pd.read_parquet(f"{out}/forecasts.parquet")
    assert forecasts.groupby("unique_id").size().eq(6).all() and len(forecasts) == 5 * 6
    manifest = json.loads(Path(out, "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["tracking"].startswith("tracking failed")


def test_a_forecast_only_night_logs_the_same_numbers_with_and_without_a_report(
    ray_cluster, write_job, tracking_server, tmp_path
):
    import mlflow

    _, stored = _run(write_job, tracking_server)
    spec = str(Path(stored).parent / "job.yaml")
    for name, flags in (("with", []), ("without", ["--no-report"])):
        argv = ["forecast", spec, "--models", stored, *flags]
        argv += ["--set", f"output.path={tmp_path / name}", "--set", "track.experiment=fo"]
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=tracking_server)
    runs = client.search_runs([client.get_experiment_by_name("fo").experiment_id])
    by_output = {Path(r.data.tags["runner.output"]).name: r.data.metrics for r in runs}
    assert sorted(by_output) == ["with", "without"]
    logged = [
        {k: v for k, v in by_output[name].items() if "seconds" not in k and "per_second" not in k}
        for name in ("with", "without")
    ]
    ok = pd.read_parquet(f"{stored}/metrics.parquet").query("status == 'ok'")
    assert logged[0] == logged[1] and logged[0]["forecast_mase_mean"] == ok["mase"].mean()
