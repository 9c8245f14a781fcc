"""The table model's settings: one LSTM trained on windows drawn from every series."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from lstm_worker.config.strict import Strict

TABLE_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the shares table.share: auto tries
TABLE_STEPS = 100_000  # table.windows null: as many windows as hold this many steps,
TABLE_WINDOWS = 4_000  # at most this many


class TableConfig(Strict):
    """One LSTM for the whole table, learning what the series have in common.

    It predicts each series' residual over its statistical forecast (damped trend and
    Theta), in units of the series' own recent level, from windows cut at many points of
    every series; each series' LSTM forecast is then ``share`` of its forecast plus the
    rest of the series' own LSTM's (docs/how-it-works.md#the-table-model).
    """

    enabled: bool = Field(
        True, description="train the table model (in a task of its own, before the series')"
    )
    windows: int | None = Field(
        None,
        ge=1,
        description="at most this many training windows, drawn at random from the table: "
        "what bounds its cost on a table of any size; null: as many as hold "
        f"{TABLE_STEPS:,} steps (each window is lookback + horizon steps), at most "
        f"{TABLE_WINDOWS:,}",
    )
    members: int = Field(
        3,
        ge=1,
        description="models trained side by side from different seeds; it forecasts their mean",
    )
    hidden_size: int = Field(32, ge=1, description="LSTM hidden units")
    lookback: int | None = Field(
        None, ge=2, description="points of history each window reads; null: model.lookback's"
    )
    epochs: int = Field(
        12, ge=1, description="epochs, the learning rate falling to zero over them (cosine)"
    )
    lr: float = Field(3e-3, gt=0.0, description="Adam's first learning rate")
    batch_size: int = Field(256, ge=1, description="windows per step")
    warm_epochs: int = Field(
        4, ge=1, description="epochs of a table model that starts from a stored one"
    )
    share: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["auto"] = Field(
        "auto",
        description="each series' LSTM forecast is this share of the table model's plus the "
        "rest of its own LSTM's; auto: the share of "
        + ", ".join(f"{s:.2g}" for s in TABLE_SHARES)
        + " that scored best on the whole table's backtest, with forecast.lstm_weight",
    )
