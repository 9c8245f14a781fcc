"""What is known of the horizon in advance: ``input.future_path``, and each series' track
of known inputs (calendar encodings, then features) from its first point to its horizon.

The future table has the input's contract: an id, a time and the feature columns, one
row per series and step after its last input time. The driver checks its footers only;
each task reads the rows of its own series (filtered as they are read), so the driver
never holds it. A series whose rows do not cover its horizon is skipped with the first
missing time; NaN features follow ``input.missing``, as in the input.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from lstm_worker import WorkerConfig
from lstm_worker.calendar import calendar_inputs
from lstm_worker.data.clean import dedupe, fill, when
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.place import Place, read_series
from lstm_worker.data.source import is_numeric
from lstm_worker.data.table import SeriesTable, future_times, split_rows
from lstm_worker.errors import InputError


def check_future(spec: InputSpec, input_schema: pa.Schema) -> None:
    """The future table exists and has the id, time and feature columns, typed as the
    input's are; raises ``InputError`` naming the file and column."""
    if not spec.future_path:
        return
    where = f"input.future_path: {spec.future_path}"
    place = Place(spec.future_path)
    try:
        if not place.exists():
            raise InputError(f"{where} does not exist")
        schema = pads.dataset(place.path, filesystem=place.fs, format="parquet").schema
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"{where}: cannot read: {str(error).splitlines()[0]}") from None
    needed = [spec.id_col, spec.time_col, *spec.features]
    missing = [c for c in needed if c not in schema.names]
    if missing:
        raise InputError(f"{where}: missing column(s) {missing}; found {schema.names}")
    for name in spec.features:
        if not is_numeric(schema.field(name).type):
            raise InputError(
                f"{where}: feature column {name!r} must be numeric, found {schema.field(name).type}"
            )
    for column in (spec.id_col, spec.time_col):
        found, wanted = schema.field(column).type, input_schema.field(column).type
        if _kind(found) != _kind(wanted):
            raise InputError(
                f"{where}: column {column!r} holds {_kind(found)} ({found}), but "
                f"{_kind(wanted)} ({wanted}) in input.path"
            )


def _kind(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "time"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_dictionary(kind):
        return _kind(kind.value_type)
    return "text" if pa.types.is_string(kind) or pa.types.is_large_string(kind) else str(kind)


def future_features(
    table: SeriesTable, spec: InputSpec, horizon: int
) -> tuple[list[np.ndarray], list[str]]:
    """Each usable series' features over its history and horizon (n + horizon, F), and
    per series why it cannot be used ("" when it can, or was not usable before). Only
    the rows of ``table``'s series are read of the future table."""
    tracks = [np.empty((0, len(spec.features)))] * len(table)
    notes = [""] * len(table)
    if not spec.features:
        return tracks, notes
    usable = table.usable()
    future = _future_rows(spec, [table.ids[p] for p in usable])
    for p in usable:
        steps = future_times(table.times[p][-1], horizon, table.freq)
        ahead, notes[p] = _ahead(future.get(table.ids[p]), steps, table.features[p], spec)
        if not notes[p]:
            tracks[p] = np.r_[table.features[p], ahead]
    return tracks, notes


def with_future(table: SeriesTable, spec: InputSpec, horizon: int) -> SeriesTable:
    """``table`` with each usable series' features through its horizon (``future``), and
    the series the future table does not cover skipped, saying why."""
    tracks, notes = future_features(table, spec, horizon)
    merged = [old or new for old, new in zip(table.notes, notes, strict=True)]
    return replace(table, notes=merged, future=tracks)


def known_inputs(
    table: SeriesTable, cfg: WorkerConfig, positions: list[int]
) -> list[np.ndarray] | None:
    """The known inputs (n + horizon, E) of the series at ``positions``, as
    ``cfg.covariates`` orders them: the calendar's encodings, then the features through
    the horizon (``with_future``); None when ``cfg`` has none."""
    if not cfg.covariates:
        return None
    tracks = []
    for p in positions:
        steps = future_times(table.times[p][-1], cfg.forecast.horizon, table.freq)
        parts = [calendar_inputs(np.r_[table.times[p], steps], cfg.calendar)]
        if cfg.features:
            parts.append(table.future[p])
        tracks.append(np.concatenate(parts, axis=1))
    return tracks


def _future_rows(spec: InputSpec, ids: list[object]) -> dict[object, tuple[np.ndarray, np.ndarray]]:
    """The future table's times and features (m, F) of each of ``ids`` that has rows."""
    assert spec.future_path is not None, "input.features need input.future_path (spec check)"
    columns = [spec.id_col, spec.time_col, *spec.features]
    try:
        rows = read_series(Place(spec.future_path), spec.id_col, ids, columns)
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(
            f"input.future_path: {spec.future_path}: cannot read: {str(error).splitlines()[0]}"
        ) from None
    if rows.num_rows == 0:
        return {}
    found, times, _, features = split_rows(rows, spec, target=False)
    return {i: (t, f) for i, t, f in zip(found, times, features, strict=True)}


def _ahead(
    future: tuple[np.ndarray, np.ndarray] | None,
    steps: np.ndarray,
    history: np.ndarray,
    spec: InputSpec,
) -> tuple[np.ndarray, str]:
    """One series' features (H, F) over its horizon ``steps``, from its rows of the
    future table (times, (m, F)), or why there are none; ``history`` (n, F) its input's."""
    where, horizon, none = f"input.future_path {spec.future_path}", len(steps), np.empty(0)
    if future is None:
        return none, f"{where} has no row for it (its horizon starts at {when(steps[0])})"
    times, features = future[0].astype(steps.dtype), future[1]
    columns = []
    for number, name in enumerate(spec.features):
        unique, values, _, skip = dedupe(times, features[:, number], spec.duplicates)
        if skip:
            return none, f"{where}: feature {name!r}: {skip}"
        columns.append(values)
    times, features = unique, np.stack(columns, axis=1)
    present = np.isin(steps, times)
    if not present.all():
        first = int(np.argmin(present))
        return none, (
            f"{where} covers {int(present.sum())} of the {horizon} horizon steps; the first "
            f"missing is {when(steps[first])} (step {first + 1})"
        )
    ahead = features[np.searchsorted(times, steps)]  # (H, F); rows past the horizon unread
    bad = ~np.isfinite(ahead)
    if not bad.any():
        return ahead, ""
    if spec.missing == "skip":
        row, column = np.argwhere(bad)[0]
        return none, (
            f"{where}: feature {spec.features[column]!r} is NaN at {when(steps[row])}; "
            "input.missing is skip"
        )
    return _filled(history, ahead, spec.missing), ""


def _filled(history: np.ndarray, ahead: np.ndarray, policy: str) -> np.ndarray:
    """The horizon's NaN features filled as ``input.missing`` fills the input: along each
    feature's whole track, its history's values included."""
    track = np.r_[history, ahead]
    filled = np.stack(
        [fill(track[:, c], ~np.isfinite(track[:, c]), policy) for c in range(track.shape[1])],
        axis=1,
    )
    return filled[len(history) :]
