"""The network's settings: ``nn.LSTM`` over a window plus a head, and its inputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lstm_worker.config.strict import Strict

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
