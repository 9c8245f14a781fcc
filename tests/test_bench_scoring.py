"""The benchmark scorer reproduces the official M4 Hourly benchmark figures."""

import pytest

from bench.scoring import M4_HOURLY, SETS, baselines, benchmark_file, score, score_owa

pytestmark = pytest.mark.skipif(not M4_HOURLY.exists(), reason="needs ../shared/data/m4_hourly")


def test_rescoring_the_official_snaive_file_gives_the_published_figures():
    train, test = M4_HOURLY.load()
    scores = score(benchmark_file("Hourly-sNaive.csv", test), train, test, M4_HOURLY)
    assert round(scores["smape"], 3) == 13.912 and round(scores["mase"], 3) == 1.193
    assert scores["series"] == 414 and scores["missing"] == 0


def test_naive2_computed_here_matches_the_official_naive2_file():
    train, test = M4_HOURLY.load()
    official = score(benchmark_file("Hourly-Naive2.csv", test), train, test, M4_HOURLY)
    ours = score_owa(baselines(train, test, M4_HOURLY)["Naive2"], train, test)
    assert round(official["smape"], 3) == round(ours["smape"], 3) == 18.383
    assert round(ours["mase"], 3) == 2.395 and round(ours["owa"], 3) == 1.0


def test_a_missing_forecast_counts_as_zero():
    train, test = M4_HOURLY.load()
    forecasts = benchmark_file("Hourly-sNaive.csv", test)
    dropped = forecasts[forecasts["unique_id"] != "H1"]
    scores = score(dropped, train, test, M4_HOURLY)
    others = score(
        dropped, train[train["unique_id"] != "H1"], test[test["unique_id"] != "H1"], M4_HOURLY
    )
    # H1 forecast as 0: sMAPE 200 at every step, MASE its mean |y| over its in-sample scale
    h1, past = test[test["unique_id"] == "H1"]["y"], train[train["unique_id"] == "H1"]["y"]
    h1_mase = h1.abs().mean() / past.diff(24).abs().mean()
    assert scores["missing"] == 1 and scores["series"] == 414
    assert scores["smape"] == pytest.approx((413 * others["smape"] + 200) / 414, rel=1e-12)
    assert scores["mase"] == pytest.approx((413 * others["mase"] + h1_mase) / 414, rel=1e-12)


@pytest.mark.parametrize("name", list(SETS))
def test_the_backtest_split_never_reaches_the_test_part(name):
    bench = SETS[name]
    if not bench.exists():
        pytest.skip(f"needs {bench.root}")
    train, test = bench.load()
    fit, held = bench.load_split("backtest")
    last_held = held.groupby("unique_id")["ds"].max()
    first_test = test.groupby("unique_id")["ds"].min()
    assert (last_held < first_test.loc[last_held.index]).all()
    assert len(held) == bench.horizon * train["unique_id"].nunique()
    assert len(fit) + len(held) == len(train)
