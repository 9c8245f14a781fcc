"""How far to forecast, the backtest, the season, and how the forecast is combined."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from lstm_worker.config.strict import Strict

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
