"""Known future inputs in the worker: a series driven by a covariate is forecast from it,
the recursive forecast reads each future step's covariate, and nothing of a holdout's
covariates reaches the scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lstm_worker import forecast_batch
from lstm_worker.calendar import calendar_for, calendar_inputs
from lstm_worker.config import ForecastConfig, ModelConfig, TrainConfig, WorkerConfig
from lstm_worker.fit import forecast_many
from lstm_worker.forecast import recursive_forecast
from lstm_worker.inputs import Scaler, model_inputs
from lstm_worker.model import LSTMForecaster
from lstm_worker.pools import make_pool
from lstm_worker.result import StoredModel
from lstm_worker.train import train_stacked
from lstm_worker.views import FittedView, model_view
from lstm_worker.windows import context_extra, forecast_context, make_windows

CFG = WorkerConfig(
    model=ModelConfig(lookback=18, hidden_size=16),
    train=TrainConfig(shared_start=True),
    forecast=ForecastConfig(horizon=12),
    features=("promo",),
)


def _promoted(n_series: int, n: int, horizon: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Series that are 20, or 28 on the days of a promotion (one in five), and nothing else."""
    rng = np.random.default_rng(0)
    promos = [(rng.random(n + horizon) < 0.2).astype(float) for _ in range(n_series)]
    return [20 + 8 * p for p in promos], [p[:, None] for p in promos]


def test_a_series_driven_only_by_a_known_covariate_is_forecast_from_it():
    n, horizon = 200, CFG.forecast.horizon
    values, tracks = _promoted(8, n, horizon)
    ids = [f"s{i}" for i in range(8)]
    known = forecast_batch(ids, [v[:n] for v in values], CFG, 1, covariates=tracks)
    blind = forecast_batch(ids, [v[:n] for v in values], CFG.model_copy(update={"features": ()}), 1)
    for with_it, without, truth in zip(known, blind, values, strict=True):
        error = np.abs(with_it.forecast - truth[n:]).mean()
        assert error < 0.05 * 8, error  # within 5% of the promotion's lift
        assert error < np.abs(without.forecast - truth[n:]).mean() / 5


def test_the_recursive_forecast_reads_each_future_steps_covariate_at_that_step():
    torch.manual_seed(0)
    model = LSTMForecaster(CFG.model, inputs=3).eval()
    for p in [*model.head.parameters(), model.lstm.weight_ih_l0]:  # not zero: every input counts
        torch.nn.init.normal_(p, std=0.5)
    history, horizon, length = torch.randn(2, 30), 6, 18
    lags = torch.tensor([1, 0])
    known = torch.randn(2, 30 + horizon, 1)
    predicted = recursive_forecast(model, history, lags, horizon, length, covariates=known)
    grown = history
    for step in range(horizon):  # read whole from the same start: row i predicts position i
        inputs = model_inputs(grown, lags, known[:, 1 : grown.shape[1] + 1])[:, -(length + step) :]
        expected = model(inputs)[0][:, -1]
        torch.testing.assert_close(predicted[:, step], expected, rtol=1e-4, atol=1e-5)
        grown = torch.cat([grown, predicted[:, step : step + 1]], dim=1)
    for step in range(horizon):  # a change to step k's covariate moves step k on, not before
        changed = known.clone()
        changed[:, 30 + step] += 3.0
        again = recursive_forecast(model, history, lags, horizon, length, covariates=changed)
        torch.testing.assert_close(again[:, :step], predicted[:, :step])
        assert (again[:, step] - predicted[:, step]).abs().min() > 1e-4


def test_a_model_with_known_inputs_starts_as_the_same_seeds_model_without_them():
    torch.manual_seed(3)
    plain = LSTMForecaster(CFG.model)
    torch.manual_seed(3)
    known = LSTMForecaster(CFG.model, inputs=5)
    for model in (plain, known):  # a trained head, the same for both
        torch.manual_seed(9)
        torch.nn.init.normal_(model.head.weight)
    x = torch.randn(4, 10, 5)
    torch.testing.assert_close(known(x)[0], plain(x[..., :2])[0], rtol=0, atol=0)


def test_the_holdouts_covariates_never_reach_the_scaling():
    n, horizon = 120, CFG.forecast.horizon
    (values,), (track,) = _promoted(1, n, horizon)
    track = np.c_[track, np.linspace(1, 2, n + horizon)]  # and a price that keeps rising
    cfg = CFG.model_copy(update={"features": ("promo", "price")})
    cut = n - horizon  # a backtest's history: its holdout's covariates are in the track
    view = model_view(values[:cut], cfg, track)
    other = track.copy()
    other[cut:] *= 100  # whatever the holdout and horizon hold
    again = model_view(values[:cut], cfg, other)
    assert view.covariate_scaler is not None and again.covariate_scaler is not None
    np.testing.assert_array_equal(view.covariate_scaler.shift, again.covariate_scaler.shift)
    np.testing.assert_array_equal(view.covariates[:cut], again.covariates[:cut])
    price = Scaler.fit(track[:cut, 1], "standard")  # fitted on the training part alone
    assert view.covariate_scaler.shift[1] == price.shift
    assert view.covariate_scaler.scale[1] == price.scale
    windows = make_windows(view, cfg.lookback, cfg.train)  # no training input past the fit part
    np.testing.assert_array_equal(windows.x[..., 2:], make_windows(again, 18, cfg.train).x[..., 2:])
    context = forecast_context(view, cut, cfg.lookback, 0, horizon)
    assert context.covariates is not None and context.covariates.shape == (18 + horizon, 2)
    np.testing.assert_array_equal(context.covariates[18:], view.covariates[cut : cut + horizon])


