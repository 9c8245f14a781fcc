"""The input table is validated once, at the edge, every problem reported together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_worker.data.contract import InputSpec
from lstm_worker.data.table import future_times, read_series
from lstm_worker.errors import InputError
from tests.conftest import synthetic_frame


def test_reads_sorts_and_splits_by_series(tmp_path):
    frame = synthetic_frame(3, 30).sample(frac=1.0, random_state=0)  # shuffled rows
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    table = read_series(InputSpec(path=str(tmp_path / "t.parquet")))
    assert table.ids == ["s0", "s1", "s2"] and str(table.freq) == "<Hour>"
    assert all(np.all(np.diff(t) > np.timedelta64(0)) for t in table.times)
    expected = synthetic_frame(3, 30).query("unique_id == 's1'")["y"].to_numpy()
    np.testing.assert_array_equal(table.values[1], expected)


def test_missing_columns_are_all_named(tmp_path):
    synthetic_frame().rename(columns={"ds": "when", "y": "sales"}).to_parquet(
        tmp_path / "t.parquet"
    )
    with pytest.raises(InputError) as caught:
        read_series(InputSpec(path=str(tmp_path / "t.parquet")))
    assert "'ds' (input.time_col)" in str(caught.value) and "'y' (input.target_col)" in str(
        caught.value
    )


def test_non_numeric_target_and_bad_time_column(tmp_path):
    frame = synthetic_frame().astype({"y": str, "ds": str})
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(InputError) as caught:
        read_series(InputSpec(path=str(tmp_path / "t.parquet")))
    assert "must be numeric" in str(caught.value) and "must be a timestamp" in str(caught.value)


def test_missing_path_and_not_parquet(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_series(InputSpec(path=str(tmp_path / "missing.parquet")))
    (tmp_path / "t.parquet").write_text("id,ds,y\n")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_series(InputSpec(path=str(tmp_path / "t.parquet")))


def test_integer_clock_and_future_steps(tmp_path):
    frame = pd.DataFrame({"unique_id": 1, "ds": np.arange(0, 40, 2), "y": np.arange(20.0)})
    frame.to_parquet(tmp_path / "t.parquet")
    table = read_series(InputSpec(path=str(tmp_path / "t.parquet")))
    assert table.freq == 2 and table.ids == [1]
    np.testing.assert_array_equal(future_times(table.times[0][-1], 3, table.freq), [40, 42, 44])


def test_a_directory_of_unsorted_parts_reads_like_the_sorted_file(tmp_path):
    frame = synthetic_frame(6, 40)
    frame.to_parquet(tmp_path / "sorted.parquet", index=False)
    shuffled = frame.sample(frac=1.0, random_state=1)
    (tmp_path / "parts").mkdir()
    for i, start in enumerate(range(0, len(shuffled), 80)):
        shuffled.iloc[start : start + 80].to_parquet(
            tmp_path / "parts" / f"part-{i}.parquet", index=False
        )
    one = read_series(InputSpec(path=str(tmp_path / "sorted.parquet")))
    many = read_series(InputSpec(path=str(tmp_path / "parts")))
    assert one.ids == many.ids and str(one.freq) == str(many.freq)
    for a, b in zip(one.values + one.times, many.values + many.times, strict=True):
        np.testing.assert_array_equal(a, b)
