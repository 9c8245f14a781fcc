"""Everything one task needs, resolved by the driver."""

from __future__ import annotations

from pydantic import Field, model_validator

from lstm_worker.config.forecast import LSTM_WEIGHTS, MIN_FIT_POINTS, ForecastConfig
from lstm_worker.config.model import ModelConfig
from lstm_worker.config.strict import Strict
from lstm_worker.config.table import TABLE_SHARES, TABLE_STEPS, TABLE_WINDOWS, TableConfig
from lstm_worker.config.train import TrainConfig


class WorkerConfig(Strict):
    """Everything one task needs, resolved by the driver (no ``None`` left to guess).

    The driver fills ``model.lookback``; what depends on one series' length (its window,
    validation tail, skip input) is resolved per series in the task (``views``).
    """

    model: ModelConfig = ModelConfig(lookback=48)
    train: TrainConfig = TrainConfig()
    forecast: ForecastConfig = ForecastConfig()
    table: TableConfig = TableConfig()
    season_length: int = Field(1, ge=1)
    seasons: tuple[int, ...] = ()
    features: tuple[str, ...] = ()  # input.features: known covariates, after the calendar
    seed: int = 0

    @property
    def first_season(self) -> int:
        """The season the statistical models divide out where found (1: none)."""
        return self.seasons[0] if self.seasons else 1

    @property
    def min_fit(self) -> int:
        """The shortest history a model is fitted on: two seasons, at least 2 points, at most
        ``MIN_FIT_POINTS`` (a yearly series fits on 2, a quarterly one on 8, others on 16)."""
        return max(2, min(2 * self.season_length, MIN_FIT_POINTS))

    def cutoffs(self, n_points: int) -> list[int]:
        """A series' backtest cut-offs (``ForecastConfig.cutoffs``), each leaving a fit."""
        return self.forecast.cutoffs(n_points, self.min_fit)

    def min_series_points(self) -> int:
        """The shortest series that is trained: one backtest window and the shortest fit
        (two seasons plus the horizon, by default)."""
        return self.forecast.holdout_steps + self.min_fit

    @property
    def lookback(self) -> int:
        assert self.model.lookback is not None, "the driver resolves model.lookback"
        return self.model.lookback

    @property
    def calendar(self) -> tuple[str, ...]:
        """The calendar parts encoded, as the driver resolved ``model.calendar``."""
        assert self.model.calendar != "auto", "the driver resolves model.calendar"
        return tuple(self.model.calendar or ())

    @property
    def covariates(self) -> tuple[str, ...]:
        """Each known input's channel, in order: the calendar's (sin, cos), the features."""
        parts = [f"{part}_{wave}" for part in self.calendar for wave in ("sin", "cos")]
        return (*parts, *self.features)

    @property
    def unscaled(self) -> int:
        """The first covariate channels, the calendar's, already in [-1, 1]: not scaled."""
        return 2 * len(self.calendar)

    @property
    def calendar_rows(self) -> slice:
        """The calendar's rows among the LSTM's inputs (after the value and its skip input)."""
        return slice(2, 2 + self.unscaled)

    @property
    def inputs(self) -> int:
        """The LSTM's input size: the value, its skip input, the known covariates."""
        return 2 + len(self.covariates)

    @property
    def table_lookback(self) -> int:
        """The points of history each of the table model's windows reads."""
        return self.table.lookback or self.lookback

    @property
    def table_steps(self) -> int:
        """How far the table model forecasts: the backtest's holdout or the horizon."""
        return max(self.forecast.holdout_steps, self.forecast.horizon)

    @property
    def table_windows(self) -> int:
        """The table model's training windows, at most: ``table.windows``, or as many as
        hold ``TABLE_STEPS`` steps (at most ``TABLE_WINDOWS``): an hourly window of 72 +
        48 steps costs what three monthly ones of 27 + 18 do."""
        if self.table.windows is not None:
            return self.table.windows
        return max(1, min(TABLE_WINDOWS, TABLE_STEPS // (self.table_lookback + self.table_steps)))

    def blend_pairs(self) -> list[tuple[float, float]]:
        """The (table share, LSTM weight) pairs whose backtest scores and residuals a job
        sums over the whole table: each that ``auto`` tries, a fixed one as it is; none
        when both are fixed and no interval is asked for (a run of one pass)."""
        share, weight = self.table.share, self.forecast.lstm_weight
        if share != "auto" and weight != "auto" and not self.forecast.levels:
            return []
        shares = TABLE_SHARES if share == "auto" else (share,)
        weights = LSTM_WEIGHTS if weight == "auto" else (weight,)
        return [(s, w) for s in shares for w in weights]

    @property
    def val_steps(self) -> int:
        return self.train.val_steps(self.forecast.horizon)

    @model_validator(mode="after")
    def _bidirectional_needs_last(self) -> WorkerConfig:
        if self.model.bidirectional and self.train.supervise == "all":
            raise ValueError(
                "model.bidirectional needs train.supervise: last "
                "(a backward pass over the window would see every step's target)"
            )
        if self.model.lookback is None:
            raise ValueError("model.lookback must be resolved before a task runs")
        if self.model.calendar == "auto":
            raise ValueError("model.calendar must be resolved before a task runs")
        return self
