"""Bad input: a problem of the job stops it before any work, naming the culprit (exit 2
for the spec or command line, 1 for data); a problem of one series is that series' row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cluster.cli import main
from cluster.resolve import worker_config
from cluster.spec import load_spec
from lstm_worker import forecast_batch
from lstm_worker.data.table import read_series
from tests.conftest import TINY, merge, synthetic_frame

# --- job level: one case per row, through `runner run`, as a user meets it -----------------


def _spec_missing(tmp_path, write_job):
    return [str(tmp_path / "nope.yaml")], 2, ["nope.yaml", "not found"]


def _not_yaml(tmp_path, write_job):
    (tmp_path / "bad.yaml").write_text("input: [unclosed\n")
    return [str(tmp_path / "bad.yaml")], 2, ["bad.yaml", "not valid YAML"]


def _override(setting, code, *culprits):
    def case(tmp_path, write_job):
        path = write_job()
        where = str(path) if code == 2 else "input.parquet"  # the spec, or the data
        return [str(path), "--set", setting], code, [where, *culprits]

    return case


def _bad_command_line(tmp_path, write_job):
    return [str(write_job()), "--set", "novalue"], 2, ["--set 'novalue'", "KEY=VALUE"]


def _table(frame, *culprits):
    def case(tmp_path, write_job):
        return [str(write_job(frame))], 1, ["input.parquet", *culprits]

    return case


def _input_missing(tmp_path, write_job):
    path = write_job()
    return (
        [str(path), "--set", f"input.path={tmp_path}/gone.parquet"],
        1,
        ["input.path", "gone.parquet", "does not exist"],
    )


def _not_parquet(tmp_path, write_job):
    path = write_job()
    (tmp_path / "input.parquet").write_text("unique_id,ds,y\ns0,2024-01-01,1.0\n")
    return [str(path)], 1, ["input.parquet", "not a readable Parquet"]


def _output_under_a_file(tmp_path, write_job):
    path = write_job()
    (tmp_path / "a-file").write_text("not a directory")
    return (
        [str(path), "--set", f"output.path={tmp_path}/a-file/out"],
        1,
        ["output.path", "a-file", "cannot write"],
    )


def _output_of_another_job(tmp_path, write_job):
    path = write_job()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text(
        json.dumps({"spec_digest": "0123456789abcdef", "input_fingerprint": "fedcba9876543210"})
    )
    return [str(path)], 1, ["output.path", "different job", "--overwrite"]


def _output_inside_input(tmp_path, write_job):
    path = write_job()
    (tmp_path / "data").mkdir()
    synthetic_frame().to_parquet(tmp_path / "data" / "part-0.parquet", index=False)
    return (
        [
            str(path),
            "--set",
            f"input.path={tmp_path}/data",
            "--set",
            f"output.path={tmp_path}/data/out",
        ],
        1,
        ["output.path", "inside input.path"],
    )


_EMPTY = synthetic_frame().iloc[:0]
_WHEN_IS_TEXT = synthetic_frame().astype({"ds": str})
_Y_IS_TEXT = synthetic_frame().astype({"y": str})
_ALL_DUPLICATED = pd.concat([synthetic_frame(2), synthetic_frame(2)])

JOB_CASES = {
    "spec file missing": _spec_missing,
    "spec not YAML": _not_yaml,
    "unknown key": _override("train.epochz=3", 2, "train.epochz: unknown key"),
    "wrong type": _override("resources.num_gpus=abc", 2, "resources.num_gpus", "'abc'"),
    "horizon 0": _override("forecast.horizon=0", 2, "forecast.horizon"),
    "negative epochs": _override("train.epochs=-1", 2, "train.epochs"),
    "unknown missing policy": _override("input.missing=guess", 2, "input.missing"),
    "failed fraction above 1": _override(
        "output.max_failed_fraction=1.5", 2, "output.max_failed_fraction"
    ),
    "bad command line": _bad_command_line,
    "holdout longer than any series, short ones skipped": _override(
        "forecast={holdout: 500, short_series: skip}", 1, "forecast.holdout", "skip"
    ),
    "input path missing": _input_missing,
    "input not Parquet": _not_parquet,
    "empty table": _table(_EMPTY, "no rows"),
    "missing columns": _table(
        synthetic_frame().drop(columns=["unique_id", "y"]),
        "'unique_id' (input.id_col)",
        "'y' (input.target_col)",
    ),
    "non-numeric target": _table(_Y_IS_TEXT, "target column 'y' must be numeric"),
    "time not a timestamp": _table(_WHEN_IS_TEXT, "time column 'ds' must be a timestamp"),
    "every series unusable": _table(_ALL_DUPLICATED, "every one of the 2 series", "duplicate"),
    "output not writable": _output_under_a_file,
    "output holds another job": _output_of_another_job,
    "output inside the input": _output_inside_input,
}


@pytest.mark.parametrize("case", JOB_CASES.values(), ids=JOB_CASES.keys())
def test_a_bad_job_stops_before_any_work_naming_the_culprit(case, tmp_path, write_job):
    argv, code, culprits = case(tmp_path, write_job)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["run", *argv, "--no-report"])
    assert result.exit_code == code, result.output
    assert result.output.startswith("error: "), result.output
    for culprit in culprits:
        assert culprit in result.output, (culprit, result.output)
    after = {
        p: p.stat().st_mtime_ns
        for p in tmp_path.rglob("*")
        if p.is_file() and "prepared" not in p.parts  # the input's sorted copy, kept for a rerun
    }
    assert after == before  # nothing ran: no file written or touched, wherever the output is


# --- series level: one job over a table with every kind of dirt, one test per kind ---------

UNICODE_ID = "ünïcødé-序列-😀"
CLEAN = ["clean_a", "clean_b", UNICODE_ID]


def _series(uid: object, length: int = 60, seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    return synthetic_frame(1, length, seed).assign(unique_id=uid, y=lambda f: f["y"] * scale)


def dirty_frame(ids=lambda name: name) -> pd.DataFrame:
    """One series per kind of dirt, plus clean ones; rows shuffled."""
    dup = _series("dup", seed=3)
    nan = _series("nan", seed=4)
    nan.loc[[5, 20, 21], "y"] = [np.nan, np.inf, -np.inf]
    offgrid = _series("offgrid", seed=5)
    offgrid.loc[30, "ds"] += pd.Timedelta(minutes=30)
    poison = _series("poison", seed=6)
    poison["y"] = np.where(np.arange(60) % 2, 1.7e308, -1.7e308)  # its mean overflows
    parts = [
        _series("clean_a", seed=1),
        _series("clean_b", seed=2),
        _series(UNICODE_ID, seed=7),
        pd.concat([dup, dup.iloc[[10]].assign(y=99.0)]),
        nan,
        _series("gap", seed=8).drop(index=range(30, 35)),
        offgrid,
        _series("short", length=20, seed=9),
        _series("tiny", length=1, seed=10),
        _series("const").assign(y=5.0),
        _series("zero").assign(y=0.0),
        _series("huge", seed=11, scale=1e12),
        _series("allnan").assign(y=np.nan),
        poison,
    ]
    frame = pd.concat(parts, ignore_index=True)
    frame["unique_id"] = frame["unique_id"].map(ids)
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _run_dirty(root, ids, not_forecast=(), **sections):
    root.mkdir()
    dirty_frame(ids).to_parquet(root / "input.parquet", index=False)
    raw = merge(
        TINY,
        {
            "input": {"path": str(root / "input.parquet")},
            "output": {"path": str(root / "out")},
            "resources": {"series_per_task": 4},
        },
    )
    raw = merge(raw, sections)
    (root / "job.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["run", str(root / "job.yaml"), "--no-report"])
    assert result.exit_code == 0, result.output
    out = root / "out"
    metrics = pd.read_parquet(out / "metrics.parquet")
    return {
        "spec": load_spec(root / "job.yaml"),
        "metrics": metrics.set_index("unique_id"),
        "forecasts": pd.read_parquet(out / "forecasts.parquet"),
        "manifest": json.loads((out / "manifest.json").read_text()),
        "ids": ids,
        "rows": len(metrics),
        "not_forecast": not_forecast,
    }


@pytest.fixture(scope="module")
def dirty(ray_cluster, tmp_path_factory):
    """The default policies (fill_linear, duplicates skip, short series baseline), string ids."""
    return _run_dirty(tmp_path_factory.mktemp("dirty") / "default", ids=lambda name: name)


_NAMES = list(dirty_frame()["unique_id"].drop_duplicates().sort_values())


@pytest.fixture(scope="module")
def strict(ray_cluster, tmp_path_factory):
    """The other policies (missing skip, duplicates mean, short series snaive), integer ids."""
    return _run_dirty(
        tmp_path_factory.mktemp("dirty") / "strict",
        ids=_NAMES.index,
        not_forecast=("gap",),
        input={"missing": "skip", "duplicates": "mean"},
        forecast={"short_series": "snaive"},
    )


def _row(run, name):
    return run["metrics"].loc[run["ids"](name)]


def _assert_others_forecast(run, *names):
    """Every series but ``names`` that the run's policies forecast still has its forecast."""
    per_series = run["forecasts"].groupby("unique_id").size()
    horizon = run["spec"].forecast.horizon
    for name in [*CLEAN, "gap", "const", "zero", "huge"]:
        if name not in (*names, *run["not_forecast"]):
            assert per_series.get(run["ids"](name)) == horizon, name
    assert np.isfinite(run["forecasts"]["y_hat"]).all()
    assert run["rows"] == len(_NAMES) and run["metrics"].index.is_unique


