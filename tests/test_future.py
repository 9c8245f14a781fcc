"""Known future inputs in a job: input.features and input.future_path read, cleaned and
lined up per series, by the tasks; every bad input named; stored models that read them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from cluster.cli import main
from cluster.job import run_job
from cluster.spec import load_spec
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.future import future_features
from lstm_worker.data.table import series_table
from tests.conftest import TINY, merge

HORIZON = TINY["forecast"]["horizon"]
FEATURES = ["promo", "price"]


def retail(n_series: int = 6, length: int = 60, seed: int = 0) -> pd.DataFrame:
    """Daily sales that a promotion lifts, for ``length`` days and the horizon after."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        promo = (rng.random(length + HORIZON) < 0.2).astype(float)
        price = np.round(rng.uniform(1, 2, length + HORIZON), 2)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{i}",
                    "ds": pd.date_range("2024-01-01", periods=length + HORIZON, freq="D"),
                    "y": 10 + i + 5 * promo - price + rng.normal(0, 0.2, length + HORIZON),
                    "promo": promo,
                    "price": price,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    ahead = frame.groupby("unique_id").cumcount(ascending=False) < HORIZON
    return frame[~ahead].reset_index(drop=True), frame[ahead].drop(columns="y")


def _write(root, frame: pd.DataFrame, future: pd.DataFrame, **sections) -> str:
    frame.to_parquet(root / "input.parquet", index=False)
    future.to_parquet(root / "future.parquet", index=False)
    raw = merge(
        TINY,
        {
            "input": {
                "path": str(root / "input.parquet"),
                "features": FEATURES,
                "future_path": str(root / "future.parquet"),
            },
            "output": {"path": str(root / "out")},
        },
    )
    (root / "job.yaml").write_text(yaml.safe_dump(merge(raw, sections)))
    return str(root / "job.yaml")


# --- in the task, without Ray: the features' cleaning and the future table's lining up ----


def _table(frame: pd.DataFrame, missing: str = "fill_linear"):
    spec = InputSpec(path="input.parquet", features=FEATURES, future_path="f", missing=missing)
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    return series_table(rows, spec, None, rows.schema), spec


def test_a_features_nan_and_a_missing_step_follow_input_missing():
    frame, _ = _split(retail(1))
    frame.loc[3, "promo"] = np.nan
    frame = frame.drop(index=5)  # a day with no row: its features are filled as its value is
    table, _ = _table(frame)
    assert table.notes == [""] and table.features[0].shape == (len(table.values[0]), 2)
    assert np.isfinite(table.features[0]).all()
    promo = frame["promo"].to_numpy()
    assert table.features[0][3, 0] == (promo[2] + promo[4]) / 2  # filled linearly
    unknown, _ = _table(frame.assign(price=np.nan), "fill_zero")
    assert unknown.notes[0] == "feature 'price': no finite value"
    one_nan = _split(retail(1))[0]
    one_nan.loc[7, "promo"] = np.nan
    strict, _ = _table(one_nan, "skip")
    assert strict.notes[0].startswith("feature 'promo': 1 NaN/inf values and 0 missing")
    assert strict.notes[0].endswith("input.missing is skip")


def test_future_rows_are_lined_up_per_series_and_a_gap_names_its_first_missing_step(tmp_path):
    frame, future = _split(retail(4))
    future = future[~((future.unique_id == "s1") & (future.ds >= "2024-03-04"))]  # 3 of 6 steps
    future = future[future.unique_id != "s2"]
    future.loc[future.unique_id == "s3", "price"] = np.nan
    future.to_parquet(tmp_path / "future.parquet", index=False)
    table, spec = _table(frame)
    spec = spec.model_copy(update={"future_path": str(tmp_path / "future.parquet")})
    tracks, notes = future_features(table, spec, HORIZON)
    assert notes[0] == ""
    np.testing.assert_array_equal(tracks[0][-HORIZON:], future[future.unique_id == "s0"][FEATURES])
    assert "covers 3 of the 6 horizon steps; the first missing is 2024-03-04" in notes[1]
    assert "has no row for it (its horizon starts at 2024-03-01" in notes[2]
    assert notes[3] == "" and (tracks[3][-HORIZON:, 1] == table.features[3][-1, 1]).all()
    _, strict = future_features(table, spec.model_copy(update={"missing": "skip"}), HORIZON)
    assert "feature 'price' is NaN at 2024-03-01" in strict[3]


# --- the job: bad input stops it before any work, naming the file and column ---------------


def _bad(tmp_path, change):
    frame, future = _split(retail(2))
    frame, future, overrides = change(frame, future)
    return _write(tmp_path, frame, future), overrides


CASES = {
    "feature missing from the input": (
        lambda f, g: (f.drop(columns="price"), g, []),
        1,
        ["input.parquet", "missing feature column(s) ['price']"],
    ),
    "feature not numeric": (
        lambda f, g: (f.astype({"promo": str}), g, []),
        1,
        ["input.parquet", "feature column 'promo' must be numeric"],
    ),
    "feature missing from the future table": (
        lambda f, g: (f, g.drop(columns="promo"), []),
        1,
        ["input.future_path", "future.parquet", "missing column(s) ['promo']"],
    ),
    "future time not a time": (
        lambda f, g: (f, g.astype({"ds": str}), []),
        1,
        ["future.parquet", "column 'ds' holds text", "but time (timestamp"],
    ),
    "future table missing": (
        lambda f, g: (f, g, ["input.future_path=gone.parquet"]),
        1,
        ["input.future_path", "gone.parquet", "does not exist"],
    ),
    "features without a future table": (
        lambda f, g: (f, g, ["input.future_path=null"]),
        2,
        ["input.features need input.future_path"],
    ),
    "a feature that is the target": (
        lambda f, g: (f, g, ["input.features=[y]"]),
        2,
        ["input.features", "['y'] are the id, time or target column"],
    ),
    "a calendar on an integer clock": (
        lambda f, g: (
            f.assign(ds=f.groupby("unique_id").cumcount()),
            g.assign(ds=g.groupby("unique_id").cumcount() + 60),
            ["model.calendar=[month]"],
        ),
        1,
        ["model.calendar ['month']", "integer clock"],
    ),
}


