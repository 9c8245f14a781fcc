"""What a job spec leaves to the data, resolved once a run knows its input's frequency:
the season, the seasons, the lookback (each with the reason it has that value), and the
config every task of a setting runs with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from cluster.sections import JobSpec
from lstm_worker.config import WorkerConfig
from lstm_worker.errors import InputError


class Resolved(BaseModel):
    """The values a spec leaves to the data, and why each has its value: held by the
    input plan, written as manifest.json's ``resolved`` (read under a manifest's older,
    dotted names too)."""

    model_config = ConfigDict(frozen=True)

    season_length: int
    seasons: tuple[int, ...]  # the seasons the models see, shortest first
    lookback: int = Field(validation_alias=AliasChoices("lookback", "model.lookback"))
    calendar: tuple[str, ...] = Field(  # the calendar's parts the models read
        (), validation_alias=AliasChoices("calendar", "model.calendar")
    )
    shared_start: bool = Field(  # train.shared_start
        False, validation_alias=AliasChoices("shared_start", "train.shared_start")
    )
    why: dict[str, str]  # the field -> the reason it has its value


def resolve(spec: JobSpec, freq_seasons: Sequence[int] = (), freq: Any = None) -> Resolved:
    """``spec``'s values left to the data, given the input frequency's seasons
    (``table.seasons_from_freq``), shortest first, and the frequency itself (None: not
    known yet), from which ``model.calendar: auto`` picks the calendar's parts."""
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
        "lookback": "model.lookback"
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
    return Resolved(
        season_length=season,
        seasons=seasons,
        lookback=lookback,
        calendar=_calendar(spec, freq, lookback),
        shared_start=bool(spec.input.features)
        if spec.train.shared_start is None
        else spec.train.shared_start,
        why=why,
    )


def _calendar(spec: JobSpec, freq: Any, lookback: int) -> tuple[str, ...]:
    """The calendar's parts the models read: ``model.calendar`` as listed, or (auto) those
    of the frequency that come round within the lookback."""
    parts = spec.model.calendar
    if parts == "auto":
        from lstm_worker.calendar import calendar_for

        return tuple(calendar_for(freq, lookback)) if freq is not None else ()
    if parts and isinstance(freq, int):
        raise InputError(
            f"model.calendar {parts}: input.time_col {spec.input.time_col!r} is an "
            "integer clock, which has no calendar; use timestamps or leave it out"
        )
    return tuple(parts or ())


def worker_config(
    spec: JobSpec, freq_seasons: Sequence[int] = (), freq: Any = None
) -> WorkerConfig:
    """The tasks' config of ``spec`` (one search setting's, where it is one), with what it
    leaves open resolved (``resolve``)."""
    resolved = resolve(spec, freq_seasons, freq)
    model = {"lookback": resolved.lookback, "calendar": list(resolved.calendar) or None}
    train = {"shared_start": resolved.shared_start}
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
