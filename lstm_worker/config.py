"""Frozen, strict settings for one task: the model, its training and its forecast.

Defaults live here, in code; a job spec's YAML holds only what differs. The driver's
job spec (``cluster.spec``) embeds these same models, so a field is defined once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Strict(BaseModel):
    """Every settings model, the driver's too: an unknown key fails, nothing changes, and
    a number is one the float32 training can hold (1e39 would turn into inf in a task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _fits_float32(cls, value: Any) -> Any:
        if isinstance(value, float) and not abs(value) <= _FLOAT32_MAX:
            raise ValueError(
                f"{value!r} does not fit in float32, the precision training runs at "
                f"(at most {_FLOAT32_MAX:.3g})"
            )
        return value


CalendarPart = Literal[
    "hour", "dayofweek", "dayofmonth", "dayofyear", "weekofyear", "month", "quarter"
]


class ModelConfig(Strict):
    """The network: ``nn.LSTM`` over a window of ``lookback`` scaled values plus a head."""

    lookback: int | None = Field(
        None,
        ge=2,
        description="input window length, in time steps, and the most a series' model reads; "
        "null: 1.5 x max(horizon, season), resolved per job. A series with fewer points "
        "gets a shorter window of its own",
    )
    hidden_size: int = Field(32, ge=1, description="LSTM hidden units per layer")
    num_layers: int = Field(1, ge=1, description="stacked LSTM layers")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between LSTM layers")
    bidirectional: bool = Field(
        False,
        description="read each window both ways (needs train.supervise: last); a forecast "
        "step then re-reads its whole window",
    )
    head: Literal["linear", "mlp"] = Field(
        "linear",
        description="linear layer, or a small MLP (Linear, ReLU, Linear) on the LSTM output",
    )
    scaler: Literal["standard", "minmax"] = Field(
        "standard",
        description="per-series scaling fitted on the training part only: z-score or min-max",
    )
    normalise: Literal["series", "window"] = Field(
        "series",
        description="series: the scaled values as they are; window: each window (and each "
        "forecast) relative to the mean of its own first steps",
    )
    skip: Literal["auto", "season", "level", "theta", "last", "none"] = Field(
        "auto",
        description="the skip input each step also sees, and predicts the residual over: the "
        "value one season before the target (the model starts from seasonal naive), the "
        "smoothed level (simple exponential smoothing), that level plus the Theta method's "
        "drift (half the series' least-squares slope a step: a trend), the last value "
        "(naive), or none; auto: per series, of season, level and last, the one whose "
        "baseline forecast its own last three horizons best",
    )
    calendar: list[CalendarPart] | Literal["auto"] | None = Field(
        None,
        description="cyclical encodings (sin, cos) of each target step's timestamp as inputs, "
        "known for every future step: any of hour, dayofweek, dayofmonth, dayofyear, "
        "weekofyear, month, quarter; auto: the frequency's cycles (hourly: hour, dayofweek; "
        "daily: dayofweek, dayofyear; weekly: weekofyear; monthly: month; quarterly: "
        "quarter) that come round within model.lookback steps; null: none. Each series' "
        "model is trained with it and without it side by side (twice the training) and "
        "keeps it only where it forecasts the validation tail better",
    )
    deseasonalise: bool = Field(
        True,
        description="a skip input that is not seasonal sees the series with multiplicative "
        "seasonal indices of forecast.seasons' first period divided out, where M4's 90% "
        "autocorrelation test finds that season",
    )


class TrainConfig(Strict):
    """Adam with weight decay, reduce-on-plateau, clipping and early stopping."""

    epochs: int = Field(60, ge=1, description="at most; early stopping usually ends sooner")
    batch_size: int = Field(32, ge=1, description="windows per model per step")
    lr: float = Field(5e-3, gt=0.0, description="Adam learning rate (cut by lr_factor on plateaus)")
    weight_decay: float = Field(0.0, ge=0.0, description="Adam L2 weight decay")
    loss: Literal["mae", "mse", "huber"] = Field("mae", description="training loss")
    patience: int = Field(5, ge=1, description="epochs without validation gain before stopping")
    lr_patience: int = Field(2, ge=0, description="epochs without gain before the lr is cut")
    lr_factor: float = Field(
        0.5, gt=0.0, lt=1.0, description="multiplier applied to the lr on a plateau"
    )
    grad_clip: float | None = Field(1.0, gt=0.0, description="max gradient norm; null: off")
    supervise: Literal["last", "all"] = Field(
        "all", description="loss on each window's last step, or on every step past warmup"
    )
    warmup: int | None = Field(
        None, ge=0, description="steps of each window not supervised (all); null: lookback//4"
    )
    stride: int | None = Field(
        None,
        ge=1,
        description="keep every stride-th training window; null: lookback // 2 when every "
        "step is supervised (each target is still seen twice an epoch), else 1",
    )
    val_size: int | None = Field(
        None,
        ge=0,
        description="points at the end of the training part forecast recursively to pick the "
        "best epoch and stop early; null: the horizon; 0: monitor the training loss. A "
        "series shorter than three times this monitors its training loss",
    )
    warm_epochs: int = Field(
        1,
        ge=1,
        description="at most, for a model that starts from a stored one (warm_start); "
        "chosen on M4 Hourly backtest nights: 1 and 2 scored alike, 3 and 5 worse",
    )
    warm_epochs_new_skip: int = Field(
        4,
        ge=1,
        description="at most, for a warm-started model whose skip input changed since it "
        "was stored (it learnt its residual over another baseline); chosen on M4 Hourly "
        "backtest nights from 1, 3, 4 and 5: 4 scored best",
    )
    warm_start: str | None = Field(
        None,
        description="a previous run's output.path, or 'latest' (the newest finished run of "
        "the job under the runs root): each series' models start from the ones it stored "
        "(when the architecture matches; else cold, with the reason)",
    )
    shared_start: bool | None = Field(
        None,
        description="first train one model with tied weights on all the task's series, then "
        "fine-tune each series' own model from it (still one model per series); null: on "
        "when input.features are given (a promotion's lift is learnt from every series' "
        "promotions: bench/covariates.py), else off (it scored worse on the M4 and M3 "
        "backtests)",
    )


MIN_FIT_POINTS = 16  # the most points the shortest fit needs: two seasons, at most this many
LSTM_WEIGHTS = (0.0, 1 / 3, 0.5, 2 / 3, 1.0)  # the shares forecast.lstm_weight: auto tries


class ForecastConfig(Strict):
    """How far to forecast, how much history to hold out for the backtest, the season."""

    horizon: int = Field(24, ge=1, description="steps forecast past the end of each series")
    holdout: int | None = Field(None, ge=1, description="backtest length; null: horizon")
    n_windows: int = Field(
        1,
        ge=1,
        description="rolling-origin backtest windows, each scored on `holdout` points; "
        "a series keeps the windows that leave the shortest fit (two seasons, at most "
        f"{MIN_FIT_POINTS} points, at least 2) before them",
    )
    step: int | None = Field(None, ge=1, description="points between cut-offs; null: holdout")
    levels: list[int] = Field(
        [80, 95], description="prediction interval levels in percent, from backtest residuals"
    )
    season_length: int | None = Field(
        None, ge=1, description="seasonal period for MASE and seasonal naive; null: from freq"
    )
    seasons: list[int] | None = Field(
        None,
        description="periods a skip input may look back (model.skip), the first also "
        "the one deseasonalised; null: from freq (hourly: 24 and 168, monthly: 12)",
    )
    from_models: str | None = Field(
        None,
        description="a previous run's output.path, or 'latest': forecast every series from "
        "the models it stored and the newest data, no training (`runner forecast`)",
    )
    short_series: Literal["baseline", "snaive", "skip"] = Field(
        "baseline",
        description="a series too short to train (fewer than holdout + the shortest fit): "
        "baseline: the statistical models' forecast (damped trend and Theta), naive for one "
        "point; snaive: seasonal naive; skip: no forecast. Both forecasts have status "
        "fallback and the reason",
    )
    lstm_weight: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["auto"] = Field(
        "auto",
        description="each forecast is this share of the LSTM's plus the rest of the "
        "statistical models' (damped trend and Theta, on the series with its season divided "
        "out); 1: the LSTM alone; auto: the share of "
        + ", ".join(f"{w:.2g}" for w in LSTM_WEIGHTS)
        + " whose forecasts scored best on the whole table's backtest (search.metric)",
    )

    @property
    def holdout_steps(self) -> int:
        return self.holdout if self.holdout is not None else self.horizon

    @property
    def window_step(self) -> int:
        return self.step if self.step is not None else self.holdout_steps

    def cutoffs(self, n_points: int, min_fit: int) -> list[int]:
        """Where each backtest window's training part ends, most recent window first; a
        window that leaves fewer than ``min_fit`` points before it (a short series) has none."""
        cuts = (n_points - self.holdout_steps - w * self.window_step for w in range(self.n_windows))
        return [cut for cut in cuts if cut >= min_fit]

    @field_validator("levels")
    @classmethod
    def _percent(cls, levels: list[int]) -> list[int]:
        if any(not 0 < level < 100 for level in levels):
            raise ValueError(f"levels are percentages between 0 and 100, got {levels}")
        return sorted(set(levels))

    @field_validator("seasons")
    @classmethod
    def _periods(cls, seasons: list[int] | None) -> list[int] | None:
        if seasons is not None and any(period < 2 for period in seasons):
            raise ValueError(f"a season is a period of at least 2 steps, got {seasons}")
        return seasons


class WorkerConfig(Strict):
    """Everything one task needs, resolved by the driver (no ``None`` left to guess).

    The driver fills ``model.lookback``; what depends on one series' length (its window,
    validation tail, skip input) is resolved per series in the task (``views``).
    """

    model: ModelConfig = ModelConfig(lookback=48)
    train: TrainConfig = TrainConfig()
    forecast: ForecastConfig = ForecastConfig()
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
    def val_steps(self) -> int:
        size = self.train.val_size
        return self.forecast.horizon if size is None else size

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
