"""Train the table model and forecast with it: a training loop read top to bottom.

The network is the stacked LSTM every series' model uses (``lstm_worker.stacked``),
one model per member, with three inputs a step: the value, the baseline the model
predicts its residual over, and whether the step is a forecast one. Through the context
the baseline is the last value (naive); from the origin on it is the statistical
forecast. The head starts at zero, so the untrained model forecasts the statistical
forecast exactly.

Training forecasts recursively, as the model will be used: each window's context is
read at once, then each forecast step is fed back as the next input, and the loss (each
window's mean absolute error over its steps, times its weight: ``examples``) is taken
on the whole forecast, gradients flowing back through the recursion.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.config import ModelConfig
from lstm_worker.config.table import TableConfig
from lstm_worker.optim import clip_per_model
from lstm_worker.stacked import StackedLSTM
from lstm_worker.table.examples import Examples

INPUTS = 3  # the value, its baseline, the forecast flag
_GRAD_CLIP = 1.0  # each member's gradient norm


@dataclass(frozen=True)
class TableFit:
    model: StackedLSTM  # the trained members
    epochs: int  # epochs run
    start_loss: float  # the validation loss of the members' mean forecast at the start
    final_loss: float  # and once trained
    seconds: float


def network(cfg: TableConfig, lookback: int) -> ModelConfig:
    """The members' network: one LSTM layer of ``table.hidden_size`` and a linear head."""
    return ModelConfig(lookback=lookback, hidden_size=cfg.hidden_size)


def new_model(cfg: TableConfig, lookback: int, seeds: list[int]) -> StackedLSTM:
    """Fresh members, one per seed, each forecasting its baseline."""
    return StackedLSTM(network(cfg, lookback), seeds, INPUTS)


def stack(cfg: TableConfig, lookback: int, params: dict[str, np.ndarray]) -> StackedLSTM:
    """The members whose parameters ``params`` holds (each (members, ...)), as a stack."""
    weights = {name: torch.from_numpy(value) for name, value in params.items()}
    return StackedLSTM.from_params(network(cfg, lookback), weights)


def _tensors(examples: Examples, device: torch.device) -> dict[str, torch.Tensor]:
    fields = ("context", "start", "baseline", "target", "weight")
    return {name: torch.from_numpy(getattr(examples, name)).to(device) for name in fields}


def unroll(model: StackedLSTM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each member's recursive forecast of each window: (K, B, H), in units of its level.

    The context's last step already predicts the first forecast step (its baseline is
    that step's statistical forecast); each later step reads the one before."""
    context, baseline = batch["context"], batch["baseline"]  # (B, L), (B, H)
    k, (b, length), horizon = model.k, context.shape, baseline.shape[1]
    skip = torch.cat([context[:, :-1], baseline[:, :1]], dim=1)  # (B, L): naive, then the first
    flag = torch.zeros_like(context)
    flag[:, -1] = 1.0
    inputs = torch.stack([context, skip, flag], dim=-1)  # (B, L, 3)
    inputs = inputs[None].expand(k, b, length, INPUTS)  # (K, B, L, 3): each member reads all
    start = batch["start"][None].expand(k, b)  # (K, B)
    pred, state = model(inputs, start=start)  # (K, B, L)
    steps = [pred[..., -1]]  # each (K, B)
    ones = torch.ones_like(steps[0])
    for h in range(1, horizon):
        step = torch.stack([steps[-1], baseline[None, :, h].expand(k, b), ones], dim=-1)
        pred, state = model(step[:, :, None], state)  # (K, B, 1, 3) -> (K, B, 1)
        steps.append(pred[..., -1])
    return torch.stack(steps, dim=-1)  # (K, B, H)


def losses(forecast: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each member's mean weighted absolute error over the batch's windows: (K,)."""
    target = batch["target"]  # (B, H)
    known = torch.isfinite(target)
    error = (forecast - torch.nan_to_num(target)).abs() * known  # (K, B, H)
    per_window = error.sum(dim=-1) / known.sum(dim=-1).clamp(min=1)  # (K, B)
    return (per_window * batch["weight"]).mean(dim=-1)


@torch.no_grad()
def _validation(model: StackedLSTM, data: dict[str, torch.Tensor]) -> float:
    """The loss of the members' mean forecast: what the table model forecasts."""
    model.eval()
    return float(losses(unroll(model, data).mean(dim=0, keepdim=True), data)[0])


def train_table(
    model: StackedLSTM,
    train: Examples,
    val: Examples | None,
    cfg: TableConfig,
    epochs: int,
    seed: int,
    device: torch.device,
) -> TableFit:
    """Train ``model``'s members on ``train`` for ``epochs`` epochs (Adam, the learning
    rate falling to zero on a cosine over them, each member's gradient clipped); score
    ``val``'s forecasts at the start and at the end. The last epoch is kept: choosing
    the best epoch, or the start where it scored better, followed the noise of one
    validation origin (on the M3 Monthly and Tourism backtests one epoch of twelve was
    kept, and the table model forecast worse than either end). How much of the table
    model a forecast takes is chosen on the backtest instead (``table.share``)."""
    started = time.perf_counter()
    model = model.to(device)
    data = _tensors(train, device)
    checked = None if val is None else _tensors(val, device)
    params = list(model.parameters())
    optimiser = torch.optim.Adam(params, lr=cfg.lr)
    batches = -(-len(train) // cfg.batch_size)
    total = max(1, epochs * batches)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / total))
    )
    order = torch.Generator().manual_seed(seed)
    start_loss = _validation(model, checked) if checked else float("nan")
    for _ in range(epochs):
        model.train()
        for rows in torch.split(torch.randperm(len(train), generator=order), cfg.batch_size):
            batch = {name: tensor[rows.to(device)] for name, tensor in data.items()}
            loss = losses(unroll(model, batch), batch).sum()  # members learn apart: a sum
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
            clip_per_model(params, _GRAD_CLIP)
            optimiser.step()
            decay.step()
    final_loss = _validation(model, checked) if checked else float("nan")
    model.eval()
    seconds = time.perf_counter() - started
    return TableFit(model, epochs, start_loss, final_loss, seconds)


@torch.no_grad()
def table_forecast(model: StackedLSTM, examples: Examples, device: torch.device) -> np.ndarray:
    """The members' mean recursive forecast of each example, in its series' units: (N, H)."""
    if not len(examples):
        return np.zeros((0, examples.baseline.shape[1]))
    model = model.to(device).eval()
    mean = unroll(model, _tensors(examples, device)).mean(dim=0)  # (N, H)
    forecast: np.ndarray = mean.cpu().numpy().astype(np.float64) * examples.level[:, None]
    return forecast
