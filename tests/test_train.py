"""The trainer: K stacked models behave exactly like K separate ones, and a stack of one
exactly like the plain PyTorch loop (``tests/reference_loop.py``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lstm_worker import WorkerConfig, forecast_batch
from lstm_worker.fit import forecast_many, forecast_stored
from lstm_worker.inputs import LEVEL
from lstm_worker.model import LSTMForecaster
from lstm_worker.pools import make_pool
from lstm_worker.result import StoredModel
from lstm_worker.stacked import StackedLSTM, _drawn
from lstm_worker.train import train_stacked
from lstm_worker.views import FittedView, model_view
from lstm_worker.windows import context_extra
from tests.reference_loop import reference_forecast

CFG = WorkerConfig(
    model={"lookback": 12, "hidden_size": 8, "num_layers": 2, "head": "mlp", "skip": "season"},
    train={"epochs": 6, "batch_size": 16, "supervise": "all", "patience": 2, "lr": 0.01},
    forecast={"horizon": 5, "holdout": 6},
    season_length=24,
    seasons=(24,),
)


def scaled_series(seed: int, length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return (np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, length)).astype(np.float32)


SERIES = [scaled_series(0, 90), scaled_series(1, 70), scaled_series(2, 120)]  # unequal lengths


def pools(series, cfg=CFG):
    views = [model_view(s, cfg) for s in series]
    extra = context_extra(cfg.seasons)
    return [make_pool([v], cfg, extra) for v in views]


def randomised(model: StackedLSTM) -> StackedLSTM:
    """Random weights everywhere: the head starts at zero, which would hide the rest."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.3)
    return model


BIDIRECTIONAL = CFG.model.model_copy(update={"bidirectional": True})


@pytest.mark.parametrize("model_cfg", [CFG.model, BIDIRECTIONAL], ids=["one way", "both ways"])
def test_stacked_model_equals_nn_lstm_initialised_with_the_same_seed(model_cfg):
    model = StackedLSTM(model_cfg, seeds=[11, 12])
    for k, seed in enumerate([11, 12]):
        torch.manual_seed(seed)
        single = LSTMForecaster(model_cfg)
        state = model.state_for(k)
        assert state.keys() == single.state_dict().keys()
        for name, weight in single.state_dict().items():
            if name.startswith("lstm.bias"):
                continue  # the stack folds both biases into one
            torch.testing.assert_close(state[name], weight)
        torch.testing.assert_close(
            state["lstm.bias_ih_l1"], single.lstm.bias_ih_l1 + single.lstm.bias_hh_l1
        )
    x = torch.randn(2, 3, 20, 2)  # (K, B, T, 2)
    out, _ = randomised(model)(x)
    for k in range(2):
        single.load_state_dict(model.state_for(k))  # the same model as a plain nn.LSTM
        torch.testing.assert_close(out[k], single(x[k])[0], rtol=1e-5, atol=1e-6)


LINEAR_HEAD = CFG.model.model_copy(update={"head": "linear", "num_layers": 1})


@pytest.mark.parametrize(
    ("model_cfg", "inputs"),
    [(CFG.model, 2), (BIDIRECTIONAL, 2), (LINEAR_HEAD, 5), (BIDIRECTIONAL, 4)],
    ids=["mlp head", "both ways", "linear head, known inputs", "both ways, known inputs"],
)
def test_a_stacks_initial_weights_are_the_modules_draws_exactly(model_cfg, inputs):
    # drawn without building the modules (_drawn), and the generator left as they leave it
    drawn = _drawn(model_cfg, inputs, 7)
    after = torch.random.get_rng_state()
    torch.manual_seed(7)
    single = LSTMForecaster(model_cfg, inputs)
    assert torch.equal(after, torch.random.get_rng_state())
    assert drawn.lstm.keys() == dict(single.lstm.named_parameters()).keys()
    for name, weight in single.lstm.named_parameters():
        assert torch.equal(drawn.lstm[name], weight.detach()), name
    linears = [m for m in single.head.modules() if isinstance(m, torch.nn.Linear)]
    for (weight, bias), linear in zip(drawn.head, linears, strict=True):
        assert torch.equal(weight, linear.weight.detach()) and torch.equal(bias, linear.bias)


