"""What the driver sends a shard's task and what the task sends back: the task's side of
the Ray boundary, beside the code that runs there (``lstm_worker.shard.run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa

from lstm_worker import WorkerConfig
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.place import Place
from lstm_worker.search import SearchSpec, Setting


class Phase(StrEnum):
    """What a task does with its shard (the passes: ``cluster.passes``)."""

    FINAL = "final"  # train every setting, choose per series, write the parts
    SEARCH = "search"  # a job's choice, pass 1: train every setting, keep the results
    CHOOSE = "choose"  # a job's choice, pass 2: write the parts with what the job chose


@dataclass(frozen=True)
class JobChoice:
    """What the job chose for all its series from the whole table's backtest."""

    setting: int | None = None  # search.select: global; None: each series' best setting
    lstm_weight: float = 1.0  # forecast.lstm_weight (auto: the best on the backtest)
    table_share: float = 0.0  # table.share: the table model's share of the LSTM's forecast
    quantiles: dict[int, tuple[float, ...]] = field(default_factory=dict)  # level -> per
    # step: the pooled conformal quantiles of scaled residuals (lstm_worker.intervals)


LSTM_ALONE = JobChoice()  # nothing chosen for the table: each series' best setting, its LSTM


HEDGE = 0.5  # the even mix: the share and the weight a choice departs from (BlendSum)


@dataclass(frozen=True)
class BlendSum:
    """One (table share, LSTM weight) pair's backtest metric summed over series, and the
    squares of its per-series difference to the even mix of each kind summed (to the same
    share at weight ``HEDGE``, and to share ``HEDGE`` at the same weight): what tells a
    real difference from one backtest window's noise (``cluster.passes.choose_blend``)."""

    total: float = 0.0
    count: int = 0
    weight_spread: float = 0.0  # sum of (m(share, weight) - m(share, HEDGE))^2
    share_spread: float = 0.0  # sum of (m(share, weight) - m(HEDGE, weight))^2

    def __add__(self, other: BlendSum) -> BlendSum:
        return BlendSum(
            self.total + other.total,
            self.count + other.count,
            self.weight_spread + other.weight_spread,
            self.share_spread + other.share_spread,
        )


@dataclass(frozen=True)
class Placement:
    """Where a shard was trained, as written in metrics.parquet."""

    node_id: str = ""
    gpu_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ShardSummary:
    """What a task sends back: counts, never rows."""

    counts: dict[str, int]  # status -> series
    scores: dict[int, tuple[float, int]] = field(default_factory=dict)  # setting -> (sum, n)
    blend_sums: dict[tuple[float, float], BlendSum] = field(
        default_factory=dict
    )  # (table share, LSTM weight) -> its sums
    residuals: dict[tuple[float, float], np.ndarray] = field(
        default_factory=dict
    )  # (share, weight) -> (rows, H) scaled absolute backtest residuals of pooled series
    seconds: float = 0.0  # the task's own run time, its worker's imports included


@dataclass(frozen=True)
class JobContext:
    """What every task of a job shares: put in the object store once."""

    input: InputSpec  # its path is the table tasks read (the prepared copy, if any)
    files: list[str]  # the input's files, as the index numbers them
    schema: pa.Schema  # the input dataset's: one type per column across files
    freq: pd.offsets.BaseOffset | int  # the input's, inferred on the driver from its first series
    cfg: WorkerConfig  # the spec's own; each setting's is in ``configs``
    settings: list[Setting]
    configs: list[WorkerConfig]
    search: SearchSpec
    out: Place
    digest: str  # the spec's, kept with the models a task stores
    warm_start: str | None  # train.warm_start, resolved: the run whose models start training
    from_models: str | None  # forecast.from_models, resolved: the run whose models forecast
    ledger_previous: str | None  # ledger.previous, resolved: the run whose forecasts are scored
    ledger_of: str = ""  # that run's id
    pooled: float = 1.0  # the share of series whose residuals are pooled for the intervals


@dataclass(frozen=True)
class Shard:
    """Series ``start:stop`` of the index; ``index`` names the task and its output parts.

    ``segments`` are the rows to read: (file number, first row, stop row), one per file
    the shard's series lie in.
    """

    index: int
    start: int
    stop: int
    segments: tuple[tuple[int, int, int], ...] = ()

    def __len__(self) -> int:
        return self.stop - self.start
