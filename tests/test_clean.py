"""Cleaning one series at the edge: each policy does what the spec says, and counts it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_worker.data.clean import clean_series
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.table import read_series
from tests.conftest import synthetic_frame

HOURS = pd.date_range("2024-01-01", periods=6, freq="h").to_numpy()
HOUR = pd.tseries.frequencies.to_offset("h")


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("fill_linear", [1.0, 1.0, 2.0, 3.0, 3.0, 3.0]),  # the edges hold the nearest value
        ("fill_forward", [1.0, 1.0, 1.0, 3.0, 3.0, 3.0]),
        ("fill_zero", [0.0, 1.0, 0.0, 3.0, 0.0, 0.0]),
    ],
)
def test_fill_policies_fill_values_and_missing_steps(policy, expected):
    times = np.delete(HOURS, 4)  # 04:00 is missing
    values = np.array([np.nan, 1.0, np.inf, 3.0, -np.inf])  # at 0, 1, 2, 3, 5 h
    cleaned = clean_series(times, values, HOUR, policy, "skip")
    assert not cleaned.skip and cleaned.filled == 4 and cleaned.inserted == 1
    np.testing.assert_array_equal(cleaned.times, HOURS)
    np.testing.assert_array_equal(cleaned.values, expected)


def test_skip_policy_names_the_counts_and_the_first_missing_time():
    cleaned = clean_series(np.delete(HOURS, 2), np.arange(5.0), HOUR, "skip", "skip")
    assert cleaned.skip == (
        "0 NaN/inf values and 1 missing time steps, the first at "
        "2024-01-01 02:00:00; input.missing is skip"
    )


@pytest.mark.parametrize(
    "policy, value, skip",
    [
        ("skip", None, "duplicate timestamp 2024-01-01 01:00:00 (1 repeated rows in the series)"),
        ("last", 9.0, ""),
        ("mean", 5.0, ""),
    ],
)
def test_duplicate_policies(policy, value, skip):
    times = np.insert(HOURS, 2, HOURS[1])  # 01:00 twice: 1.0 then 9.0 in file order
    values = np.array([0.0, 1.0, 9.0, 3.0, 4.0, 5.0, 6.0])
    cleaned = clean_series(times, values, HOUR, "fill_linear", policy)
    assert cleaned.skip.startswith(skip) if skip else not cleaned.skip
    if value is not None:
        assert cleaned.values[1] == value and len(cleaned.values) == 6 and cleaned.merged == 1


def test_integer_clock_gaps_and_an_off_grid_time():
    cleaned = clean_series(
        np.array([10, 12, 18]), np.array([1.0, 2.0, 5.0]), 2, "fill_linear", "skip"
    )
    np.testing.assert_array_equal(cleaned.times, [10, 12, 14, 16, 18])
    np.testing.assert_array_equal(cleaned.values, [1.0, 2.0, 3.0, 4.0, 5.0])
    off = clean_series(np.array([10, 13, 14]), np.ones(3), 2, "fill_linear", "skip")
    assert off.skip == "time 13 is not on the series' grid (step 2 from its first time)"


def test_calendar_frequencies_walk_the_calendar():
    months = pd.date_range("2024-01-31", periods=5, freq="ME").to_numpy()
    cleaned = clean_series(
        np.delete(months, 2), np.arange(4.0), pd.offsets.MonthEnd(), "fill_linear", "skip"
    )
    np.testing.assert_array_equal(cleaned.times, months)
    assert cleaned.inserted == 1


def test_a_wild_timestamp_skips_the_series_instead_of_growing_it():
    times = np.append(HOURS, np.datetime64("2099-01-01T00:00", "ns"))
    cleaned = clean_series(times, np.ones(7), HOUR, "fill_linear", "skip")
    assert "7 rows span" in cleaned.skip and "2099-01-01" in cleaned.skip


def test_frequency_is_inferred_despite_gaps_and_duplicates(tmp_path):
    frame = synthetic_frame(3, 40)
    frame = frame.drop(index=[3, 5, 7])  # the longest series now has gaps
    frame = pd.concat([frame, frame.iloc[[50]]])  # and s1 a duplicate (13:00)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    table = read_series(InputSpec(path=str(tmp_path / "t.parquet")))
    assert table.freq == HOUR and table.notes == [
        "",
        "duplicate timestamp 2024-01-01 13:00:00 "
        "(1 repeated rows in the series); "
        "input.duplicates is skip",
        "",
    ]
    assert table.filled == [3, 0, 0] and table.cleaning["steps_inserted"] == 3


@pytest.mark.parametrize("freq", ["W-MON", "W-SUN", "2W-MON", "MS"])
def test_a_missing_week_or_month_is_inserted_and_a_time_off_its_calendar_is_named(freq):
    offset = pd.tseries.frequencies.to_offset(freq)
    grid = pd.date_range("2024-01-01", periods=8, freq=freq).to_numpy()
    cleaned = clean_series(np.delete(grid, 3), np.arange(7.0), offset, "fill_linear", "skip")
    assert not cleaned.skip and cleaned.inserted == 1
    np.testing.assert_array_equal(cleaned.times, grid)
    off = grid.copy()
    off[5] += np.timedelta64(1, "D")
    assert (
        "is not on the series' grid"
        in clean_series(off, np.arange(8.0), offset, "fill_linear", "skip").skip
    )
