"""The input table's contract, as a job spec's ``input`` section states it: which columns
hold the id, the time, the target and the known features, where the horizon's features
are, and what to do with dirty rows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lstm_worker.config import Strict


class InputSpec(Strict):
    """One long table: a series id, a timestamp (or integer step) and a value per row."""

    path: str = Field(
        description="Parquet file or directory of Parquet files: a path every "
        "node sees, or a URI pyarrow opens (s3://, gs://)"
    )
    id_col: str = Field("unique_id", description="column holding the series id (string or integer)")
    time_col: str = Field("ds", description="column holding the timestamp, date or integer step")
    target_col: str = Field("y", description="column holding the numeric value to forecast")
    freq: str | None = Field(None, description="pandas offset alias such as 'h'; null: inferred")
    missing: Literal["fill_linear", "fill_forward", "fill_zero", "skip"] = Field(
        "fill_linear",
        description="NaN/inf values and time steps missing from a series' grid: filled "
        "(and counted in metrics' filled column), or the series is skipped",
    )
    duplicates: Literal["skip", "last", "mean"] = Field(
        "skip",
        description="rows of one series with the same time: the series is skipped, "
        "or the last row read wins, or the rows are averaged",
    )
    features: list[str] = Field(
        default_factory=list,
        description="numeric columns known in advance (price, promotion, holiday): inputs of "
        "each series' LSTM, scaled per series on its training part; their values over the "
        "horizon come from future_path. NaN follow input.missing",
    )
    future_path: str | None = Field(
        None,
        description="Parquet table of id, time and the features for the horizon steps after "
        "each series' last time (the input's contract); a series missing a step is skipped, "
        "naming it",
    )

    @model_validator(mode="after")
    def _features_and_future(self) -> InputSpec:
        named = {self.id_col, self.time_col, self.target_col}
        clash = [f for f in self.features if f in named]
        if clash:
            raise ValueError(f"input.features: {clash} are the id, time or target column")
        if len(set(self.features)) < len(self.features):
            raise ValueError(f"input.features: a column is named twice in {self.features}")
        if self.features and not self.future_path:
            raise ValueError("input.features need input.future_path: their values over the horizon")
        if self.future_path and not self.features:
            raise ValueError("input.future_path is set, but input.features names no column")
        return self

    @field_validator("freq")
    @classmethod
    def _known_freq(cls, value: str | None) -> str | None:
        if value is not None:
            import pandas as pd

            try:
                pd.tseries.frequencies.to_offset(value)
            except ValueError as error:
                raise ValueError(f"not a pandas frequency: {value!r}") from error
        return value
