"""The driver's view of the input (an index, no values) and a task's read of its own rows."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cluster.data.index
from cluster.data.index import input_fingerprint, scan_index
from cluster.data.prepare import prepare_input
from cluster.job import run_job
from cluster.plan import plan_shards
from cluster.spec import load_spec
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.source import read_rows
from lstm_worker.data.table import split_rows
from tests.conftest import synthetic_frame


def _write_parts(frame: pd.DataFrame, folder, rows_per_file: int, **options) -> None:
    folder.mkdir()
    for i, start in enumerate(range(0, len(frame), rows_per_file)):
        frame.iloc[start : start + rows_per_file].to_parquet(
            folder / f"part-{i:03d}.parquet", index=False, **options
        )


def test_the_index_finds_each_series_rows_across_batches_files_and_row_groups(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(cluster.data.index, "_SCAN_BATCH", 7)  # runs cross batch boundaries
    frame = pd.concat([synthetic_frame(3, 20), synthetic_frame(9, 20).iloc[60:]])
    _write_parts(frame, tmp_path / "parts", 60, row_group_size=16)  # whole series per file
    spec = InputSpec(path=str(tmp_path / "parts"))
    index = scan_index(spec)
    assert index.grouped and index.total_rows == 9 * 20
    assert index.ids.to_pylist() == [f"s{i}" for i in range(9)]
    assert list(index.file) == [0, 0, 0, 1, 1, 1, 2, 2, 2] and (index.rows == 20).all()
    assert list(index.first_row) == [0, 20, 40] * 3
    shards = plan_shards(index, 4)
    assert [s.segments for s in shards] == [
        ((0, 0, 60), (1, 0, 20)),
        ((1, 20, 60), (2, 0, 40)),
        ((2, 40, 60),),
    ]
    ids, times, values, _ = split_rows(read_rows(spec, index.files, list(shards[1].segments)), spec)
    assert ids == ["s4", "s5", "s6", "s7"]
    expected = frame[frame["unique_id"] == "s6"]
    np.testing.assert_array_equal(values[2], expected["y"])
    np.testing.assert_array_equal(times[2], expected["ds"].to_numpy())


@pytest.mark.parametrize("layout", ["shuffled rows", "one id in two files"])
def test_input_whose_series_are_not_runs_of_rows_is_not_grouped(tmp_path, layout):
    frame = synthetic_frame(4, 20)
    if layout == "shuffled rows":
        frame = frame.sample(frac=1.0, random_state=0)
    else:  # appended by date: every file holds a slice of every series
        frame = frame.sort_values(["ds", "unique_id"])
    _write_parts(frame, tmp_path / "parts", 40)
    assert not scan_index(InputSpec(path=str(tmp_path / "parts"))).grouped


def test_prepare_writes_an_id_sorted_copy_in_files_of_whole_series(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster.data.prepare, "ROWS_PER_FILE", 50)
    frame = synthetic_frame(7, 20)
    _write_parts(frame.sample(frac=1.0, random_state=2), tmp_path / "parts", 30)
    source = InputSpec(path=str(tmp_path / "parts"))
    report = prepare_input(source, tmp_path / "prepared", input_fingerprint(source))
    assert report["series"] == 7 and report["files"] == 3
    index = scan_index(InputSpec(path=str(tmp_path / "prepared")))
    assert index.grouped and index.ids.to_pylist() == [f"s{i}" for i in range(7)]
    assert len(set(index.file)) == 3
    copy = pd.read_parquet(tmp_path / "prepared")
    pd.testing.assert_frame_equal(
        copy.reset_index(drop=True), frame.reset_index(drop=True), check_exact=True
    )


def test_an_input_uri_is_read_through_pyarrow_file_systems(tmp_path):
    synthetic_frame(3, 20).to_parquet(tmp_path / "t.parquet", index=False)
    spec = InputSpec(path=(tmp_path / "t.parquet").as_uri())  # file:///...
    index = scan_index(spec)
    assert len(index) == 3
    rows = read_rows(spec, index.files, [(0, 20, 40)])
    assert rows.column("unique_id").to_pylist() == ["s1"] * 20


def test_the_driver_does_not_load_torch():
    code = "import sys, cluster.cli, cluster.job, cluster.dispatch; print('torch' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "False"


def test_unsorted_parts_give_the_same_outputs_as_the_sorted_file(ray_cluster, write_job, tmp_path):
    frame = synthetic_frame(7, 60)
    sorted_spec = load_spec(write_job(frame))
    _write_parts(frame.sample(frac=1.0, random_state=3), tmp_path / "parts", 100)
    parts_spec = load_spec(
        write_job(frame),
        [f"input.path={tmp_path / 'parts'}", f"output.path={tmp_path / 'out-parts'}"],
    )
    one, many = run_job(sorted_spec).output, run_job(parts_spec).output
    for name in ("forecasts", "backtest", "candidates"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(one / f"{name}.parquet"),
            pd.read_parquet(many / f"{name}.parquet"),
            check_exact=True,
        )
    placement = ["train_seconds", "forecast_seconds", "node_id", "device", "gpu_id"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(one / "metrics.parquet").drop(columns=placement),
        pd.read_parquet(many / "metrics.parquet").drop(columns=placement),
        check_exact=True,
    )
    manifest = json.loads((many / "manifest.json").read_text())
    assert manifest["input_prepared"]["series"] == 7
    assert manifest["input_read"] == str(many / "prepared")
    again = json.loads((run_job(parts_spec).output / "manifest.json").read_text())
    assert again["input_prepared"] is None and again["series_computed"] == 0  # copy reused


def test_a_task_reads_only_the_row_groups_of_its_series(tmp_path, monkeypatch):
    frame = synthetic_frame(10, 20)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "t.parquet", row_group_size=20
    )
    spec = InputSpec(path=str(tmp_path / "t.parquet"))
    index = scan_index(spec)
    read_groups = []
    original = pq.ParquetFile.read_row_groups
    monkeypatch.setattr(
        pq.ParquetFile,
        "read_row_groups",
        lambda self, groups, **kw: read_groups.append(list(groups)) or original(self, groups, **kw),
    )
    shard = plan_shards(index, 3)[1]  # s3, s4, s5
    read_rows(spec, index.files, list(shard.segments))
    assert read_groups == [[3, 4, 5]]


def test_runner_prepare_writes_a_copy_a_job_reads_as_is(tmp_path, write_job):
    from click.testing import CliRunner

    from cluster.cli import main

    _write_parts(synthetic_frame(5, 30).sample(frac=1.0, random_state=4), tmp_path / "parts", 40)
    path = write_job(synthetic_frame(5, 30), input={"path": str(tmp_path / "parts")})
    result = CliRunner().invoke(main, ["prepare", str(path), str(tmp_path / "by-id")])
    assert result.exit_code == 0 and "5 series, 150 rows" in result.output, result.output
    assert scan_index(InputSpec(path=str(tmp_path / "by-id"))).grouped
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["prepare", str(path), str(tmp_path / "mine")])
    assert result.exit_code == 1 and "not a copy" in result.output
    assert (tmp_path / "mine" / "notes.txt").exists()