@pytest.mark.parametrize(("change", "code", "culprits"), CASES.values(), ids=CASES.keys())
def test_a_bad_feature_or_future_table_stops_the_job_naming_it(tmp_path, change, code, culprits):
    spec, overrides = _bad(tmp_path, change)
    args = ["run", spec, "--no-report", *(a for o in overrides for a in ("--set", o))]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    for culprit in culprits:
        assert culprit in result.output, result.output


# --- with Ray: the tasks read the future table; stored models that read features -----------


@pytest.fixture(scope="module")
def covariate_run(ray_cluster, tmp_path_factory):
    """s0..s3 with their horizon's features, s4 with half of it, s5 with none; trained with
    the driver unable to read the future table, so only the tasks can have."""
    root = tmp_path_factory.mktemp("future")
    frame, future = _split(retail(6))
    future = future[~((future.unique_id == "s4") & (future.ds >= "2024-03-04"))]
    future = future[future.unique_id != "s5"]
    path = _write(root, frame, future)
    with pytest.MonkeyPatch.context() as patch:

        def driver_reads(*args, **kwargs):
            raise AssertionError("the driver read the future table")

        patch.setattr("lstm_worker.data.future._future_rows", driver_reads)
        summary = run_job(load_spec(path))
    metrics = pd.read_parquet(summary.output / "metrics.parquet").set_index("unique_id")
    return {"root": root, "spec": path, "out": summary.output, "metrics": metrics}


def test_the_tasks_read_the_future_table_and_skip_a_series_it_does_not_cover(covariate_run):
    metrics = covariate_run["metrics"]
    assert (metrics.loc[["s0", "s1", "s2", "s3"], "status"] == "ok").all()
    assert metrics.loc["s4", "status"] == "skipped"
    assert (
        "covers 3 of the 6 horizon steps; the first missing is 2024-03-04"
        in (metrics.loc["s4", "reason"])
    )
    assert (
        metrics.loc["s5", "status"] == "skipped"
        and "has no row for it" in (metrics.loc["s5", "reason"])
    )


def test_forecast_only_reads_the_features_as_the_run_that_stored_the_models(covariate_run):
    out = covariate_run["out"]
    spec = load_spec(
        covariate_run["spec"],
        [f"forecast.from_models={out}", f"output.path={covariate_run['root'] / 'again'}"],
    )
    again = pd.read_parquet(run_job(spec).output / "forecasts.parquet")
    stored = pd.read_parquet(out / "forecasts.parquet")  # float32 stacks of another size:
    pd.testing.assert_frame_equal(again, stored, rtol=1e-7)  # equal to float32's rounding


def test_a_store_that_read_other_features_starts_cold_with_the_reason(covariate_run):
    spec = load_spec(
        covariate_run["spec"],
        [
            f"train.warm_start={covariate_run['out']}",
            "input.features=[promo]",
            f"output.path={covariate_run['root'] / 'fewer'}",
        ],
    )
    metrics = pd.read_parquet(run_job(spec).output / "metrics.parquet").set_index("unique_id")
    trained = metrics[metrics.status == "ok"]
    assert (trained["init"] == "cold").all()
    assert (
        trained["init_reason"]
        .str.contains(r"input.features \['promo', 'price'\] -> \['promo'\]")
        .all()
    )


def test_a_future_table_with_no_series_of_the_input_stops_the_job(ray_cluster, tmp_path):
    frame, future = _split(retail(2))
    spec = _write(tmp_path, frame, future.assign(unique_id="other"))
    result = CliRunner().invoke(main, ["run", spec, "--no-report"])
    assert result.exit_code == 1, result.output
    assert "every one of the 2 series is unusable" in result.output
    assert "input.future_path" in result.output and "has no row for it" in result.output


def test_metrics_say_which_series_kept_the_calendar_and_a_forecast_from_the_store_too(
    ray_cluster, tmp_path
):
    frame, future = _split(retail(3))
    no_features = {"features": [], "future_path": None}
    path = _write(tmp_path, frame, future, input=no_features, model={"calendar": ["dayofweek"]})
    out = run_job(load_spec(path)).output
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert (metrics["status"] == "ok").all()
    assert set(metrics["calendar"]) <= {"dayofweek", ""}, metrics["calendar"]
    again = run_job(
        load_spec(path, [f"forecast.from_models={out}", f"output.path={tmp_path / 'again'}"])
    ).output
    pd.testing.assert_frame_equal(
        pd.read_parquet(again / "forecasts.parquet"),
        pd.read_parquet(out / "forecasts.parquet"),
        rtol=1e-7,  # float32 stacks of another size: equal to float32's rounding
    )
    stored = pd.read_parquet(again / "metrics.parquet")  # and says what the stored ones read
    pd.testing.assert_series_equal(stored["calendar"], metrics["calendar"])
