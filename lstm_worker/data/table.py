"""Rows of the long table, split into series and cleaned; the frequency and the calendar.

The contract (Nixtla's long format, with configurable names): one row per series and
time step, an id column, a timestamp or integer time column, and a numeric target.
Problems of the table are found at the edge (``cluster.data.index``). A problem of one
series (duplicates, gaps, NaN) is not a problem of the table: each series is cleaned
by ``lstm_worker.data.clean``, and one that cannot be used carries a note.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lstm_worker.data.clean import CleanSeries, clean_series
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.source import input_columns, open_dataset, plain_ids
from lstm_worker.errors import InputError

SAMPLE_SERIES = 1000  # series the driver reads itself, and frequency inference looks at


@dataclass(frozen=True)
class SeriesTable:
    """The input, sorted by id then time, as one pair of arrays per series.

    A usable series is on its regular grid with finite values; one with a ``notes``
    entry is not (its arrays are as read) and is reported as skipped, never trained.
    """

    ids: list[object]
    times: list[np.ndarray]  # per series: datetime64 or int64, ascending
    values: list[np.ndarray]  # per series: float64
    freq: pd.offsets.BaseOffset | int  # a pandas offset, or the step of an integer clock
    schema: pa.Schema  # the input's id, time and target columns: their types go to the outputs
    notes: list[str]  # per series: why it is skipped; "" when usable
    filled: list[int]  # per series: NaN/inf values and missing steps filled
    cleaning: dict[str, int]  # totals: values_filled, steps_inserted, rows_merged, ...
    features: list[np.ndarray] = field(default_factory=list)  # per series (n, F): input.features
    future: list[np.ndarray] = field(default_factory=list)  # (n + horizon, F): ``with_future``

    def __len__(self) -> int:
        return len(self.ids)

    def usable(self) -> list[int]:
        return [p for p, note in enumerate(self.notes) if not note]


def split_rows(
    rows: pa.Table, spec: InputSpec, target: bool = True
) -> tuple[list[object], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Ids, times, float values and float features (n, F) per series, series in order of
    first appearance and each series' rows by time (ties keep their order in the file);
    ``target`` False: rows with no target column (the future table), values all NaN."""
    ids = plain_ids(rows.column(spec.id_col)).to_numpy(zero_copy_only=False)
    time_column = rows.column(spec.time_col)
    if pa.types.is_date(time_column.type):
        time_column = time_column.cast(pa.timestamp("ns"))
    times = time_column.to_numpy()
    values = float_column(rows, spec.target_col) if target else np.full(rows.num_rows, np.nan)
    features = np.empty((len(values), len(spec.features)))  # (rows, F)
    for number, name in enumerate(spec.features):
        features[:, number] = float_column(rows, name)
    codes, _ = pd.factorize(ids)  # (rows,) series number, by first appearance
    order = np.lexsort((times, codes))  # stable: by series, then time, then file order
    codes, times, values, features = codes[order], times[order], values[order], features[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # first row of each series
    return (
        ids[order][starts].tolist(),
        np.split(times, starts[1:]),
        np.split(values, starts[1:]),
        np.split(features, starts[1:]),
    )


def float_column(rows: pa.Table, column: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN (cleaned like any missing value)."""
    values: np.ndarray = rows.column(column).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return values


def series_table(
    rows: pa.Table,
    spec: InputSpec,
    freq: pd.offsets.BaseOffset | int | None,
    schema: pa.Schema,
) -> SeriesTable:
    """Split ``rows`` into series and clean each under the spec's policies; ``freq`` None:
    inferred from these rows (``resolve_freq``). ``schema``: the input's id, time and
    target columns (``SeriesIndex.schema``)."""
    ids, times, values, features = split_rows(rows, spec)
    if freq is None:
        integer_clock = pa.types.is_integer(rows.schema.field(spec.time_col).type)
        freq = resolve_freq(spec, times, integer_clock)
    cleaned = [
        clean_series(t, v, freq, spec.missing, spec.duplicates)
        for t, v in zip(times, values, strict=True)
    ]
    on_grid = [
        clean_features(t, f, c, freq, spec)
        for t, f, c in zip(times, features, cleaned, strict=True)
    ]
    cleaned = [
        replace(c, skip=note) if note and not c.skip else c
        for c, (_, note) in zip(cleaned, on_grid, strict=True)
    ]
    return SeriesTable(
        ids,
        [c.times for c in cleaned],
        [c.values for c in cleaned],
        freq,
        schema,
        notes=[c.skip for c in cleaned],
        filled=[c.filled for c in cleaned],
        cleaning=cleaning_totals(cleaned),
        features=[f for f, _ in on_grid],
    )


def clean_features(
    times: np.ndarray,
    features: np.ndarray,
    target: CleanSeries,
    freq: pd.offsets.BaseOffset | int,
    spec: InputSpec,
) -> tuple[np.ndarray, str]:
    """A series' features (n, F) on its target's grid, cleaned under the same policies
    as the target; and why the series cannot be used ("" when it can)."""
    none = np.empty((len(target.values), len(spec.features)))
    if target.skip or not spec.features:
        return none, ""
    columns = []
    for number, name in enumerate(spec.features):
        column = clean_series(times, features[:, number], freq, spec.missing, spec.duplicates)
        if column.skip:
            return none, f"feature {name!r}: {column.skip}"
        columns.append(column.values)
    return np.stack(columns, axis=1), ""


def read_series(spec: InputSpec) -> SeriesTable:
    """The whole input in memory, sorted by id: for small tables, tests and parity checks.

    Jobs never call this: their tasks read their own series (``lstm_worker.data.source``).
    """
    dataset = open_dataset(spec)
    rows = dataset.to_table(columns=input_columns(spec))
    if rows.num_rows == 0:
        raise InputError(f"{spec.path}: the table has no rows")
    rows = rows.take(pc.sort_indices(rows, [(spec.id_col, "ascending")]))  # stable
    return series_table(rows, spec, None, rows.schema)


def cleaning_totals(cleaned: list[CleanSeries]) -> dict[str, int]:
    usable = [c for c in cleaned if not c.skip]
    return {
        "series_skipped": len(cleaned) - len(usable),
        "series_filled": sum(c.filled > 0 for c in usable),
        "values_filled": sum(c.filled - c.inserted for c in usable),
        "steps_inserted": sum(c.inserted for c in usable),
        "rows_merged": sum(c.merged for c in usable),
    }


def _most_common_step(times: list[np.ndarray]) -> np.generic | None:
    """The most frequent positive step between consecutive times of the first series."""
    steps = np.concatenate([np.diff(t) for t in times[:SAMPLE_SERIES]])
    steps = steps[steps > steps.dtype.type(0)]
    if not len(steps):
        return None
    unique, counts = np.unique(steps, return_counts=True)
    most: np.generic = unique[counts.argmax()]
    return most


def resolve_freq(
    spec: InputSpec, times: list[np.ndarray], integer_clock: bool
) -> pd.offsets.BaseOffset | int:
    """The spec's freq, else inferred so that gaps or duplicates in a few series do not
    defeat it: pandas' inference on the longest series that allows it, else the most
    common step."""
    if integer_clock:
        if spec.freq is not None:
            raise InputError(
                f"input.freq: {spec.freq!r} given, but time column {spec.time_col!r} is an "
                "integer clock; leave freq out"
            )
        step = _most_common_step(times)
        return int(step) if step is not None else 1
    if spec.freq is not None:
        return pd.tseries.frequencies.to_offset(spec.freq)
    for longest in sorted(times[:SAMPLE_SERIES], key=len, reverse=True)[:20]:
        distinct = np.unique(longest[:1000])
        if len(distinct) < 3:
            break
        with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(pd.DatetimeIndex(distinct))
        if inferred is not None:
            return pd.tseries.frequencies.to_offset(inferred)
    step = _most_common_step(times)
    if not isinstance(step, np.timedelta64):  # None: no step; datetimes' steps are timedelta64
        raise InputError(
            f"{spec.path}: cannot infer the frequency of {spec.time_col!r}; set input.freq"
        )
    return pd.tseries.frequencies.to_offset(pd.Timedelta(step))


def freq_alias(freq: pd.offsets.BaseOffset | int) -> str:
    """The frequency as pandas' alias ("h", "D", "W-MON", "MS"), or an integer clock's step."""
    return str(freq) if isinstance(freq, int) else freq.freqstr


def season_from_freq(freq: pd.offsets.BaseOffset | int) -> int:
    """The usual seasonal period: a day of hours, a week of days, a year of months."""
    if isinstance(freq, int):
        return 1
    day = pd.Timedelta(days=1).value
    try:
        nanos = pd.Timedelta(freq).value  # type: ignore[arg-type]  # stubs: Tick only; others raise
    except ValueError:  # calendar offsets (months, quarters, years) have no fixed length
        name = freq.rule_code.upper()
        seasons = (
            ("SM", 24),
            ("BM", 12),
            ("BQ", 4),
            ("BY", 1),
            ("BA", 1),
            ("M", 12),
            ("Q", 4),
            ("W", 52),
            ("B", 5),
        )
        for prefix, season in seasons:
            if name.startswith(prefix):
                return season
        return 1
    if nanos < day and day % nanos == 0:
        return day // nanos
    if nanos == day:
        return 5 if freq.rule_code.startswith("B") else 7
    if nanos == 7 * day:
        return 52
    return 1


def seasons_from_freq(freq: pd.offsets.BaseOffset | int) -> tuple[int, ...]:
    """The calendar's periods, shortest first: a day and a week of hours, a week and a
    year of days, a year of weeks, months or quarters; () when there is none."""
    season = season_from_freq(freq)
    if season < 2:
        return ()
    if isinstance(freq, int):
        return (season,)
    try:
        nanos = pd.Timedelta(freq).value  # type: ignore[arg-type]  # stubs: Tick only; others raise
    except ValueError:
        return (season,)
    day = pd.Timedelta(days=1).value
    if nanos < day:  # sub-daily: the day, then the week
        return (season, 7 * season)
    if nanos == day and season == 7:
        return (7, 365)
    return (season,)


def future_times(
    last: np.integer | np.datetime64, steps: int, freq: pd.offsets.BaseOffset | int
) -> np.ndarray:
    """The ``steps`` timestamps after ``last``."""
    if isinstance(freq, int):
        return last + freq * np.arange(1, steps + 1, dtype=np.int64)
    return pd.date_range(pd.Timestamp(last), periods=steps + 1, freq=freq)[1:].to_numpy()
