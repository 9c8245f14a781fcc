"""The hyper-parameter fan-out: a grid (or a random sample of it) of model and training
settings, each trained on every series, then chosen per series on the backtest."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from lstm_worker.config import Strict
from lstm_worker.names import Baseline

SEARCHABLE = ("model.", "train.")


class SearchSpec(Strict):
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="'model.X' or 'train.X' (or 'seed') to the values to try; every "
        "combination is a setting",
    )
    samples: int | None = Field(
        None, ge=1, description="try this many random combinations of the grid; null: all"
    )
    metric: Literal["mase", "smape", "mae", "rmse"] = Field(
        "mase", description="backtest metric that picks the best setting"
    )
    select: Literal["per_series", "global"] = Field(
        "per_series", description="best setting for each series, or one for all"
    )
    top_k: int = Field(1, ge=1, description="average the forecasts of the k best settings")
    fallback: list[Baseline] = Field(
        default_factory=list,
        description="baselines that replace the chosen LSTM where they beat it on the "
        "backtest (status fallback, model says which); [] never falls back",
    )

    @field_validator("grid")
    @classmethod
    def _searchable(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if key != "seed" and not key.startswith(SEARCHABLE):
                raise ValueError(f"{key!r}: only model.*, train.* and seed can be searched")
            if not values:
                raise ValueError(f"{key!r}: give at least one value")
        return grid


@dataclass(frozen=True)
class Setting:
    """One combination: its index (the order of expansion) and the fields it changes."""

    index: int
    overrides: dict[str, Any]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides.items())


def expand(search: SearchSpec | None, seed: int) -> list[Setting]:
    """All combinations in grid order, or ``samples`` of them drawn with the job's seed."""
    if search is None or not search.grid:
        return [Setting(0, {})]
    keys = list(search.grid)
    sizes = [len(search.grid[key]) for key in keys]
    total = math.prod(sizes)
    if search.samples is None or search.samples >= total:
        chosen: Sequence[int] = range(total)
    else:  # draw indices, not combinations: a large grid is never materialised
        chosen = sorted(random.Random(seed).sample(range(total), search.samples))
    settings = []
    for position, flat in enumerate(chosen):
        picks = []
        for size in reversed(sizes):  # mixed-radix digits of the flat index, last key fastest
            flat, digit = divmod(flat, size)
            picks.append(digit)
        values = [search.grid[key][digit] for key, digit in zip(keys, reversed(picks), strict=True)]
        settings.append(Setting(position, dict(zip(keys, values, strict=True))))
    return settings