def test_every_series_appears_once_and_statuses_are_known(dirty, strict):
    for run in (dirty, strict):
        assert set(run["metrics"]["status"]) <= {"ok", "fallback", "skipped", "failed"}
        assert run["metrics"]["attempts"].notna().all()
        _assert_others_forecast(run)


def test_duplicate_timestamps_skip_the_series_naming_the_time(dirty):
    row = _row(dirty, "dup")
    assert row["status"] == "skipped" and "2024-01-01 10:00:00" in row["reason"]
    assert "input.duplicates" in row["reason"] and row["attempts"] == 0
    _assert_others_forecast(dirty, "dup")


def test_duplicate_timestamps_averaged_when_the_spec_says_mean(strict):
    row = _row(strict, "dup")
    assert row["status"] == "ok" and row["n_points"] == 60
    assert strict["manifest"]["input_cleaning"]["rows_merged"] == 1


def test_unsorted_rows_are_sorted_not_refused(dirty):
    spec = dirty["spec"]
    table = read_series(spec.input)  # the file's rows are shuffled
    assert all(
        np.all(np.diff(t) > np.timedelta64(0))
        for t, n in zip(table.times, table.notes, strict=True)
        if not n
    )
    alone = forecast_batch(
        ["clean_a"],
        [table.values[table.ids.index("clean_a")]],
        worker_config(spec, (24,)),
        num_threads=1,
    )[0]
    got = dirty["forecasts"].query("unique_id == 'clean_a'").sort_values("ds")
    np.testing.assert_array_equal(got["y_hat"], alone.forecast)


