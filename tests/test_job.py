"""Whole jobs on a real local Ray: outputs, reproducibility, placement, guards."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import ray
from click.testing import CliRunner

from cluster.cli import main
from cluster.job import run_job
from cluster.resolve import worker_config
from cluster.spec import load_spec
from lstm_worker import forecast_batch
from lstm_worker.config import LSTM_WEIGHTS, TABLE_SHARES
from lstm_worker.data.table import read_series, seasons_from_freq
from lstm_worker.errors import OutputError, ResourceError
from lstm_worker.smoothing import statistical_forecast
from tests.conftest import synthetic_frame


def test_run_writes_one_row_per_series_and_step(ray_cluster, write_job):
    spec = load_spec(write_job())
    summary = run_job(spec)
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    metrics = pd.read_parquet(summary.output / "metrics.parquet")
    backtest = pd.read_parquet(summary.output / "backtest.parquet")
    assert summary.counts == {"ok": 5}
    assert len(forecasts) == 5 * 6 and forecasts.groupby("unique_id").size().eq(6).all()
    assert np.isfinite(forecasts["y_hat"]).all() and list(forecasts.columns) == [
        "unique_id",
        "ds",
        "y_hat",
        "y_lo_80",
        "y_hi_80",
        "y_lo_95",
        "y_hi_95",
        "y_hat_lstm",
        "y_hat_table",
        "y_hat_series",
        "cutoff",
    ]
    assert (forecasts["y_lo_95"] <= forecasts["y_lo_80"]).all()
    assert (forecasts["y_lo_80"] <= forecasts["y_hat"]).all()
    assert (forecasts["y_hat"] <= forecasts["y_hi_80"]).all()
    # forecasts start one hour after each series' last point
    assert (
        forecasts.groupby("unique_id")["ds"].min()
        == pd.Timestamp("2024-01-01") + pd.Timedelta(hours=60)
    ).all()
    assert len(metrics) == 5 and metrics["unique_id"].is_unique
    for column in ("mae", "rmse", "smape", "mase", "naive_mase", "snaive_mase", "snaive_smape"):
        assert metrics[column].notna().all(), column
    assert len(backtest) == 5 * 6
    manifest = json.loads((summary.output / "manifest.json").read_text())
    assert manifest["counts"] == {"ok": 5} and manifest["versions"]["torch"]
    assert manifest["spec"]["train"]["epochs"] == 2 and manifest["season_length"] == 24
    # the tasks' own seconds, summed: no more than the cores could run while they ran
    cores = ray.cluster_resources()["CPU"]
    timings = manifest["timings"]
    phases_held = timings["compute_seconds"] + timings["table_seconds"]
    assert 0 < manifest["task_seconds"] <= phases_held * cores
    phases = ["plan", "ray_start", "table", "compute", "ray_stop", "compact"]
    assert list(manifest["timings"]) == [f"{phase}_seconds" for phase in phases]


def test_the_share_and_weight_are_the_best_on_the_backtest_and_each_forecast_combines_at_them(
    ray_cluster, write_job
):
    summary = run_job(load_spec(write_job()))
    manifest = json.loads((summary.output / "manifest.json").read_text())
    scores, weight = manifest["blend_scores"], manifest["lstm_weight"]
    share = manifest["table_share"]
    assert len(scores) == len(TABLE_SHARES) * len(LSTM_WEIGHTS) and manifest["job_chosen"]
    # the share is the best LSTM forecast alone, the weight the best combination with it,
    # or each the even mix where the best is no clear gain on it (passes.choose_blend)
    alone = {a: scores[f"{a:.4g}/1"] for a in TABLE_SHARES}
    assert share in (min(alone, key=alone.__getitem__), 0.5)
    at_share = {w: scores[f"{share:.4g}/{w:.4g}"] for w in LSTM_WEIGHTS}
    assert weight in (min(at_share, key=at_share.__getitem__), 0.5)
    assert manifest["tasks"] == 2 * manifest["shards"]  # the search pass, then the choice
    metrics = pd.read_parquet(summary.output / "metrics.parquet")
    assert (metrics["lstm_weight"] == weight).all()
    assert (metrics["table_share"] == share).all() and manifest["table_model"]["trained"]
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    history = synthetic_frame()
    for series_id, rows in forecasts.groupby("unique_id"):
        values = history.loc[history["unique_id"] == series_id, "y"].to_numpy()
        statistical = statistical_forecast([values], 6, 24)[0]
        expected = weight * rows["y_hat_lstm"].to_numpy() + (1 - weight) * statistical
        np.testing.assert_allclose(rows["y_hat"], expected, rtol=1e-12)


def test_a_fixed_share_and_lstm_weight_without_intervals_are_one_pass(ray_cluster, write_job):
    # Intervals take a second pass (their quantiles are pooled over the whole table).
    fixed = write_job(
        forecast={"horizon": 6, "lstm_weight": 1.0, "levels": []}, table={"share": 0.0}
    )
    summary = run_job(load_spec(fixed))
    manifest = json.loads((summary.output / "manifest.json").read_text())
    assert manifest["tasks"] == manifest["shards"] and manifest["blend_scores"] == {}
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    np.testing.assert_array_equal(forecasts["y_hat"], forecasts["y_hat_lstm"])


def test_ray_output_equals_in_process_output_and_reruns_are_identical(ray_cluster, write_job):
    alone = {"enabled": False}  # each series' LSTM alone: what forecast_batch forecasts
    spec = load_spec(write_job(forecast={"horizon": 6, "lstm_weight": 1.0}, table=alone))
    first = pd.read_parquet(run_job(spec).output / "forecasts.parquet")
    table = read_series(spec.input)
    local = forecast_batch(
        table.ids, table.values, worker_config(spec, seasons_from_freq(table.freq)), num_threads=1
    )
    np.testing.assert_array_equal(first["y_hat"], np.concatenate([r.forecast for r in local]))
    again = pd.read_parquet(run_job(spec).output / "forecasts.parquet")
    pd.testing.assert_frame_equal(first, again, check_exact=True)


def test_fractional_gpu_tasks_record_the_gpu_ray_assigned(ray_cluster, write_job):
    spec = load_spec(write_job(), ["resources.num_gpus=0.5", "resources.series_per_task=1"])
    metrics = pd.read_parquet(run_job(spec).output / "metrics.parquet")
    assert set(metrics["gpu_id"]) <= {"0", "1"} and metrics["gpu_id"].notna().all()
    assert metrics["device"].str.contains("ray gpu").all()


def test_impossible_resources_fail_fast(ray_cluster, write_job):
    spec = load_spec(write_job(), ["resources.num_gpus=3"])
    started = time.monotonic()
    with pytest.raises(ResourceError, match="num_gpus=3"):
        run_job(spec)
    assert time.monotonic() - started < 10


def test_output_of_another_job_is_not_mixed_in(ray_cluster, write_job):
    path = write_job()
    run_job(load_spec(path))
    with pytest.raises(OutputError, match="different job"):
        run_job(load_spec(path, ["train.epochs=1"]))
    run_job(load_spec(path, ["train.epochs=1"]), overwrite=True)


def test_cli_validate_and_run(ray_cluster, write_job):
    path = write_job()
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "5 series" in result.output and "season_length 24" in result.output
    assert "model.lookback 8" in result.output
    result = CliRunner().invoke(main, ["run", str(path), "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    assert "5 ok" in result.output


def test_cli_bad_table_exits_1_naming_the_column(ray_cluster, write_job):
    path = write_job(synthetic_frame().drop(columns="y"))
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 1 and "'y' (input.target_col)" in result.output


def test_a_relative_output_path_is_resolved_before_tasks_see_it(
    ray_cluster, write_job, tmp_path, monkeypatch
):
    spec = load_spec(write_job(), ["output.path=rel/out"])
    monkeypatch.chdir(tmp_path)  # the driver's directory; a worker's may differ on a cluster
    summary = run_job(spec)
    assert summary.output == tmp_path / "rel" / "out"
    assert len(list((tmp_path / "rel" / "out" / "parts" / "metrics").glob("*.parquet"))) == 2
