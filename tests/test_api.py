"""From Python: the README's example runs end to end on real Ray and gives the forecasts
the CLI gives for the same spec; a Job is a spec that fails as YAML fails."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from cluster import Job, SpecError, forecast
from cluster.cli import main
from tests.conftest import synthetic_frame

ROOT = Path(__file__).resolve().parents[1]


def _readme_python() -> str:
    """The README's "From Python" example, as it is printed there."""
    section = (ROOT / "README.md").read_text().split("## From Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README.md: no python block under ## From Python"
    return match.group(1)


def test_the_readmes_example_gives_the_clis_forecasts(ray_cluster, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(_readme_python(), "README.md", "exec"), names)  # the README's own code
    result = names["result"]
    assert result.counts == {"ok": 24, "skipped": 0, "failed": 0}
    assert set(result.metrics["status"]) == {"ok"} and len(result.backtest)
    assert names["figure"].axes and (tmp_path / "runs/python/report.html").exists()
    mine = yaml.safe_load((tmp_path / "jobs/mine.yaml").read_text())
    assert mine["train"]["epochs"] == 5 and mine["output"]["path"] == "runs/example"  # as given
    cli = CliRunner().invoke(
        main,
        [
            "run",
            "jobs/mine.yaml",
            "--set",
            "output.path=runs/cli",
            "--set",
            "input.path=examples/example.parquet",
            "--no-report",
        ],
    )
    assert cli.exit_code == 0, cli.output
    from_cli = pd.read_parquet(tmp_path / "runs/cli/forecasts.parquet")
    ours = result.forecasts
    np.testing.assert_array_equal(ours["y_hat"], from_cli["y_hat"])
    assert (ours["unique_id"] == from_cli["unique_id"]).all()
    assert (pd.to_datetime(ours["ds"]) == pd.to_datetime(from_cli["ds"])).all()


def test_forecast_takes_a_frame_the_horizon_and_any_section(ray_cluster, tmp_path):
    frame = synthetic_frame(n_series=3, length=80)
    small = {"model": {"lookback": 12, "hidden_size": 8}, "train": {"epochs": 2}}
    result = forecast(frame, horizon=6, output=tmp_path / "out", **small)
    assert result.counts["ok"] == 3 and result.forecasts.groupby("unique_id").size().eq(6).all()
    assert result.manifest["spec"]["train"]["epochs"] == 2
    again = forecast(frame, horizon=6, output=tmp_path / "out", **small)  # the same frame:
    assert again.manifest["shards_resumed"] == again.manifest["shards"]  # it resumes
    model, view = result.load_model("s1")
    assert type(model).__name__ == "LSTMForecaster" and not model.training and view.scale > 0
    table = pa.Table.from_pandas(frame, preserve_index=False)  # an Arrow table works as well
    stored = Job(small, forecast={"horizon": 6}).forecast(table, models=result.output)
    pd.testing.assert_frame_equal(
        stored.forecasts, result.forecasts, check_exact=True
    )  # no training, bitwise
    assert (stored.metrics["init"] == "stored").all()


def test_a_bad_field_raises_the_clis_spec_error_naming_it():
    with pytest.raises(SpecError, match=r"train\.epochz: unknown key"):
        Job(train={"epochz": 3})
    with pytest.raises(SpecError, match=r"forecast\.horizon"):
        Job({"forecast": {"horizon": 0}})
    job = Job({"forecast": {"horizon": 6}}).set("model.hidden_size", 16)
    assert job.to_dict() == {"forecast": {"horizon": 6}, "model": {"hidden_size": 16}}
    with pytest.raises(SpecError, match=r"model\.hidden_size"):
        job.set("model.hidden_size", -1)


def test_mlflow_is_an_extra_a_plain_install_does_not_pull():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("mlflow") for d in project["dependencies"])
    assert any(d.startswith("mlflow") for d in project["optional-dependencies"]["mlflow"])
