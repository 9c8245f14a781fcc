"""What a job spec leaves to the data, resolved once a run knows its input's frequency:
the season, the seasons, the lookback (each with the reason it has that value), and the
config every task of a setting runs with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lstm_worker.config import ForecastConfig, ModelConfig, TableConfig, TrainConfig, WorkerConfig
from lstm_worker.data.contract import InputSpec
from lstm_worker.errors import InputError


class JobSpec(Protocol):
    """The sections of ``cluster.spec.JobSpec`` resolution reads (spec.py imports this
    module to check a spec's sections together, so this one names what it needs)."""

    @property
    def input(self) -> InputSpec: ...
    @property
    def model(self) -> ModelConfig: ...
    @property
    def train(self) -> TrainConfig: ...
    @property
    def forecast(self) -> ForecastConfig: ...
    @property
    def table(self) -> TableConfig: ...
    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class Resolved:
    """The values a spec leaves to the data, and why each has its value."""

    season_length: int
    seasons: tuple[int, ...]  # the seasons the models see, shortest first
    lookback: int  # model.lookback
    why: dict[str, str]  # the field -> the reason (manifest.json's ``resolved.why``)


def resolve(spec: JobSpec, freq_seasons: Sequence[int] = ()) -> Resolved:
    """``spec``'s values left to the data, given the input frequency's seasons
    (``table.seasons_from_freq``), shortest first."""
    fc, explicit = spec.forecast, spec.forecast.season_length
    season = explicit or (freq_seasons[0] if freq_seasons else 1)
    seasons = (
        tuple(fc.seasons)
        if fc.seasons is not None
        else tuple(dict.fromkeys(p for p in (explicit, *freq_seasons) if p and p >= 2))
    )
    lookback = spec.model.lookback or math.ceil(1.5 * max(fc.horizon, season))
    val = spec.train.val_steps(fc.horizon)
    why = {
        "season_length": "forecast.season_length"
        if explicit
        else "the input frequency's season"
        if freq_seasons
        else "no season in the frequency",
        "seasons": "forecast.seasons"
        if fc.seasons is not None
        else "forecast.season_length and the frequency's seasons",
        "model.lookback": "model.lookback"
        if spec.model.lookback
        else f"1.5 x max(horizon {fc.horizon}, season {season}); a series with fewer "
        "points gets a shorter window",
        "train.val_size": f"{val} ("
        + ("train.val_size" if spec.train.val_size is not None else "the horizon")
        + f"); a history shorter than {3 * val} monitors its training loss",
        "model.skip": f"{spec.model.skip}"
        + (
            ": per series, the baseline that forecast its own last three horizons best"
            if spec.model.skip == "auto"
            else ""
        ),
        "per series": "metrics.parquet: lookback, skip, val_size, deseasonalised",
    }
    return Resolved(season, seasons, lookback, why)


def worker_config(
    spec: JobSpec, freq_seasons: Sequence[int] = (), freq: Any = None
) -> WorkerConfig:
    """The tasks' config of ``spec`` (one search setting's, where it is one), with what it
    leaves open resolved (``resolve``); ``freq`` the input's frequency (None: not known
    yet), from which ``model.calendar: auto`` picks the calendar's parts."""
    resolved = resolve(spec, freq_seasons)
    parts = spec.model.calendar
    if parts == "auto":
        from lstm_worker.calendar import calendar_for

        parts = list(calendar_for(freq, resolved.lookback)) if freq is not None else []
    elif parts and isinstance(freq, int):
        raise InputError(
            f"model.calendar {parts}: input.time_col {spec.input.time_col!r} is an "
            "integer clock, which has no calendar; use timestamps or leave it out"
        )
    model = {"lookback": resolved.lookback, "calendar": parts or None}
    shared = spec.train.shared_start
    train = {"shared_start": bool(spec.input.features) if shared is None else shared}
    return WorkerConfig(
        model=spec.model.model_copy(update=model),
        train=spec.train.model_copy(update=train),
        forecast=spec.forecast,
        table=spec.table,
        season_length=resolved.season_length,
        seasons=resolved.seasons,
        features=tuple(spec.input.features),
        seed=spec.seed,
    )