def test_nan_and_inf_values_are_filled_and_counted(dirty):
    row = _row(dirty, "nan")
    assert row["status"] == "ok" and row["filled"] == 3
    _assert_others_forecast(dirty)


def test_missing_time_steps_are_filled_and_counted(dirty):
    row = _row(dirty, "gap")
    assert row["status"] == "ok" and row["filled"] == 5 and row["n_points"] == 60
    assert dirty["manifest"]["input_cleaning"]["steps_inserted"] == 5
    assert dirty["manifest"]["input_cleaning"]["values_filled"] == 3


def test_missing_values_skip_the_series_when_the_spec_says_skip(strict):
    for name, counts in (
        ("nan", "3 NaN/inf values and 0 missing"),
        ("gap", "0 NaN/inf values and 5 missing"),
    ):
        row = _row(strict, name)
        assert row["status"] == "skipped" and counts in row["reason"], row["reason"]
        assert "input.missing is skip" in row["reason"]
    _assert_others_forecast(strict, "nan", "gap")


def test_a_timestamp_off_the_grid_skips_the_series_naming_it(dirty):
    row = _row(dirty, "offgrid")
    assert row["status"] == "skipped" and "2024-01-02 06:30:00" in row["reason"]


def test_a_series_without_a_finite_value_is_skipped(dirty):
    assert _row(dirty, "allnan")["status"] == "skipped"
    assert "no finite value" in _row(dirty, "allnan")["reason"]


