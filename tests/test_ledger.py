"""The nightly loop: a night's output path named by the date or run id, the previous
night found as 'latest', its forecasts scored against the actuals that arrived since
(ledger.parquet, the manifest's realised scores), and the report's page of nights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from cluster.job import run_job
from cluster.ledger import series_scores
from cluster.report.page import build_report
from cluster.spec import load_spec
from lstm_worker.data.place import Place
from lstm_worker.errors import SpecError
from lstm_worker.metrics import mase_scale
from tests.conftest import synthetic_frame

pytestmark = pytest.mark.cluster

FULL = synthetic_frame(n_series=4, length=90)
H = 6


def _night(root, frame, n_new=0):
    """The table as night ``n`` sees it: every series minus its last points."""
    cut = frame.groupby("unique_id").cumcount(ascending=False) >= 12 - n_new
    return frame[cut].reset_index(drop=True)


def _spec(root, night: int, **extra):
    table = root / f"night{night}.parquet"
    _night(root, FULL, 4 * (night - 1)).to_parquet(table, index=False)
    raw = {
        "name": "nightly",
        "input": {"path": str(table)},
        "model": {"lookback": 12, "hidden_size": 8},
        "train": {"epochs": 3, "warm_start": "latest"},
        "forecast": {"horizon": H},
        "ledger": {"previous": "latest", "jump": 1.5},
        "resources": {"series_per_task": 2},
        "output": {"path": str(root / "runs" / "{run_id}")},
    }
    for section, values in extra.items():
        raw[section] = {**raw.get(section, {}), **values}
    (root / "job.yaml").write_text(yaml.safe_dump(raw))
    return load_spec(root / "job.yaml")


@pytest.fixture(scope="module")
def nights(ray_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    first = run_job(_spec(root, 1)).output
    second = run_job(_spec(root, 2)).output
    return root, first, second


def test_night_one_runs_cold_and_scores_nothing(nights):
    _, first, _ = nights
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["warm_started_from"] is None and manifest["ledger_of"] is None
    assert "no finished run of 'nightly' yet" in manifest["links"]["train.warm_start"]
    assert manifest["output_template"].endswith("runs/{run_id}")
    assert first.name == manifest["run_id"] and not (first / "ledger.parquet").exists()


def test_night_two_warm_starts_from_and_scores_night_one(nights):
    _, first, second = nights
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["warm_started_from"] == str(first) == manifest["ledger_of"]
    metrics = pd.read_parquet(second / "metrics.parquet")
    assert (metrics["init"] == "warm").all()
    assert manifest["ledger"]["run"] == json.loads((first / "manifest.json").read_text())["run_id"]


def test_the_ledger_equals_the_scores_computed_by_hand(nights):
    _, first, second = nights
    forecasts = pd.read_parquet(first / "forecasts.parquet")
    backtest = pd.read_parquet(first / "backtest.parquet")
    ledger = pd.read_parquet(second / "ledger.parquet")
    truth = _night(None, FULL, 4)  # night two's table: four new points per series
    smapes, mases, promised = [], [], []
    for series_id, forecast in forecasts.groupby("unique_id"):
        series = truth[truth["unique_id"] == series_id]
        cutoff = forecast["cutoff"].iloc[0]
        new = series[series["ds"] > cutoff]
        assert len(new) == 4
        y, y_hat = new["y"].to_numpy(), forecast["y_hat"].to_numpy()[:4]
        scale = mase_scale(series[series["ds"] <= cutoff]["y"].to_numpy(), 24)
        smapes.append(np.mean(200 * np.abs(y - y_hat) / (np.abs(y) + np.abs(y_hat))))
        mases.append(np.mean(np.abs(y - y_hat)) / scale)
        bt = backtest[backtest["unique_id"] == series_id].iloc[:4]  # one window, steps 1-4
        bt_scale = mase_scale(series[series["ds"] <= bt["cutoff"].iloc[0]]["y"].to_numpy(), 24)
        promised.append(np.mean(np.abs(bt["y"] - bt["y_hat"])) / bt_scale)
        rows = ledger[ledger["unique_id"] == series_id]
        assert rows["step"].tolist() == [1, 2, 3, 4]
        np.testing.assert_allclose(rows["error"], y - y_hat)
        lo, hi = forecast["y_lo_80"].to_numpy()[:4], forecast["y_hi_80"].to_numpy()[:4]
        assert rows["hit_80"].tolist() == ((lo <= y) & (y <= hi)).tolist()
    realised = json.loads((second / "manifest.json").read_text())["ledger"]
    assert realised["series"] == 4 and realised["steps"] == 16
    np.testing.assert_allclose(realised["smape"], np.mean(smapes), rtol=1e-5)
    np.testing.assert_allclose(realised["mase"], np.mean(mases), rtol=1e-5)
    np.testing.assert_allclose(realised["backtest_mase"], np.mean(promised), rtol=1e-5)


def test_the_report_shows_the_nights_and_the_series_whose_error_jumped(nights, tmp_path):
    _, _, second = nights
    copy = Place(shutil.copytree(second, tmp_path / "second"))
    ledger = pd.read_parquet(copy / "ledger.parquet")  # two series' errors made to jump
    worse = ledger["unique_id"].isin(["s0", "s2"])
    ledger.loc[worse, "scaled_error"] *= 20
    ledger.to_parquet(copy / "ledger.parquet", index=False)
    jump = json.loads((copy / "manifest.json").read_text())["spec"]["ledger"]["jump"]
    per_series = series_scores(copy, "unique_id", jump)
    assert per_series["jumped"].tolist() == [True, True, False, False]
    page = build_report(copy).read_text()
    assert "The ledger: realised accuracy" in page
    assert f"<h3>Series whose error jumped (2: realised MASE over {jump:g} x promised)" in page
    listed = page.split("Series whose error jumped")[1]
    for series_id, row in per_series.iterrows():  # the jumped listed, with their ratio; no other
        assert (f"<tr><td>{series_id}</td><td class=n>{row['mase']:.3f}" in listed) == row[
            "jumped"
        ], series_id


def test_a_dated_output_path_and_an_unknown_field(nights, tmp_path):
    root, *_ = nights
    spec = _spec(root, 1, output={"path": str(tmp_path / "{date}")})
    dated = run_job(spec).output
    assert len(dated.name) == 10 and dated.name[4] == "-"
    with pytest.raises(SpecError, match=r"\{night\}"):
        run_job(_spec(root, 1, output={"path": str(tmp_path / "{night}")}))


def test_forecast_from_latest_without_a_run_is_refused(tmp_path):
    spec = _spec(tmp_path, 1, forecast={"from_models": "latest"})
    with pytest.raises(SpecError, match="no finished run of 'nightly'"):
        run_job(spec)


def test_the_summary_says_what_was_realised_and_promised(nights):
    from cluster.report.lines import summary_lines
    from cluster.report.summary import summarize

    _, first, second = nights
    line = summary_lines(summarize(second))[-1]
    assert line.startswith(f"ledger (run {first.name}'s forecasts, 4 series, 16 steps)")
    assert "its backtest promised" in line
    scores = json.loads((second / "manifest.json").read_text())["ledger"]
    covered = ", ".join(f"{level}%: {share:.0%}" for level, share in scores["coverage"].items())
    assert f"| intervals covered {covered} |" in line and "n/a" not in covered


def test_validate_says_where_tonight_goes_and_what_it_builds_on(nights):
    from click.testing import CliRunner

    from cluster.cli import main

    root, _, second = nights
    _spec(root, 2)  # rewrites job.yaml
    result = CliRunner().invoke(main, ["validate", str(root / "job.yaml")])
    assert result.exit_code == 0, result.output
    assert f"output.path: {root / 'runs'}/" in result.output
    assert f"train.warm_start: latest: {second}" in result.output
    assert f"ledger.previous: latest: {second}" in result.output
