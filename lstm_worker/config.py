"""Frozen, strict settings for one task: the model, its training and its forecast.

Defaults live here, in code; a job spec's YAML holds only what differs. The driver's
job spec (``cluster.spec``) embeds these same models, so a field is defined once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """The network: ``nn.LSTM`` over a window of ``lookback`` scaled values plus a head."""

    lookback: int = Field(48, ge=2, description="input window length, in time steps")
    hidden_size: int = Field(64, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between LSTM layers")
    bidirectional: bool = False
    head: Literal["linear", "mlp"] = "linear"
    scaler: Literal["standard", "minmax"] = "standard"


class TrainConfig(_Strict):
    """Adam with weight decay, reduce-on-plateau, clipping and early stopping."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    loss: Literal["mae", "mse", "huber"] = "mae"
    patience: int = Field(5, ge=1, description="epochs without validation gain before stopping")
    lr_patience: int = Field(2, ge=0, description="epochs without gain before the lr is cut")
    lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    grad_clip: float | None = Field(1.0, gt=0.0, description="max gradient norm; null: off")
    supervise: Literal["last", "all"] = Field(
        "last", description="loss on each window's last step, or on every step past warmup"
    )
    warmup: int | None = Field(
        None, ge=0, description="steps of each window not supervised (all); null: lookback//4"
    )
    stride: int = Field(
        1, ge=1, description="keep every stride-th training window (1: all of them)"
    )
    trainer: Literal["stacked", "reference"] = Field(
        "stacked", description="all series of a task at once, or one nn.LSTM after another"
    )
    val_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="tail of the training part kept for early stopping"
    )


class ForecastConfig(_Strict):
    """How far to forecast, how much history to hold out for the backtest, the season."""

    horizon: int = Field(24, ge=1)
    holdout: int | None = Field(None, ge=1, description="backtest length; null: horizon")
    season_length: int | None = Field(
        None, ge=1, description="seasonal period for MASE and seasonal naive; null: from freq"
    )

    @property
    def holdout_steps(self) -> int:
        return self.holdout if self.holdout is not None else self.horizon


class WorkerConfig(_Strict):
    """Everything one task needs, resolved by the driver (no ``None`` left to guess)."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    forecast: ForecastConfig = ForecastConfig()
    season_length: int = Field(1, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _bidirectional_needs_last(self) -> WorkerConfig:
        if self.model.bidirectional and self.train.supervise == "all":
            raise ValueError(
                "model.bidirectional needs train.supervise: last "
                "(a backward pass over the window would see every step's target)"
            )
        return self
