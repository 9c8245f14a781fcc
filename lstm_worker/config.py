"""Frozen, strict settings for one task: the model, its training and its forecast.

Defaults live here, in code; a job spec's YAML holds only what differs. The driver's
job spec (``cluster.spec``) embeds these same models, so a field is defined once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lstm_worker.windows import history_needed


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """The network: ``nn.LSTM`` over a window of ``lookback`` scaled values plus a head."""

    lookback: int = Field(72, ge=2, description="input window length, in time steps")
    hidden_size: int = Field(32, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between LSTM layers")
    bidirectional: bool = False
    head: Literal["linear", "mlp"] = "linear"
    scaler: Literal["standard", "minmax"] = "standard"
    seasonal_skip: bool = Field(
        True,
        description="also feed the value one season before each target and predict the "
        "residual over it (the model starts from seasonal naive)",
    )


class TrainConfig(_Strict):
    """Adam with weight decay, reduce-on-plateau, clipping and early stopping."""

    epochs: int = Field(60, ge=1, description="at most; early stopping usually ends sooner")
    batch_size: int = Field(32, ge=1, description="windows per model per step")
    lr: float = Field(5e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    loss: Literal["mae", "mse", "huber"] = "mae"
    patience: int = Field(5, ge=1, description="epochs without validation gain before stopping")
    lr_patience: int = Field(2, ge=0, description="epochs without gain before the lr is cut")
    lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    grad_clip: float | None = Field(1.0, gt=0.0, description="max gradient norm; null: off")
    supervise: Literal["last", "all"] = Field(
        "all", description="loss on each window's last step, or on every step past warmup"
    )
    warmup: int | None = Field(
        None, ge=0, description="steps of each window not supervised (all); null: lookback//4"
    )
    stride: int | None = Field(
        None, ge=1,
        description="keep every stride-th training window; null: lookback // 2 when every "
        "step is supervised (each target is still seen twice an epoch), else 1",
    )
    trainer: Literal["stacked", "reference"] = Field(
        "stacked", description="all series of a task at once, or one nn.LSTM after another"
    )
    val_size: int | None = Field(
        None, ge=0,
        description="points at the end of the training part forecast recursively to pick the "
        "best epoch and stop early; null: the horizon; 0: monitor the training loss",
    )


class ForecastConfig(_Strict):
    """How far to forecast, how much history to hold out for the backtest, the season."""

    horizon: int = Field(24, ge=1)
    holdout: int | None = Field(None, ge=1, description="backtest length; null: horizon")
    n_windows: int = Field(
        1, ge=1, description="rolling-origin backtest windows, each scored on `holdout` points"
    )
    step: int | None = Field(None, ge=1, description="points between cut-offs; null: holdout")
    levels: list[int] = Field(
        [80, 95], description="prediction interval levels in percent, from backtest residuals"
    )
    season_length: int | None = Field(
        None, ge=1, description="seasonal period for MASE and seasonal naive; null: from freq"
    )
    short_series: Literal["skip", "snaive"] = Field(
        "skip",
        description="a series too short to train: skipped (no forecast), or forecast by "
        "seasonal naive with status fallback",
    )

    @property
    def holdout_steps(self) -> int:
        return self.holdout if self.holdout is not None else self.horizon

    @property
    def window_step(self) -> int:
        return self.step if self.step is not None else self.holdout_steps

    def cutoffs(self, n_points: int) -> list[int]:
        """Where each backtest window's training part ends, most recent window first; a
        window with no point before it (a short series) has none."""
        cuts = (n_points - self.holdout_steps - w * self.window_step for w in range(self.n_windows))
        return [cut for cut in cuts if cut > 0]

    @field_validator("levels")
    @classmethod
    def _percent(cls, levels: list[int]) -> list[int]:
        if any(not 0 < level < 100 for level in levels):
            raise ValueError(f"levels are percentages between 0 and 100, got {levels}")
        return sorted(set(levels))


class WorkerConfig(_Strict):
    """Everything one task needs, resolved by the driver (no ``None`` left to guess)."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    forecast: ForecastConfig = ForecastConfig()
    season_length: int = Field(1, ge=1)
    seed: int = 0

    @property
    def val_steps(self) -> int:
        size = self.train.val_size
        return self.forecast.horizon if size is None else size

    @property
    def window_stride(self) -> int:
        if self.train.stride is not None:
            return self.train.stride
        return max(1, self.model.lookback // 2) if self.train.supervise == "all" else 1

    @property
    def lag(self) -> int:
        """How far back the skip input looks (0: no skip input)."""
        return self.season_length if self.model.seasonal_skip else 0

    def min_fit_points(self) -> int:
        """The shortest history one model can be fitted on: one window plus validation."""
        return history_needed(self.model.lookback, self.lag) + 1 + self.val_steps

    def min_series_points(self) -> int:
        """The shortest series that can be backtested on every window and trained."""
        fc = self.forecast
        return fc.holdout_steps + (fc.n_windows - 1) * fc.window_step + self.min_fit_points()

    @model_validator(mode="after")
    def _bidirectional_needs_last(self) -> WorkerConfig:
        if self.model.bidirectional and self.train.supervise == "all":
            raise ValueError(
                "model.bidirectional needs train.supervise: last "
                "(a backward pass over the window would see every step's target)"
            )
        return self