def test_calendar_inputs_are_cycles_and_auto_follows_the_frequency():
    times = pd.date_range("2024-12-30 22:00", periods=4, freq="h").to_numpy()
    encoded = calendar_inputs(times, ["hour", "month"])
    assert encoded.shape == (4, 4)
    np.testing.assert_allclose(np.hypot(encoded[:, 0], encoded[:, 1]), 1, rtol=1e-6)
    np.testing.assert_allclose(encoded[2, :2], [0, 1], atol=1e-6)  # midnight: the cycle's start
    offset = pd.tseries.frequencies.to_offset  # auto: the cycles that fit in the window
    assert calendar_for(offset("h"), 72) == ("hour",)
    assert calendar_for(offset("h"), 168) == ("hour", "dayofweek")
    assert calendar_for(offset("D"), 42) == ("dayofweek",)
    assert calendar_for(offset("D"), 400) == ("dayofweek", "dayofyear")
    assert calendar_for(offset("W"), 78) == ("weekofyear",)
    assert calendar_for(offset("W"), 20) == ()
    assert calendar_for(offset("MS"), 27) == ("month",)
    assert calendar_for(offset("QS"), 12) == ("quarter",)
    assert calendar_for(offset("YS"), 6) == () and calendar_for(1, 100) == ()


def _hour_driven(n: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """A series that is its hour of the day's level and noise, and its calendar track."""
    times = pd.date_range("2024-01-01", periods=n + horizon, freq="h").to_numpy()
    rng = np.random.default_rng(1)
    values = (
        10 + 3 * np.sin(2 * np.pi * np.arange(n + horizon) / 24) + rng.normal(0, 0.2, n + horizon)
    )
    return values, calendar_inputs(times, ["hour"])


CALENDAR = WorkerConfig(  # a window too short to see the day: only the calendar can
    model=ModelConfig(lookback=6, hidden_size=8, calendar=["hour"], skip="last"),
    train=TrainConfig(epochs=30, lr=0.01),
    forecast=ForecastConfig(horizon=12),
)


def test_a_series_keeps_the_calendar_only_where_it_forecasts_its_validation_tail_better():
    n, horizon = 400, CALENDAR.forecast.horizon
    values, track = _hour_driven(n, horizon)
    walk = 10 + np.cumsum(np.random.default_rng(2).normal(0, 0.3, n))  # the hour tells nothing
    plain_cfg = CALENDAR.model_copy(
        update={"model": CALENDAR.model.model_copy(update={"calendar": None})}
    )
    extra, cpu = context_extra(CALENDAR.seasons), torch.device("cpu")
    histories = [values[:n], walk]
    pools = [make_pool([model_view(h, CALENDAR, track)], CALENDAR, extra) for h in histories]
    hold = np.zeros((2, CALENDAR.inputs), dtype=bool)
    hold[:, CALENDAR.calendar_rows] = True
    held = train_stacked(pools, CALENDAR, [5, 6], cpu, hold=hold)
    plain_pools = [make_pool([model_view(h, plain_cfg)], plain_cfg, extra) for h in histories]
    plain = train_stacked(plain_pools, plain_cfg, [5, 6], cpu)
    # held at zero, the calendar's weights leave the same seed's model without it
    assert held.model.w_ih[0][:, CALENDAR.calendar_rows].abs().max() == 0
    for (name, a), b in zip(held.model.named_parameters(), plain.model.parameters(), strict=True):
        a = a[:, :2] if name == "w_ih.0" else a
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    with_it = train_stacked(pools, CALENDAR, [5, 6], cpu)
    kept = forecast_many(histories, horizon, CALENDAR, [5, 6], cpu, covariates=[track, track])
    np.testing.assert_allclose(
        kept.fit.best_loss, np.minimum(with_it.best_loss, plain.best_loss), rtol=1e-5
    )
    assert with_it.best_loss[0] < plain.best_loss[0] / 1.2  # the hour-driven one keeps it
    np.testing.assert_array_equal(kept.calendar, with_it.best_loss < plain.best_loss)
    # a warm start keeps what its stored model chose: a dropped calendar stays at zero
    params = kept.fit.model.model_params()[0]
    dropped = {**params, "w_ih.0": params["w_ih.0"].copy()}
    dropped["w_ih.0"][CALENDAR.calendar_rows] = 0
    view = FittedView.of(kept.views[0])
    stored = [StoredModel(-1, params, view, 1), StoredModel(-1, dropped, view, 1)]
    warm = forecast_many(
        [values[:n]] * 2, horizon, CALENDAR, [5, 5], cpu, warm=stored, covariates=[track] * 2
    )
    np.testing.assert_array_equal(warm.calendar, [True, False])
    assert warm.fit.model.w_ih[0][1, CALENDAR.calendar_rows].abs().max() == 0
    # and learns what its window cannot see
    (calendar,) = forecast_batch(["s"], [values[:n]], CALENDAR, 1, covariates=[track])
    (without,) = forecast_batch(["s"], [values[:n]], plain_cfg, 1)
    error = np.abs(calendar.forecast - values[n:]).mean()
    assert error < np.abs(without.forecast - values[n:]).mean() / 1.2, error
