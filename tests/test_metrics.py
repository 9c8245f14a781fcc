import numpy as np

from lstm_worker.metrics import mase_scale, score, seasonal_naive_forecast, smape


def test_smape_matches_the_m4_definition_and_treats_zero_over_zero_as_zero():
    assert smape(np.array([100.0, 0.0]), np.array([110.0, 0.0])) == (200 * 10 / 210) / 2


def test_mase_uses_the_seasonal_difference_of_the_training_part():
    insample = np.array([1.0, 2, 3, 4, 2, 3, 4, 5])  # lag-4 differences are all 1
    assert mase_scale(insample, 4) == 1.0
    got = score(np.array([6.0, 7.0]), np.array([5.0, 5.0]), insample, 4)
    assert got["mae"] == 1.5 and got["mase"] == 1.5 and got["rmse"] == np.sqrt(2.5)


def test_flat_history_gives_undefined_mase_not_infinity():
    assert np.isnan(score(np.ones(3), np.zeros(3), np.ones(10), 2)["mase"])


def test_seasonal_naive_repeats_the_last_season():
    insample = np.arange(10.0)
    np.testing.assert_array_equal(seasonal_naive_forecast(insample, 5, 3), [7, 8, 9, 7, 8])
