"""A shard's table forecasts: each series' backtest windows forecast by the table model
of that window, and its future by the refit's, beside its own LSTM's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lstm_worker.batch import pick_device
from lstm_worker.config import WorkerConfig
from lstm_worker.data.place import Place
from lstm_worker.data.table import SeriesTable
from lstm_worker.table.examples import cut_examples
from lstm_worker.table.fit import stack, table_forecast
from lstm_worker.table.models import TableModels, read_table
from lstm_worker.table.task import history_end, model_windows


@dataclass(frozen=True)
class TableForecast:
    """One series' table forecasts, in the input's units."""

    backtest: np.ndarray  # (W, holdout): at the series' backtest cut-offs, window 0 latest
    forecast: np.ndarray  # (horizon,) past the end of the series


def table_forecasts(
    values: Sequence[np.ndarray],
    models: TableModels,
    cfg: WorkerConfig,
    device: torch.device,
    windows: Sequence[int] | None = None,
) -> list[TableForecast | None]:
    """Each series' table forecasts (None for a series too short for a backtest window:
    it has no LSTM to mix them with), by the models of ``windows`` (default: all; [-1]:
    the future alone, as a forecast-only night needs). ``cfg``: the run's, whose horizon
    may differ from the one the models trained on (a later forecast-only night's)."""
    holdout, horizon = cfg.forecast.holdout_steps, cfg.forecast.horizon
    steps = max(holdout, horizon)
    found: dict[int, dict[int, np.ndarray]] = {
        k: {} for k, v in enumerate(values) if cfg.cutoffs(len(v))
    }
    for window in model_windows(cfg) if windows is None else windows:
        if window not in models.params:
            continue
        cuts = [(k, end) for k in found if (end := history_end(len(values[k]), window, cfg))]
        examples = cut_examples(values, cuts, steps, models.lookback, cfg)
        members = stack(models.config, models.lookback, models.params[window])
        predicted = table_forecast(members, examples, device)  # (N, steps)
        for (k, _), row in zip(cuts, predicted, strict=True):
            found[k][window] = row
    out: list[TableForecast | None] = [None] * len(values)
    for k, rows in found.items():
        backtests = [rows[w][:holdout] for w in sorted(w for w in rows if w >= 0)]
        if -1 in rows:
            backtest = np.array(backtests).reshape(len(backtests), holdout)
            out[k] = TableForecast(backtest, rows[-1][:horizon])
    return out


def shard_table_forecasts(
    table: SeriesTable, cfg: WorkerConfig, path: Place
) -> list[TableForecast | None]:
    """The table forecasts of a shard's usable series from the table model at ``path``;
    all None where the run has none (``table.enabled: false``, or its task failed)."""
    if not cfg.table.enabled or not path.exists():
        return [None] * len(table)
    models = read_table(path)
    usable = table.usable()
    found = table_forecasts([table.values[p] for p in usable], models, cfg, pick_device())
    by_position = dict(zip(usable, found, strict=True))
    return [by_position.get(p) for p in range(len(table))]
