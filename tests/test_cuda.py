"""On a GPU, skipped where CUDA is absent: the stacked trainer forecasts on CUDA as on the
CPU, a model stored from a GPU run forecasts on a CPU, and a Ray task given a GPU runs on it.

    python -m pytest tests/test_cuda.py -W default     # on the GPU machine (bench/gpu.sh)
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lstm_worker import WorkerConfig
from lstm_worker.fit import forecast_many, forecast_stored
from lstm_worker.result import StoredModel
from lstm_worker.views import FittedView
from tests.conftest import synthetic_frame

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

CPU, CUDA = torch.device("cpu"), torch.device("cuda:0")
CFG = WorkerConfig(  # quarterly, h = 8: a 16-point series is trained; no validation tail, so
    model={"lookback": 12, "hidden_size": 8},  # each model keeps its last epoch on any device
    train={"epochs": 3, "val_size": 0},
    forecast={"horizon": 8},
    season_length=4,
    seasons=(4,),
)


def _mixed() -> list[np.ndarray]:
    """A 16-point, a 60-point and a 900-point quarterly series: padding, short windows."""
    rng = np.random.default_rng(0)
    out = []
    for n in (16, 60, 900):
        t = np.arange(n)
        out.append(100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 1, n))
    return out


def test_the_stacked_trainer_forecasts_on_cuda_as_on_the_cpu():
    series, seeds = _mixed(), [1, 2, 3]
    on_cpu = forecast_many(series, 8, CFG, seeds, CPU)
    on_gpu = forecast_many(series, 8, CFG, seeds, CUDA)
    np.testing.assert_array_equal(on_gpu.fit.epochs, on_cpu.fit.epochs)
    np.testing.assert_allclose(on_gpu.forecasts, on_cpu.forecasts, rtol=1e-3)


def test_a_model_stored_from_a_gpu_run_forecasts_on_a_cpu():
    series = _mixed()
    on_gpu = forecast_many(series, 8, CFG, [1, 2, 3], CUDA)
    stored = [
        StoredModel(-1, on_gpu.fit.model.model_params()[k], FittedView.of(view), 3)
        for k, view in enumerate(on_gpu.views)
    ]
    assert all(isinstance(v, np.ndarray) for m in stored for v in m.params.values())
    np.testing.assert_allclose(
        forecast_stored(series, stored, 8, CFG, CPU), on_gpu.forecasts, rtol=1e-4
    )


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")
def test_a_ray_task_given_a_gpu_runs_on_it(tmp_path):
    synthetic_frame(n_series=4, length=80).to_parquet(tmp_path / "input.parquet", index=False)
    spec = {
        "input": {"path": str(tmp_path / "input.parquet")},
        "model": {"lookback": 12, "hidden_size": 8},
        "train": {"epochs": 2},
        "forecast": {"horizon": 6},
        "resources": {"num_gpus": 1, "series_per_task": 2},
        "output": {"path": str(tmp_path / "out")},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "cluster.cli", "run", str(tmp_path / "job.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)  # its own Ray
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = pd.read_parquet(tmp_path / "out" / "metrics.parquet")
    assert (metrics["status"] == "ok").all()
    assert metrics["device"].str.startswith("cuda:0 (ray gpu ").all(), metrics["device"]
