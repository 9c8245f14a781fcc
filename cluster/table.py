"""Read the long Parquet table once, validate it at the edge, split it into series.

The contract (Nixtla's long format, with configurable names): one row per series and
time step, an id column, a timestamp or integer time column, and a numeric target.
Every problem found with the table is reported together, naming file and column.
A problem of one series (duplicates, gaps, NaN) is not a problem of the table: each
series is cleaned by ``cluster.clean``, and one that cannot be used carries a note.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from cluster.clean import CleanSeries, clean_series
from cluster.errors import InputError
from cluster.spec import InputSpec


@dataclass(frozen=True)
class SeriesTable:
    """The input, sorted by id then time, as one pair of arrays per series.

    A usable series is on its regular grid with finite values; one with a ``notes``
    entry is not (its arrays are as read) and is reported as skipped, never trained.
    """

    ids: list[object]
    times: list[np.ndarray]  # per series: datetime64 or int64, ascending
    values: list[np.ndarray]  # per series: float64
    freq: pd.DateOffset | int  # a pandas offset, or the step of an integer clock
    time_type: pa.DataType  # the input's time column type, kept for the outputs
    id_type: pa.DataType
    notes: list[str]  # per series: why it is skipped; "" when usable
    filled: list[int]  # per series: NaN/inf values and missing steps filled
    cleaning: dict[str, int]  # totals: values_filled, steps_inserted, rows_merged, ...

    def __len__(self) -> int:
        return len(self.ids)

    def usable(self) -> list[int]:
        return [p for p, note in enumerate(self.notes) if not note]


def _check_schema(schema: pa.Schema, spec: InputSpec, path: Path) -> None:
    problems = []
    names = {"input.id_col": spec.id_col, "input.time_col": spec.time_col,
             "input.target_col": spec.target_col}
    missing = [f"{col!r} ({key})" for key, col in names.items() if col not in schema.names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}; found {schema.names}")
    if spec.target_col in schema.names:
        kind = schema.field(spec.target_col).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind)):
            problems.append(f"target column {spec.target_col!r} must be numeric, found {kind}")
    if spec.time_col in schema.names:
        kind = schema.field(spec.time_col).type
        if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)
                or pa.types.is_integer(kind)):
            problems.append(
                f"time column {spec.time_col!r} must be a timestamp, date or integer, found {kind}"
            )
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))


def open_dataset(spec: InputSpec) -> pads.Dataset:
    path = Path(spec.path)
    if not path.exists():
        raise InputError(f"input.path: {path} does not exist")
    try:
        dataset = pads.dataset(path, format="parquet")
        dataset.schema  # noqa: B018 - forces the footer read
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path}: not a readable Parquet file or directory: {error}") from None
    return dataset


def read_series(spec: InputSpec) -> SeriesTable:
    """Read only the three needed columns and split them into per-series arrays."""
    dataset = open_dataset(spec)
    path = Path(spec.path)
    _check_schema(dataset.schema, spec, path)
    try:
        table = dataset.to_table(columns=[spec.id_col, spec.time_col, spec.target_col])
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path}: cannot read: {error}") from None
    if table.num_rows == 0:
        raise InputError(f"{path}: the table has no rows")
    if table.column(spec.id_col).null_count:
        raise InputError(f"{path}: id column {spec.id_col!r} has null values")
    if table.column(spec.time_col).null_count:
        raise InputError(f"{path}: time column {spec.time_col!r} has null values")
    time_type = table.schema.field(spec.time_col).type
    frame = table.to_pandas()
    if pa.types.is_date(time_type):
        frame[spec.time_col] = pd.to_datetime(frame[spec.time_col])
    frame = frame.sort_values([spec.id_col, spec.time_col], kind="stable")
    codes, _ = pd.factorize(frame[spec.id_col])
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # first row of each series
    ids = frame[spec.id_col].to_numpy()[starts].tolist()
    times = np.split(frame[spec.time_col].to_numpy(), starts[1:])
    values = np.split(frame[spec.target_col].to_numpy(dtype=np.float64, na_value=np.nan), starts[1:])
    integer_clock = pa.types.is_integer(time_type)
    freq = _resolve_freq(spec, times, integer_clock)
    cleaned = [clean_series(t, v, freq, spec.missing, spec.duplicates)
               for t, v in zip(times, values)]
    return SeriesTable(
        ids, [c.times for c in cleaned], [c.values for c in cleaned], freq, time_type,
        table.schema.field(spec.id_col).type, notes=[c.skip for c in cleaned],
        filled=[c.filled for c in cleaned], cleaning=_totals(cleaned),
    )


def _totals(cleaned: list[CleanSeries]) -> dict[str, int]:
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
    steps = np.concatenate([np.diff(t) for t in times[:1000]])
    steps = steps[steps > steps.dtype.type(0)]
    if not len(steps):
        return None
    unique, counts = np.unique(steps, return_counts=True)
    return unique[counts.argmax()]


def _resolve_freq(spec: InputSpec, times: list[np.ndarray], integer_clock: bool):
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
    for longest in sorted(times[:1000], key=len, reverse=True)[:20]:
        distinct = np.unique(longest[:1000])
        if len(distinct) < 3:
            break
        with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(pd.DatetimeIndex(distinct))
        if inferred is not None:
            return pd.tseries.frequencies.to_offset(inferred)
    step = _most_common_step(times)
    if step is None:
        raise InputError(
            f"{spec.path}: cannot infer the frequency of {spec.time_col!r}; set input.freq"
        )
    return pd.tseries.frequencies.to_offset(pd.Timedelta(step))


def season_from_freq(freq: pd.DateOffset | int) -> int:
    """The usual seasonal period: a day of hours, a week of days, a year of months."""
    if isinstance(freq, int):
        return 1
    day = pd.Timedelta(days=1).value
    try:
        nanos = pd.Timedelta(freq).value
    except ValueError:  # calendar offsets (months, quarters, years) have no fixed length
        name = freq.name.upper()
        seasons = (("SM", 24), ("BM", 12), ("BQ", 4), ("BY", 1), ("BA", 1), ("M", 12),
                   ("Q", 4), ("W", 52), ("B", 5))
        for prefix, season in seasons:
            if name.startswith(prefix):
                return season
        return 1
    if nanos < day and day % nanos == 0:
        return day // nanos
    if nanos == day:
        return 5 if freq.name.startswith("B") else 7
    if nanos == 7 * day:
        return 52
    return 1


def future_times(last: np.ndarray | object, steps: int, freq: pd.DateOffset | int) -> np.ndarray:
    """The ``steps`` timestamps after ``last``."""
    if isinstance(freq, int):
        return last + freq * np.arange(1, steps + 1, dtype=np.int64)
    return pd.date_range(pd.Timestamp(last), periods=steps + 1, freq=freq)[1:].to_numpy()
