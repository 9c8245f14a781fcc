"""The task side alone: no Ray. Scaling, windows, training, recursive forecasting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_worker import WorkerConfig, forecast_batch
from lstm_worker.forecast import recursive_forecast
from lstm_worker.inputs import Scaler, model_inputs
from lstm_worker.model import LSTMForecaster
from lstm_worker.views import ModelView
from lstm_worker.windows import forecast_context, make_windows

CFG = WorkerConfig(
    model={"lookback": 8, "hidden_size": 8, "skip": "none"},
    train={"epochs": 3, "batch_size": 16},
    forecast={"horizon": 5, "holdout": 6},
    season_length=24,
)


def series(length: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return 50 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, length)


def view(values: np.ndarray, lag: int, lookback: int, val: int, level: bool = False) -> ModelView:
    return ModelView(
        values.astype(np.float32), Scaler(0.0, 1.0), None, lag, lookback, val, window_level=level
    )


def test_windows_are_next_step_targets_and_validation_targets_stay_out_of_training():
    w = make_windows(
        view(np.arange(30), lag=0, lookback=5, val=6), 5, CFG.train.model_copy(update={"stride": 1})
    )
    np.testing.assert_array_equal(w.y, w.x[..., 0] + 1)
    assert w.x.shape == (19, 5, 2) and w.pad == 0 and not w.x[..., 1].any()
    assert w.y.max() == 23  # the last 6 points are validation: no training target there


def test_skip_input_is_the_value_one_lag_before_the_target():
    train = CFG.train.model_copy(update={"stride": 2})
    w = make_windows(view(np.arange(40), lag=4, lookback=5, val=6), 5, train)
    np.testing.assert_array_equal(w.x[..., 1], w.y - 4)
    np.testing.assert_array_equal(w.x[..., 0], w.y - 1)
    assert w.y[-1, -1] == 33 and np.all(np.diff(w.y[:, 0]) == 2)
    last = make_windows(view(np.arange(40), lag=1, lookback=5, val=0), 5, train)
    np.testing.assert_array_equal(last.x[..., 1], last.x[..., 0])  # naive: the last value


def test_each_window_and_each_forecast_is_relative_to_its_own_first_steps():
    w = make_windows(view(np.arange(40), lag=4, lookback=8, val=6, level=True), 8, CFG.train)
    assert np.allclose(w.x[:, :2, 0].mean(axis=1), 0)  # level: the mean of the first 8 // 4
    np.testing.assert_allclose(w.x[..., 1], w.y - 4)  # the skip input moves with it
    context = forecast_context(view(np.arange(40), 4, 8, 0, level=True), 34, 8, 3)
    assert context.start == 0 and context.level == np.mean([26, 27])  # last 8 steps of 0..33
    np.testing.assert_array_equal(context.values + context.level, np.arange(23, 34))


def test_a_short_view_is_left_padded_to_the_stack_length():
    w = make_windows(view(np.arange(1, 8), lag=1, lookback=6, val=0), 10, CFG.train)
    assert w.x.shape == (1, 10, 2) and w.pad == 4 and w.first == 4 + 6 // 4
    assert not w.x[0, :4].any() and w.x[0, 4:, 0].tolist() == [1, 2, 3, 4, 5, 6]


def test_constant_series_scales_without_dividing_by_zero():
    scaler = Scaler.fit(np.full(10, 7.0), "standard")
    assert np.isfinite(scaler.transform(np.full(3, 7.0))).all()
    assert Scaler.fit(np.zeros(10), "minmax").scale == 1.0


def test_fixed_seed_reproduces_forecasts_exactly():
    first = forecast_batch(["a", "b"], [series(seed=1), series(seed=2)], CFG, num_threads=1)
    second = forecast_batch(["a", "b"], [series(seed=1), series(seed=2)], CFG, num_threads=1)
    for one, two in zip(first, second, strict=True):
        assert one.status == "ok"
        np.testing.assert_array_equal(one.forecast, two.forecast)
        np.testing.assert_array_equal(one.backtest, two.backtest)


def test_a_series_result_does_not_depend_on_its_shard():
    alone = forecast_batch(["b"], [series(seed=2)], CFG, num_threads=1)[0]
    with_other = forecast_batch(["a", "b"], [series(seed=1), series(seed=2)], CFG, num_threads=1)[1]
    np.testing.assert_array_equal(alone.forecast, with_other.forecast)


def test_backtest_never_sees_the_holdout_neither_in_scaling_nor_as_inputs():
    values = series()
    tampered = values.copy()
    tampered[-6:] = 1e6  # the holdout: if scaling or teacher forcing used it, this would show
    clean = forecast_batch(["x"], [values], CFG, num_threads=1)[0]
    dirty = forecast_batch(["x"], [tampered], CFG, num_threads=1)[0]
    np.testing.assert_array_equal(clean.backtest, dirty.backtest)
    assert clean.metrics["mae"] != dirty.metrics["mae"]


@pytest.mark.parametrize("lag", [0, 1, 24])
def test_recursive_forecast_feeds_back_its_own_predictions(lag):
    torch.manual_seed(0)
    model = LSTMForecaster(CFG.model).eval()
    for p in model.parameters():  # the head starts at zero: give it something to say
        torch.nn.init.normal_(p, std=0.3)
    lookback, lags = CFG.lookback, torch.tensor([lag, lag])
    context = torch.randn(2, lookback + max(lag - 1, 0))  # (B, T): a window and its lags
    predicted = recursive_forecast(model, context, lags, horizon=30, length=lookback)  # (B, 30)
    with torch.no_grad():
        for k in range(30):  # step k: the model's output on the window and its own steps
            grown = torch.cat([context, predicted[:, :k]], dim=1)
            expected = model(model_inputs(grown, lags)[:, -(lookback + k) :])[0][:, -1]
            torch.testing.assert_close(predicted[:, k], expected, rtol=1e-5, atol=1e-5)
        teacher = torch.cat([context, torch.ones(2, 29)], dim=1)
        forced = model(model_inputs(teacher, lags)[:, -(lookback + 29) :])[0][:, -1]
    assert not torch.allclose(predicted[:, 29], forced)


def _ses(history: np.ndarray) -> np.ndarray:
    level = history[0]
    for value in history:
        level = 0.3 * value + 0.7 * level
    return np.full(5, level)


def _theta(history: np.ndarray) -> np.ndarray:
    """The smoothed level plus Theta's drift: half the least-squares slope over 0.3 on the
    first step, then half the slope a step more."""
    slope = np.polyfit(np.arange(len(history)), history, 1)[0]
    return _ses(history) + slope / 2 * (np.arange(5) + 1 / 0.3)


@pytest.mark.parametrize(
    "skip, expected",
    [
        ("season", lambda h: h[-24:][:5]),
        ("last", lambda h: np.full(5, h[-1])),
        ("level", _ses),
        ("theta", _theta),
    ],
)
def test_an_untrained_model_forecasts_its_skip_inputs_baseline(skip, expected):
    model = CFG.model.model_copy(update={"skip": skip, "deseasonalise": False})
    cfg = CFG.model_copy(
        update={
            "model": model,
            "train": CFG.train.model_copy(update={"lr": 1e-12}),
            "seasons": (24,),
        }
    )
    history = series(120)
    result = forecast_batch(["x"], [history], cfg, num_threads=1)[0]
    np.testing.assert_allclose(result.forecast, expected(history), rtol=1e-4)


@pytest.mark.parametrize(
    "model",
    [
        {"bidirectional": True, "head": "mlp"},
        {"num_layers": 2, "dropout": 0.1},
        {"skip": "season", "bidirectional": True},
    ],
)
def test_model_variants_train_and_forecast(model):
    supervise = "last" if model.get("bidirectional") else "all"
    cfg = WorkerConfig(
        model={**CFG.model.model_dump(), **model},
        train={**CFG.train.model_dump(), "supervise": supervise},
        forecast=CFG.forecast,
        season_length=24,
    )
    result = forecast_batch(["x"], [series()], cfg, num_threads=1)[0]
    assert result.status == "ok" and np.isfinite(result.forecast).all()
    assert result.forecast.shape == (5,) and result.backtest.shape == (1, 6)


def test_rolling_windows_each_see_only_their_own_past():
    cfg = CFG.model_copy(
        update={"forecast": CFG.forecast.model_copy(update={"n_windows": 3, "step": 4})}
    )
    values = series(100)
    result = forecast_batch(["x"], [values], cfg, num_threads=1)[0]
    assert result.backtest.shape == (3, 6) and len(result.window_metrics) == 3
    assert cfg.cutoffs(100) == [94, 90, 86]
    tampered = values.copy()
    tampered[90:] += 100.0  # after window 1's and 2's cut-offs, inside window 0's history
    again = forecast_batch(["x"], [tampered], cfg, num_threads=1)[0]
    np.testing.assert_array_equal(result.backtest[1:], again.backtest[1:])
    assert not np.array_equal(result.backtest[0], again.backtest[0])
    mean_mae = np.mean([w["mae"] for w in result.window_metrics])
    assert result.metrics["mae"] == pytest.approx(mean_mae)


def test_bidirectional_with_every_step_supervised_is_refused():
    with pytest.raises(ValueError, match="bidirectional"):
        WorkerConfig(model={"bidirectional": True}, train={"supervise": "all"})


def test_a_short_series_falls_back_or_is_skipped_and_a_broken_one_fails_alone():
    ids, values = ["short", "nan", "ok"], [series(10), np.full(80, np.nan), series()]
    results = forecast_batch(ids, values, CFG, num_threads=1)
    assert [r.status for r in results] == ["fallback", "failed", "ok"]
    assert "fewer than the" in results[0].reason and results[0].baseline == "statistical"
    assert results[0].forecast.shape == (5,) and results[1].reason
    skip = CFG.forecast.model_copy(update={"short_series": "skip"})
    skipped = forecast_batch(ids, values, CFG.model_copy(update={"forecast": skip}), 1)
    assert [r.status for r in skipped] == ["skipped", "failed", "ok"]
