"""The M4 scorer re-scores the official seasonal-naive file to its published figures."""

import pytest

from bench.m4_score import M4_HOURLY, benchmark_file, load_m4, score_m4

pytestmark = pytest.mark.skipif(not M4_HOURLY.exists(), reason="needs ../shared/data/m4_hourly")


def test_rescoring_snaive_gives_the_published_figures():
    train, test = load_m4()
    scores = score_m4(benchmark_file("Hourly-sNaive.csv", test), train, test)
    assert round(scores["smape"], 3) == 13.912 and round(scores["mase"], 3) == 1.193
    assert scores["series"] == 414


def test_rescoring_naive2_gives_owa_one():
    train, test = load_m4()
    scores = score_m4(benchmark_file("Hourly-Naive2.csv", test), train, test)
    assert round(scores["smape"], 3) == 18.383 and round(scores["owa"], 2) == 1.0