def test_short_series_fall_back_to_the_best_baseline_their_history_allows_by_default(dirty):
    short, tiny = _row(dirty, "short"), _row(dirty, "tiny")
    assert short["status"] == tiny["status"] == "fallback" and short["attempts"] == 0
    assert "fewer than the 22 a series is trained from" in short["reason"]
    assert short["model"] == "statistical" and "damped trend and Theta" in short["reason"]
    assert tiny["model"] == "naive" and "no metrics" in tiny["reason"]
    assert np.isfinite(short["smape"]) and pd.isna(tiny["smape"])
    per_series = dirty["forecasts"].groupby("unique_id").size()
    assert per_series["short"] == per_series["tiny"] == 6
    tiny_rows = dirty["forecasts"].query("unique_id == 'tiny'")
    assert tiny_rows["y_hat_lstm"].isna().all()
    _assert_others_forecast(dirty)


def test_short_series_fall_back_to_seasonal_naive_when_the_spec_says_so(strict):
    short, tiny = _row(strict, "short"), _row(strict, "tiny")
    assert short["status"] == tiny["status"] == "fallback"
    assert short["model"] == tiny["model"] == "snaive"
    assert np.isfinite(short["smape"]) and short["smape"] == short["snaive_smape"]
    assert pd.isna(tiny["smape"]) and "no metrics" in tiny["reason"]
    per_series = strict["forecasts"].groupby("unique_id").size()
    assert per_series[strict["ids"]("short")] == per_series[strict["ids"]("tiny")] == 6
    _assert_others_forecast(strict)


@pytest.mark.parametrize("name", ["const", "zero", "huge"])
def test_constant_zero_and_huge_series_have_finite_or_null_metrics(dirty, name):
    row = _row(dirty, name)
    assert row["status"] == "ok"
    metrics = row[["mae", "rmse", "smape", "mase", "naive_mase", "snaive_smape"]].astype(float)
    assert not np.isinf(metrics).any(), metrics
    if name == "huge":
        assert metrics.notna().all() and row["mae"] > 1e6
    if name == "zero":
        assert pd.isna(row["mase"]) and np.isfinite(row["smape"])  # 0 in-sample scale: null


def test_integer_and_unicode_ids_round_trip(dirty, strict):
    assert UNICODE_ID in set(dirty["forecasts"]["unique_id"])
    assert pd.api.types.is_integer_dtype(strict["forecasts"]["unique_id"])
    assert pd.api.types.is_integer_dtype(strict["metrics"].index)


def test_a_series_whose_loss_becomes_nan_is_retried_then_fails_alone(dirty):
    row = _row(dirty, "poison")
    assert row["status"] == "failed" and row["attempts"] == 2
    assert "loss became NaN or infinite" in row["reason"] and "0.0005" in row["reason"]
    _assert_others_forecast(dirty, "poison")
    assert (dirty["metrics"].query("status == 'ok'")["attempts"] == 1).all()
