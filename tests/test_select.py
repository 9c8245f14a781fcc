"""Selection on the backtest: best setting, mean of the top k, baseline fallback, intervals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lstm_worker import WorkerConfig
from lstm_worker.intervals import conformal_widths, interval_widths
from lstm_worker.result import scored as _scored
from lstm_worker.search import SearchSpec, Setting
from lstm_worker.shard.messages import JobChoice
from lstm_worker.shard.select import choose
from lstm_worker.smoothing import Statistical

CFG = WorkerConfig(
    forecast={"horizon": 8, "holdout": 6, "n_windows": 2, "levels": [80]}, season_length=4
)
T = np.arange(60.0)
SEASONAL = 10 + np.tile([0.0, 3.0, 1.0, -2.0], 15)  # exactly periodic: seasonal naive is exact


def candidate(values: np.ndarray, error: float) -> tuple[np.ndarray, np.ndarray]:
    """Backtests (W, H) that miss the truth by ``error`` and a forecast."""
    cuts = CFG.cutoffs(len(values))
    backtests = np.stack([values[c : c + 6] + error for c in cuts])
    return backtests, np.full(8, values[-1] + error)


def results_for(values: np.ndarray, errors: list[float]):
    settings = [Setting(i, {"model.hidden_size": 8 * (i + 1)}) for i in range(len(errors))]
    return [
        (s, _scored("x", values, *candidate(values, e), CFG))
        for s, e in zip(settings, errors, strict=True)
    ]


def test_the_setting_with_the_lowest_backtest_metric_is_chosen():
    values = 50 + T + np.sin(T)
    picked = choose(values, results_for(values, [3.0, 0.5, 2.0]), SearchSpec(), CFG)
    assert (picked.model, picked.index, picked.setting) == ("lstm", 1, "model.hidden_size=16")
    assert picked.result.metrics["mae"] == 0.5


def test_top_k_averages_the_best_forecasts_and_rescores_them():
    values = 50 + T + np.sin(T)
    picked = choose(values, results_for(values, [3.0, 1.0, -1.0]), SearchSpec(top_k=2), CFG)
    assert picked.model == "lstm mean of 2"
    assert "hidden_size=16" in picked.setting and "=24" in picked.setting
    result = picked.result
    assert result.metrics["mae"] == 0.0 and picked.mean_of_top is result  # +1 and -1 cancel
    np.testing.assert_allclose(result.forecast, np.full(8, values[-1]))


def test_an_exact_seasonal_series_falls_back_to_seasonal_naive_when_allowed():
    results = results_for(SEASONAL, [0.7])
    kept = choose(SEASONAL, results, SearchSpec(), CFG)
    assert kept.model == "lstm" and kept.result.status == "ok"
    picked = choose(SEASONAL, results, SearchSpec(fallback=["snaive", "naive"]), CFG)
    chosen = picked.result
    assert picked.model == "snaive" and chosen.status == "fallback"
    assert "seasonal naive beat the LSTM" in chosen.reason and chosen.metrics["mae"] == 0.0
    np.testing.assert_array_equal(chosen.forecast, np.resize(SEASONAL[-4:], 8))


def test_widths_cover_the_horizon_and_coverage_is_left_one_window_out():
    rng = np.random.default_rng(1)
    values = 50 + rng.normal(0, 1, 60)
    backtests, forecast = candidate(values, 0.0)
    result = _scored("x", values, backtests + rng.normal(0, 1, backtests.shape), forecast, CFG)
    widths, coverage = interval_widths(values, result, CFG)
    assert widths[80].shape == (8,) and (widths[80] > 0).all()
    assert widths[80][6] == widths[80][7] == widths[80][5]  # past the holdout: last width
    actual = np.stack([values[cut : cut + 6] for cut in result.cutoffs])
    residuals = actual - result.backtest
    left_out, in_sample = [], []  # each window judged by the others' widths, or by all
    for w in range(len(residuals)):
        others = conformal_widths(np.delete(residuals, w, axis=0), [80])[80]
        left_out.append(np.abs(residuals[w]) <= others)
        in_sample.append(np.abs(residuals[w]) <= conformal_widths(residuals, [80])[80])
    assert coverage[80] == np.mean(left_out) != np.mean(in_sample)


def test_the_lstm_combines_with_the_statistical_forecast_at_the_jobs_weight():
    values = 50 + T + np.sin(T)
    cuts = CFG.cutoffs(len(values))
    statistical = Statistical(np.stack([values[c : c + 6] - 1.0 for c in cuts]), np.full(8, 99.0))
    results = results_for(values, [3.0])
    picked = choose(values, results, SearchSpec(), CFG, JobChoice(lstm_weight=0.25), statistical)
    lstm = results[0][1]
    assert picked.model == "lstm" and picked.lstm_weight == 0.25 and picked.lstm is lstm
    np.testing.assert_allclose(picked.result.forecast, 0.25 * lstm.forecast + 0.75 * 99.0)
    assert picked.result.metrics["mae"] == 0.25 * 3.0 + 0.75 * -1.0  # the errors combine too


def test_an_lstm_forecast_that_is_not_finite_falls_back_to_the_statistical_one():
    values = 50 + T + np.sin(T)
    ((setting, result),) = results_for(values, [1.0])
    broken = replace(result, forecast=np.r_[result.forecast[:-1], np.inf])
    cuts = CFG.cutoffs(len(values))
    statistical = Statistical(np.stack([values[c : c + 6] + 2.0 for c in cuts]), np.full(8, 7.0))
    picked = choose(values, [(setting, broken)], SearchSpec(), CFG, JobChoice(), statistical)
    assert picked.result.status == "fallback" and picked.model == "statistical"
    assert "not finite" in picked.result.reason and picked.lstm_weight is None
    np.testing.assert_array_equal(picked.result.forecast, np.full(8, 7.0))
    assert picked.result.metrics["mae"] == 2.0