@pytest.mark.parametrize("model_cfg", [CFG.model, BIDIRECTIONAL], ids=["one way", "both ways"])
def test_left_padding_computes_exactly_what_the_unpadded_rows_would(model_cfg):
    model = randomised(StackedLSTM(model_cfg, seeds=[1, 2]))
    x = torch.randn(2, 3, 20, 2)
    padded = torch.cat([torch.zeros(2, 3, 7, 2), x], dim=2)  # (K, B, 27, 2)
    out, state = model(padded, start=torch.full((2, 3), 7))
    alone, alone_state = model(x)
    torch.testing.assert_close(out[:, :, 7:], alone, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(state[-1][0], alone_state[-1][0], rtol=1e-6, atol=1e-6)


def test_changing_one_series_changes_no_other_gradient_bitwise():
    x = torch.randn(3, 4, 12, 2)
    grads = []
    for data in (x, torch.cat([x[:1], x[1:2] * 5 + 1, x[2:]])):
        model = randomised(StackedLSTM(CFG.model, seeds=[1, 2, 3]))
        pred, _ = model(data)
        pred.square().mean(dim=(1, 2)).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for before, after in zip(*grads, strict=True):
        assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
        assert not torch.equal(before[1], after[1])


CPU = torch.device("cpu")


def test_changing_one_series_changes_no_other_forecast_bitwise():
    before = forecast_many(SERIES, 5, CFG, seeds=[1, 2, 3], device=CPU)
    changed = [SERIES[0], SERIES[1][::-1].copy() * 3, SERIES[2]]
    after = forecast_many(changed, 5, CFG, seeds=[1, 2, 3], device=CPU)
    np.testing.assert_array_equal(before.forecasts[[0, 2]], after.forecasts[[0, 2]])
    assert not np.array_equal(before.forecasts[1], after.forecasts[1])
    rows = min(len(before.fit.train_losses), len(after.fit.train_losses))
    np.testing.assert_array_equal(
        before.fit.train_losses[:rows, [0, 2]], after.fit.train_losses[:rows, [0, 2]]
    )


def test_a_warm_model_whose_skip_input_changed_trains_longer():
    cfg = CFG.model_copy(
        update={
            "train": CFG.train.model_copy(
                update={"patience": 5, "warm_epochs": 1, "warm_epochs_new_skip": 3}
            )
        }
    )
    cold = forecast_many(SERIES[:1], 5, cfg, seeds=[1], device=CPU)
    fitted = FittedView.of(cold.views[0])
    assert fitted.lag != LEVEL
    stored = [
        StoredModel(-1, cold.fit.model.model_params()[0], fitted, 1),
        StoredModel(-1, cold.fit.model.model_params()[0], replace(fitted, lag=LEVEL), 1),
    ]
    warm = forecast_many([SERIES[0]] * 2, 5, cfg, seeds=[1, 1], device=CPU, warm=stored)
    np.testing.assert_array_equal(warm.fit.epochs, [1, 3])
    assert [v.lag for v in warm.views] == [fitted.lag] * 2  # both see tonight's skip input


# 20 to 600 points: windows shorter than the lookback, lags that do not fit, long series
MIXED = [scaled_series(3, 12), scaled_series(4, 600), scaled_series(5, 33), *SERIES]


@pytest.mark.parametrize("series", [SERIES, MIXED], ids=["similar", "very different lengths"])
def test_stacked_training_trains_each_exactly_as_alone(series):
    seeds = list(range(1, len(series) + 1))
    together = forecast_many(series, 5, CFG, seeds, CPU)
    lookbacks = {v.lookback for v in together.views}
    if series is SERIES:  # similar series: every window the configured lookback
        assert lookbacks == {CFG.model.lookback}
    else:  # very different lengths: the short ones' windows shorter
        assert len(lookbacks) > 1 and max(lookbacks) == CFG.model.lookback
    for k, (one, seed) in enumerate(zip(series, seeds, strict=True)):
        alone = forecast_many([one], 5, CFG, [seed], CPU)
        assert together.fit.epochs[k] == alone.fit.epochs[0]
        ran = int(alone.fit.epochs[0])
        np.testing.assert_allclose(
            together.fit.train_losses[:ran, k], alone.fit.train_losses[:ran, 0], rtol=1e-5
        )
        np.testing.assert_allclose(together.forecasts[k], alone.forecasts[0], rtol=1e-4, atol=1e-5)
    assert (together.fit.epochs >= 1).all()


def test_a_16_point_and_a_900_point_series_train_in_one_stack_each_as_alone():
    quarterly = WorkerConfig(
        model={"lookback": 12, "hidden_size": 8},
        train={"epochs": 4},
        forecast={"horizon": 8},
        season_length=4,
        seasons=(4,),
    )
    assert quarterly.min_series_points() == 16  # two seasons and the horizon
    values = [20 + 3 * scaled_series(6, 16).astype(np.float64), 50 + scaled_series(7, 900)]
    together = forecast_batch(["short", "long"], values, quarterly, num_threads=1)
    for one, series_id, series in zip(together, ["short", "long"], values, strict=True):
        alone = forecast_batch([series_id], [series], quarterly, num_threads=1)[0]
        assert one.status == alone.status == "ok" and one.backtest.shape == (1, 8)
        assert one.epochs == alone.epochs and one.inputs == alone.inputs
        np.testing.assert_allclose(one.forecast, alone.forecast, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(one.backtest, alone.backtest, rtol=1e-4, atol=1e-5)
    assert together[0].inputs["val_size"] == 0 and together[1].inputs["val_size"] == 8


def test_a_theta_skip_model_forecasts_the_same_from_the_store():
    cfg = CFG.model_copy(update={"model": CFG.model.model_copy(update={"skip": "theta"})})
    trend = [s + 0.05 * np.arange(len(s), dtype=np.float32) for s in SERIES]
    fitted = forecast_many(trend, 5, cfg, [1, 2, 3], CPU)
    assert all(v.skip == "theta" and v.drift > 0 for v in fitted.views)
    stored = [
        StoredModel(-1, fitted.fit.model.model_params()[k], FittedView.of(view), 1)
        for k, view in enumerate(fitted.views)
    ]
    np.testing.assert_array_equal(forecast_stored(trend, stored, 5, cfg, CPU), fitted.forecasts)


def test_a_shared_start_fine_tunes_one_model_per_series_from_tied_weights():
    train = CFG.train.model_copy(update={"shared_start": True, "epochs": 20, "patience": 5})
    cfg = CFG.model_copy(update={"train": train})
    series = [scaled_series(seed, 150) for seed in range(4)]
    stack = forecast_many(series, 5, cfg, [1, 2, 3, 4], CPU, groups=[0, 0, 1, 1])
    assert stack.shared is not None and stack.shared.model.k == 2  # one per group
    assert (stack.shared.epochs > 1).all() and np.isfinite(stack.forecasts).all()
    heads = [stack.fit.model.state_for(k)["head.2.weight"] for k in range(4)]
    assert not torch.equal(heads[0], heads[1])  # each series fine-tuned its own copy
    alone = forecast_many(
        series,
        5,
        CFG.model_copy(update={"train": train.model_copy(update={"shared_start": False})}),
        [1, 2, 3, 4],
        CPU,
    )
    assert not np.array_equal(stack.forecasts, alone.forecasts)


def test_models_stop_early_on_their_own():
    cfg = CFG.model_copy(update={"train": CFG.train.model_copy(update={"epochs": 40})})
    fit = train_stacked(pools(SERIES, cfg), cfg, seeds=[1, 2, 3], device=CPU)
    assert len(set(fit.epochs.tolist())) > 1  # each model stopped when its own loss stalled
    ran = fit.train_losses.shape[0]
    for k, epochs in enumerate(fit.epochs):
        assert np.isnan(fit.train_losses[epochs:ran, k]).all()


@pytest.mark.parametrize(
    "model, train",
    [
        ({}, {}),
        ({"bidirectional": True, "num_layers": 2}, {"supervise": "last", "batch_size": 32}),
        ({"head": "linear", "num_layers": 1}, {"loss": "mse", "weight_decay": 0.01}),
    ],
    ids=["default", "bidirectional", "linear, mse, weight decay"],
)
def test_a_stack_of_one_trains_exactly_as_the_plain_pytorch_loop(model, train):
    cfg = CFG.model_copy(
        update={
            "model": CFG.model.model_copy(update=model),
            "train": CFG.train.model_copy(update={"epochs": 5, **train}),
        }
    )
    stack = forecast_many(SERIES[2:], 5, cfg, [7], CPU)
    forecast, epochs, losses = reference_forecast(SERIES[2], 5, cfg, seed=7)
    assert stack.fit.epochs[0] == epochs
    np.testing.assert_allclose(stack.fit.train_losses[:epochs, 0], losses, rtol=1e-4)
    np.testing.assert_allclose(stack.forecasts[0], forecast, rtol=1e-4, atol=1e-5)


def test_a_bidirectional_model_forecasts_every_series_with_its_backtest():
    cfg = CFG.model_copy(
        update={
            "model": BIDIRECTIONAL,
            "train": CFG.train.model_copy(update={"supervise": "last"}),
        }
    )
    values = [50 + 10 * s.astype(np.float64) for s in MIXED[1:]]  # 33 points: left padding
    results = forecast_batch(list("abcde"), values, cfg, num_threads=1)
    assert [r.status for r in results] == ["ok"] * 5
    assert all(len(r.forecast) == 5 and np.isfinite(r.forecast).all() for r in results)
    assert all(r.backtest.shape == (1, 6) for r in results)
    alone = forecast_batch(["b"], values[1:2], cfg, num_threads=1)[0]
    np.testing.assert_allclose(alone.forecast, results[1].forecast, rtol=1e-4, atol=1e-4)


def test_a_diverging_series_fails_alone():
    values = [50 + 10 * s.astype(np.float64) for s in SERIES]
    values[1] = values[1].copy()
    values[1][10] = np.nan  # NaN inside the training part
    results = forecast_batch(["a", "b", "c"], values, CFG, num_threads=1)
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    alone = forecast_batch(["a"], values[:1], CFG, num_threads=1)[0]
    np.testing.assert_array_equal(alone.forecast, results[0].forecast)
