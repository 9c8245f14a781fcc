"""The grouped trainer: K stacked models behave exactly like K separate ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_worker import WorkerConfig, run_shard
from lstm_worker.shard_train import train_stacked
from lstm_worker.stacked import StackedLSTM, stacked_forecast
from lstm_worker.model import LSTMForecaster

CFG = WorkerConfig(
    model={"lookback": 12, "hidden_size": 8, "num_layers": 2, "head": "mlp",
           "seasonal_skip": True},
    train={"epochs": 6, "batch_size": 16, "supervise": "all", "patience": 2, "lr": 0.01},
    forecast={"horizon": 5, "holdout": 6},
    season_length=24,
)


def scaled_series(seed: int, length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return (np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, length)).astype(np.float32)


SERIES = [scaled_series(0, 90), scaled_series(1, 70), scaled_series(2, 120)]  # unequal lengths


def test_grouped_model_equals_nn_lstm_initialised_with_the_same_seed():
    model = StackedLSTM(CFG.model, seeds=[11, 12])
    x = torch.randn(2, 3, 20, 2)  # (K, B, T, I)
    out, _ = model(x)
    for k, seed in enumerate([11, 12]):
        torch.manual_seed(seed)
        single = LSTMForecaster(CFG.model)
        torch.testing.assert_close(out[k], single(x[k])[0], rtol=1e-5, atol=1e-6)
        single.load_state_dict(model.state_for(k))  # and back to a plain state dict
        torch.testing.assert_close(out[k], single(x[k])[0], rtol=1e-5, atol=1e-6)


def test_changing_one_series_changes_no_other_gradient_bitwise():
    x = torch.randn(3, 4, 12, 2)
    grads = []
    for data in (x, torch.cat([x[:1], x[1:2] * 5 + 1, x[2:]])):
        model = StackedLSTM(CFG.model, seeds=[1, 2, 3])
        pred, _ = model(data)
        pred.square().mean(dim=(1, 2)).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for before, after in zip(*grads):
        assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
        assert not torch.equal(before[1], after[1])


def test_changing_one_series_changes_no_other_forecast_bitwise():
    def forecasts(series):
        fit = train_stacked(series, CFG, seeds=[1, 2, 3], device=torch.device("cpu"))
        context = torch.from_numpy(np.stack([s[-40:] for s in series]))
        return stacked_forecast(fit.model, context, 5, CFG.lag), fit

    before, fit_before = forecasts(SERIES)
    changed = [SERIES[0], SERIES[1][::-1].copy() * 3, SERIES[2]]
    after, fit_after = forecasts(changed)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])
    rows = min(len(fit_before.train_losses), len(fit_after.train_losses))
    np.testing.assert_array_equal(fit_before.train_losses[:rows, [0, 2]],
                                  fit_after.train_losses[:rows, [0, 2]])


def test_stacked_training_gives_the_losses_of_training_each_alone():
    together = train_stacked(SERIES, CFG, seeds=[1, 2, 3], device=torch.device("cpu"))
    for k, (series, seed) in enumerate(zip(SERIES, [1, 2, 3])):
        alone = train_stacked([series], CFG, seeds=[seed], device=torch.device("cpu"))
        assert together.epochs[k] == alone.epochs[0]
        ran = int(alone.epochs[0])
        np.testing.assert_allclose(together.train_losses[:ran, k], alone.train_losses[:ran, 0],
                                   rtol=1e-5)
    assert (together.epochs >= 1).all()


def test_models_stop_early_on_their_own():
    cfg = CFG.model_copy(update={"train": CFG.train.model_copy(update={"epochs": 40})})
    fit = train_stacked(SERIES, cfg, seeds=[1, 2, 3], device=torch.device("cpu"))
    assert len(set(fit.epochs.tolist())) > 1  # each model stopped when its own loss stalled
    ran = fit.train_losses.shape[0]
    for k, epochs in enumerate(fit.epochs):
        assert np.isnan(fit.train_losses[epochs:ran, k]).all()


@pytest.mark.parametrize("trainer", ["stacked", "reference"])
def test_both_trainers_forecast_every_series(trainer):
    cfg = CFG.model_copy(update={"train": CFG.train.model_copy(update={"trainer": trainer})})
    values = [50 + 10 * s.astype(np.float64) for s in SERIES]
    results = run_shard(["a", "b", "c"], values, cfg, num_threads=1)
    assert [r.status for r in results] == ["ok"] * 3
    assert all(len(r.forecast) == 5 and np.isfinite(r.forecast).all() for r in results)


def test_a_diverging_series_fails_alone():
    values = [50 + 10 * s.astype(np.float64) for s in SERIES]
    values[1] = values[1].copy()
    values[1][10] = np.nan  # NaN inside the training part
    results = run_shard(["a", "b", "c"], values, CFG, num_threads=1)
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    alone = run_shard(["a"], values[:1], CFG, num_threads=1)[0]
    np.testing.assert_array_equal(alone.forecast, results[0].forecast)
