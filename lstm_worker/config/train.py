"""How each series' LSTM trains."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lstm_worker.config.strict import Strict


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

    def val_steps(self, horizon: int) -> int:
        """The validation points: ``val_size``, or the horizon when it is null."""
        return horizon if self.val_size is None else self.val_size
