"""The model store: written by every run, read back without pickle, forecast from, warm
started from; a store that does not fit makes its series start cold, with the reason."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker.config import ModelConfig
from lstm_worker.data.models import model_part, read_models
from lstm_worker.fit import load_model
from lstm_worker.model import LSTMForecaster
from lstm_worker.stacked import StackedLSTM
from tests.conftest import synthetic_frame

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def trained(ray_cluster, tmp_path_factory):
    """One training run on s0..s5 (two shards of three), its spec and its outputs."""
    root = tmp_path_factory.mktemp("store")
    frame = synthetic_frame(n_series=6, length=80)
    frame.to_parquet(root / "input.parquet", index=False)
    (root / "job.yaml").write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(root / "input.parquet")},
                "model": {"lookback": 12, "hidden_size": 8},
                "train": {"epochs": 3},
                "forecast": {"horizon": 6},
                "resources": {"series_per_task": 3},
                "output": {"path": str(root / "night1")},
            }
        )
    )
    spec = load_spec(root / "job.yaml")
    summary = run_job(spec)
    return {"root": root, "frame": frame, "out": summary.output}


def _job(trained, name: str, frame: pd.DataFrame | None = None, *overrides: str):
    root = trained["root"]
    path = root / f"{name}.parquet"
    (trained["frame"] if frame is None else frame).to_parquet(path, index=False)
    return load_spec(
        root / "job.yaml", [f"input.path={path}", f"output.path={root / name}", *overrides]
    )


def test_every_series_models_are_stored_per_shard_and_read_back_without_pickle(
    trained, monkeypatch
):
    def no_pickle(*args, **kwargs):
        raise AssertionError("the model store was unpickled")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    store = read_models(model_part(trained["out"], 0))
    assert sorted(store.series) == ["s0", "s1", "s2"]
    entry = store.series["s1"]
    metrics = pd.read_parquet(trained["out"] / "metrics.parquet").set_index("unique_id")
    assert entry.model == metrics.loc["s1", "model"]  # lstm, table + lstm or table
    assert entry.table_share == metrics.loc["s1", "table_share"]
    assert entry.n_points == 80 and set(entry.widths) == {80, 95}
    assert [m.window for m in entry.models[0]] == [0, -1]  # the backtest, then the refit
    assert model_part(trained["out"], 1).exists()


def test_a_stored_model_loads_back_as_a_plain_module_equal_to_the_stored_stack(trained):
    model, view = load_model(trained["out"], "s2")
    assert isinstance(model, LSTMForecaster) and not model.training
    store = read_models(model_part(trained["out"], 0))
    stored = next(m for m in store.series["s2"].models[0] if m.window == -1)
    assert view == stored.view
    cfg = ModelConfig(**store.settings[0]["model"])
    stack = StackedLSTM.from_params(
        cfg, {k: torch.from_numpy(v[None]) for k, v in stored.params.items()}
    )
    x = torch.randn(1, 4, 20, 2)  # (K, B, T, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x[0])[0], stack(x)[0][0], rtol=1e-5, atol=1e-6)


def test_forecast_only_gives_the_forecasts_of_the_run_that_stored_the_models_bitwise(trained):
    spec = _job(trained, "forecast_only", None, f"forecast.from_models={trained['out']}")
    summary = run_job(spec)
    again = pd.read_parquet(summary.output / "forecasts.parquet")
    first = pd.read_parquet(trained["out"] / "forecasts.parquet")
    assert {"y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"} <= set(first.columns)
    pd.testing.assert_frame_equal(again, first, check_exact=True)  # intervals included
    manifest = json.loads((trained["out"] / "manifest.json").read_text())
    assert set(manifest["interval_quantiles"]) == {"80", "95"}  # the table's pooled ones
    metrics = pd.read_parquet(summary.output / "metrics.parquet")
    stored = pd.read_parquet(trained["out"] / "metrics.parquet")["model"] + " (stored)"
    assert (metrics["model"] == stored).all() and (metrics["init"] == "stored").all()


def test_forecast_only_combines_at_the_stored_weight_as_the_run_that_stored_it(trained):
    mixed = run_job(_job(trained, "mixed", None, "forecast.lstm_weight=0.5")).output
    again = run_job(_job(trained, "mixed_again", None, f"forecast.from_models={mixed}"))
    forecasts = pd.read_parquet(again.output / "forecasts.parquet")
    stored = pd.read_parquet(mixed / "forecasts.parquet")
    pd.testing.assert_frame_equal(forecasts, stored, check_exact=True)
    assert (forecasts["y_hat"] != forecasts["y_hat_lstm"]).all()  # half of it statistical
    metrics = pd.read_parquet(again.output / "metrics.parquet")
    assert (metrics["lstm_weight"] == 0.5).all()


@pytest.mark.parametrize(("policy", "status"), [("baseline", "fallback"), ("skip", "failed")])
def test_forecast_only_reports_series_with_no_stored_model(trained, policy, status):
    frame = pd.concat(
        [trained["frame"], synthetic_frame(n_series=7, length=80).query("unique_id == 's6'")]
    )
    summary = run_job(
        _job(
            trained,
            f"forecast_new_{policy}",
            frame,
            f"forecast.from_models={trained['out']}",
            f"forecast.short_series={policy}",
        )
    )
    metrics = pd.read_parquet(summary.output / "metrics.parquet").set_index("unique_id")
    assert metrics.loc["s6", "status"] == status
    assert "no model of it stored" in metrics.loc["s6", "reason"]
    assert (metrics.drop(index="s6")["status"] == "ok").all()
    forecasts = pd.read_parquet(summary.output / "forecasts.parquet")
    assert ("s6" in set(forecasts["unique_id"])) == (status == "fallback")


def test_a_warm_start_reuses_the_stored_models_and_new_series_start_cold(trained):
    frame = synthetic_frame(n_series=7, length=80).query("unique_id != 's0'")  # s6 new
    summary = run_job(_job(trained, "warm", frame, f"train.warm_start={trained['out']}"))
    metrics = pd.read_parquet(summary.output / "metrics.parquet").set_index("unique_id")
    assert (metrics["status"] == "ok").all() and "s0" not in metrics.index
    assert metrics.loc["s6", "init"] == "cold"
    assert "no model of it stored" in metrics.loc["s6", "init_reason"]
    assert (metrics.drop(index="s6")["init"] == "warm").all()
    assert (metrics.drop(index="s6")["epochs"] <= 3).all()


def test_a_store_of_another_architecture_makes_every_series_start_cold(trained):
    summary = run_job(
        _job(trained, "wider", None, f"train.warm_start={trained['out']}", "model.hidden_size=16")
    )
    metrics = pd.read_parquet(summary.output / "metrics.parquet")
    assert (metrics["init"] == "cold").all() and (metrics["status"] == "ok").all()
    assert metrics["init_reason"].str.contains("model.hidden_size 8 -> 16").all()


def test_a_truncated_store_file_costs_its_series_the_warm_start_and_nothing_else(trained):
    broken = trained["root"] / "broken"
    shutil.copytree(trained["out"], broken)
    part = model_part(broken, 0)
    part.write_bytes(part.read_bytes()[: len(part.read_bytes()) // 2])
    summary = run_job(_job(trained, "after_broken", None, f"train.warm_start={broken}"))
    metrics = pd.read_parquet(summary.output / "metrics.parquet").set_index("unique_id")
    assert (metrics["status"] == "ok").all() and len(metrics) == 6
    cold = metrics.loc[["s0", "s1", "s2"]]
    assert (cold["init"] == "cold").all()
    assert cold["init_reason"].str.contains("not a readable model store file").all()
    assert (metrics.loc[["s3", "s4", "s5"], "init"] == "warm").all()
    assert np.isfinite(pd.read_parquet(summary.output / "forecasts.parquet")["y_hat"]).all()
