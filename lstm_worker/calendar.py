"""Calendar inputs: cyclical encodings of each step's timestamp, known for every future
step (``model.calendar``).

Each part is a position in its cycle, encoded as (sin, cos) so that the cycle's end
meets its start: hour 23 is next to hour 0, December to January.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lstm_worker.config import CalendarPart


def _position(times: pd.DatetimeIndex, part: str) -> np.ndarray:
    """Where each time lies in its cycle, in [0, 1)."""
    return np.asarray(_cycle(times, part), np.float64)


def _cycle(times: pd.DatetimeIndex, part: str) -> object:
    if part == "hour":
        return (times.hour + times.minute / 60) / 24
    if part == "dayofweek":
        return (times.dayofweek + times.hour / 24) / 7
    if part == "dayofmonth":
        return (times.day - 1) / times.days_in_month
    if part == "dayofyear":
        return (times.dayofyear - 1) / (365 + times.is_leap_year)
    if part == "weekofyear":
        return (times.isocalendar().week.to_numpy() - 1) / 52.1775  # weeks in a mean year
    if part == "month":
        return (times.month - 1) / 12
    if part == "quarter":
        return (times.quarter - 1) / 4
    raise ValueError(f"unknown calendar part {part!r}")


def calendar_inputs(times: np.ndarray, parts: Sequence[str]) -> np.ndarray:
    """(n,) datetime64 -> (n, 2 * len(parts)) float32: sin, cos of each part in turn."""
    index = pd.DatetimeIndex(times)
    columns = [np.empty((0, len(times)))]
    for part in parts:
        angle = 2 * np.pi * _position(index, part)
        columns += [np.sin(angle), np.cos(angle)]
    return np.vstack(columns).T.astype(np.float32)  # (n, 2 * parts)


_BY_RULE: tuple[tuple[str, tuple[CalendarPart, ...]], ...] = (  # prefixes, longest first
    ("SM", ("dayofmonth", "month")),
    ("BM", ("month",)),
    ("BQ", ("quarter",)),
    ("BY", ()),
    ("BA", ()),
    ("M", ("month",)),
    ("Q", ("quarter",)),
    ("W", ("weekofyear",)),
    ("B", ("dayofweek", "dayofyear")),
    ("C", ("dayofweek", "dayofyear")),
)
_CYCLE_DAYS = {  # how long each part takes to come round
    "hour": 1.0,
    "dayofweek": 7.0,
    "dayofmonth": 30.44,
    "dayofyear": 365.25,
    "weekofyear": 365.25,
    "month": 365.25,
    "quarter": 365.25,
}


def calendar_for(freq: pd.offsets.BaseOffset | int, lookback: int) -> tuple[CalendarPart, ...]:
    """``model.calendar: auto``: the cycles a step of ``freq`` lives in (a day and a week
    of hours, a week and a year of days, a year of weeks, months or quarters) that come
    round within the model's window of ``lookback`` steps. A longer cycle looks like a
    drift inside every window, which the model fits and then extrapolates: on the M4
    Hourly backtest (lookback 72), the day of the week cost MASE 0.898 against 0.890
    without it, the hour 0.893. None for an integer clock or a yearly step."""
    return tuple(p for p in _candidates(freq) if _CYCLE_DAYS[p] / _step_days(freq) <= lookback)


def _candidates(freq: pd.offsets.BaseOffset | int) -> tuple[CalendarPart, ...]:
    if isinstance(freq, int):
        return ()
    try:
        step = pd.Timedelta(freq)  # type: ignore[arg-type]  # stubs: Tick only; others raise
    except ValueError:  # calendar offsets (months, quarters, business days) have no length
        name = freq.rule_code.upper()
        return next((parts for prefix, parts in _BY_RULE if name.startswith(prefix)), ())
    if step < pd.Timedelta(days=1):
        return ("hour", "dayofweek")
    if step == pd.Timedelta(days=1):
        return ("dayofweek", "dayofyear")
    if step == pd.Timedelta(days=7):
        return ("weekofyear",)
    return ()


def _step_days(freq: pd.offsets.BaseOffset | int) -> float:
    """A step's length in days, a mean one for calendar offsets."""
    try:
        return pd.Timedelta(freq).value / pd.Timedelta(days=1).value  # type: ignore[arg-type]
    except ValueError:
        name = freq.rule_code.upper()  # type: ignore[union-attr]  # an int has a length
        means = (
            ("SM", 15.22),
            ("BM", 30.44),
            ("BQ", 91.31),
            ("BY", 365.25),
            ("BA", 365.25),
            ("M", 30.44),
            ("Q", 91.31),
            ("Y", 365.25),
            ("A", 365.25),
            ("W", 7.0),
            ("B", 7 / 5),
            ("C", 7 / 5),
        )
        return next((days for prefix, days in means if name.startswith(prefix)), 1.0)
