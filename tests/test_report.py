"""``runner report`` on the outputs of one tiny real job: numbers, images, errors."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil

import matplotlib.image
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cluster.cli import main
from cluster.report.lines import weight_text
from cluster.report.page import build_report, series_plot
from cluster.report.plots import interval_levels, safe_name
from cluster.report.summary import summarize
from lstm_worker.errors import SpecError
from tests.conftest import TINY, merge, synthetic_frame

ODD = "<b>ü/x $a$</b>"  # html, unicode, a slash and mathtext in one id
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def finished(ray_cluster, tmp_path_factory):
    """One ``runner run``, shared by the module: 6 ok series (one with an odd id), 1 too short
    (a fallback).

    Module-scoped, so ``write_job`` (per test) is not used; its helpers are.
    """
    root = tmp_path_factory.mktemp("report")
    frame = pd.concat(
        [
            synthetic_frame(n_series=5),
            synthetic_frame(n_series=1, seed=1).assign(unique_id=ODD),
            synthetic_frame(n_series=1, length=10, seed=2).assign(unique_id="short"),
        ],
        ignore_index=True,
    )
    frame.to_parquet(root / "input.parquet", index=False)
    raw = merge(
        TINY,
        {"input": {"path": str(root / "input.parquet")}, "output": {"path": str(root / "out")}},
    )
    (root / "job.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["run", str(root / "job.yaml")])
    assert result.exit_code == 0, result.output
    return root / "out", result.output


@pytest.fixture
def copy(finished, tmp_path):
    """A private copy of the outputs, for tests that rebuild or alter them."""
    return shutil.copytree(finished[0], tmp_path / "out")


def _ok(out):
    metrics = pd.read_parquet(out / "metrics.parquet")
    return metrics, metrics[metrics["status"] == "ok"]


def test_run_ends_with_four_summary_lines_and_the_paths(finished):
    out, printed = finished
    _, ok = _ok(out)
    lines = printed.strip().splitlines()[-6:]
    assert lines[0].startswith("series: 6 ok, 0 skipped, 0 failed, 1 fallback in ")
    assert lines[0].endswith(" series/s)")
    weight = json.loads((out / "manifest.json").read_text())["lstm_weight"]
    assert lines[1] == (
        f"accuracy (backtest, mean): forecast sMAPE {ok['smape'].mean():.2f} "
        f"MASE {ok['mase'].mean():.3f} | seasonal naive sMAPE {ok['snaive_smape'].mean():.2f} "
        f"MASE {ok['snaive_mase'].mean():.3f} | it beat seasonal naive on "
        f"{(ok['mae'] < ok['snaive_mae']).mean():.0%} of series | {weight_text(weight)}"
    )
    covered = ", ".join(f"{level}%: {ok[f'coverage_{level}'].mean():.0%}" for level in (80, 95))
    assert lines[2] == f"intervals (backtest): covered {covered}"
    assert lines[3] == "devices: cpu on 1 node"
    assert lines[4] == f"outputs: {out}/" and lines[5] == f"report:  {out / 'report.html'}"


def test_report_numbers_match_metrics_parquet(finished):
    out, _ = finished
    _, ok = _ok(out)
    page = (out / "report.html").read_text()
    assert "<td>series ok</td><td class=n>6</td>" in page
    assert "<td>series fallback</td><td class=n>1</td>" in page
    for model, prefix in (("forecast", ""), ("naive", "naive_"), ("seasonal naive", "snaive_")):
        row = (
            f"<td>{model}</td><td class=n>{ok[prefix + 'smape'].mean():.2f}</td>"
            f"<td class=n>{ok[prefix + 'smape'].median():.2f}</td>"
            f"<td class=n>{ok[prefix + 'mase'].mean():.3f}</td>"
            f"<td class=n>{ok[prefix + 'mase'].median():.3f}</td><td class=n>6</td>"
        )
        assert row in page, model
    share = (ok["mae"] < ok["snaive_mae"]).mean()
    assert f"{share:.0%} of 6 series" in page
    assert f"best: MASE {ok['mase'].min():.3f}" in page
    assert f"worst: MASE {ok['mase'].max():.3f}" in page
    summary = summarize(out)
    assert summary.accuracy["forecast"].smape_mean == pytest.approx(ok["smape"].mean())
    assert summary.counts == {"ok": 6, "skipped": 0, "failed": 0, "fallback": 1}
    assert summary.wall_seconds == json.loads((out / "manifest.json").read_text())["wall_seconds"]
    for level in (80, 95):  # each interval level's coverage against its nominal level
        covered = ok[f"coverage_{level}"].mean()
        assert summary.coverage[level] == pytest.approx(covered)
        assert f"<td>{level}% interval covered</td><td>{covered:.0%} of backtest points" in page


def test_every_png_is_a_valid_image_and_embedded(finished):
    out, _ = finished
    files = sorted((out / "report").glob("*.png"))
    assert len(files) == 1 + 5  # the distribution; best, worst and 3 random of 6 ok series
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', (out / "report.html").read_text())
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(f.read_bytes() for f in files)
    for path in files:
        assert path.read_bytes().startswith(PNG_SIGNATURE), path
        height, width = matplotlib.image.imread(path).shape[:2]
        assert height > 100 and width > 100, path


def test_failures_table_lists_the_series_with_no_lstm_forecast_and_why(finished):
    out, _ = finished
    metrics, _ = _ok(out)
    reason = metrics.set_index("unique_id").at["short", "reason"]
    assert "fewer than the" in reason
    page = (out / "report.html").read_text()
    assert "<h2>Failures (1 series with no LSTM forecast)" in page
    assert f"<td>short</td><td>fallback</td><td>{html.escape(reason)}</td>" in page


def test_series_option_plots_the_chosen_series_with_a_safe_file_name(copy):
    result = CliRunner().invoke(
        main, ["report", str(copy), "--series", ODD, "--series", "short", "--random", "0"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {copy / 'report.html'}"
    name = safe_name(ODD)
    assert re.fullmatch(r"series_[A-Za-z0-9._-]+\.png", name)
    assert (copy / "report" / name).read_bytes().startswith(PNG_SIGNATURE)
    assert (copy / "report" / "series_short.png").is_file()  # a fallback: no backtest
    page = (copy / "report.html").read_text()
    assert html.escape(ODD) in page and ODD not in page


def test_unknown_series_exits_2_naming_it_and_the_directory(copy):
    result = CliRunner().invoke(main, ["report", str(copy), "--series", "nope"])
    assert result.exit_code == 2
    assert "--series 'nope': not in" in result.output and str(copy) in result.output
    with pytest.raises(SpecError, match="'nope'"):
        build_report(copy, series=["nope"])


def test_a_directory_without_outputs_exits_1(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}: not a job's output directory" in result.output
    assert "manifest.json" in result.output


def test_unreadable_input_draws_without_history_and_says_so(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["spec"]["input"]["path"] = str(copy / "gone.parquet")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    page = build_report(copy, n_random=0).read_text()
    assert "history not shown: the input" in page and "gone.parquet" in page
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in (copy / "report").glob("*.png"))


def test_interval_columns_are_drawn_when_present(copy):
    forecasts = pd.read_parquet(copy / "forecasts.parquet")
    for level, width in (("80", 1.0), ("95", 2.0)):
        forecasts[f"y_lo_{level}"] = forecasts["y_hat"] - width
        forecasts[f"y_hi_{level}"] = forecasts["y_hat"] + width
    forecasts.to_parquet(copy / "forecasts.parquet", index=False)
    assert interval_levels(forecasts) == ["95", "80"]
    build_report(copy, n_random=1)
    assert len(list((copy / "report").glob("series_*.png"))) == 3
    series_id = forecasts["unique_id"].iloc[0]
    rows = forecasts[forecasts["unique_id"] == series_id]
    bands = {
        c.get_label(): c.get_paths()[0].vertices[:, 1]
        for c in series_plot(copy, series_id).axes[0].collections
        if c.get_label().endswith("% interval")
    }
    assert set(bands) == {"95% interval", "80% interval"}  # each level's band, as written
    for level, band in (("95", bands["95% interval"]), ("80", bands["80% interval"])):
        assert band.min() == pytest.approx(rows[f"y_lo_{level}"].min())
        assert band.max() == pytest.approx(rows[f"y_hi_{level}"].max())


def test_series_that_never_trained_add_no_device_to_the_summary(finished):
    from dataclasses import replace

    from cluster.report.lines import devices_text
    from cluster.report.summary import load_outputs, summary_of

    outputs = load_outputs(finished[0])
    metrics = outputs.metrics.copy()
    metrics.loc[metrics.index[0], ["status", "device"]] = ["skipped", ""]
    summary = summary_of(replace(outputs, metrics=metrics))
    assert devices_text(summary) == "cpu on 1 node"


def test_a_forecast_only_report_shows_what_the_stored_models_promised(finished, tmp_path):
    out, _ = finished
    spec = out.parent / "job.yaml"
    result = CliRunner().invoke(
        main,
        ["forecast", str(spec), "--models", str(out), "--set", f"output.path={tmp_path / 'fo'}"],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "fo" / "report.html").read_text()
    assert "a forecast-only run: every series forecast by the models run " in page
    assert "Accuracy the stored models promised on their backtest (run " in page
    assert ">n/a<" not in page and "no MASE values" not in page  # no empty table or box
    _, ok = _ok(out)  # the stored run's accuracy, as its own report gives it
    assert f"<td>forecast</td><td class=n>{ok['smape'].mean():.2f}</td>" in page
    assert "freq h," in page and "&lt;Hour&gt;" not in page
    # Without a report, the same summary lines (test_tracking: the same numbers logged).
    bare = CliRunner().invoke(
        main,
        [
            *("forecast", str(spec), "--models", str(out), "--no-report"),
            *("--set", f"output.path={tmp_path / 'bare'}"),
        ],
    )
    assert bare.exit_code == 0, bare.output
    lines = [_summary_lines(r.output) for r in (result, bare)]
    assert lines[0] == lines[1] and "n/a" not in " ".join(lines[0])
    assert f"forecast sMAPE {ok['smape'].mean():.2f}" in lines[0][0]


def _summary_lines(printed: str) -> list[str]:
    """What ``runner run`` printed after its counts and timing line, up to the outputs."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("accuracy ("))
    return lines[start : next(i for i, line in enumerate(lines) if line.startswith("outputs:"))]
