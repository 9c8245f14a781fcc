"""The Parquet input as the driver sees it (an index of where each series lies) and as a
task reads it (the rows of its own series, nothing else).

The driver never holds the values: it streams the id column once to learn, per series,
its file, first row and row count. A task then reads only the row groups that hold its
series. This needs every series to be one run of consecutive rows in one file (sorted
by id, or at least grouped); input that is not is re-partitioned once by
``cluster.data.prepare``. Paths may be local (shared by every node) or URIs that pyarrow's
file systems open, such as ``s3://bucket/table/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lstm_worker.data.contract import InputSpec
from lstm_worker.data.place import filesystem
from lstm_worker.errors import InputError


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    try:
        fs, root = filesystem(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"input.path: cannot open {path}: {error}") from None
    return fs, (str(Path(root).resolve()) if "://" not in path else root)


def open_dataset(spec: InputSpec) -> pads.Dataset:
    """The input as a dataset (footers only), with its schema checked."""
    fs, root = _filesystem(spec.path)
    try:
        found = fs.get_file_info(root).type != pafs.FileType.NotFound
    except OSError as error:  # a store that refuses the credentials, or is not there
        raise InputError(
            f"input.path: cannot read {spec.path}: {str(error).splitlines()[0]}"
        ) from None
    if not found:
        raise InputError(f"input.path: {spec.path} does not exist")
    try:
        dataset = pads.dataset(root, filesystem=fs, format="parquet")
        dataset.schema  # noqa: B018 - forces the footer read
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(
            f"{spec.path}: not a readable Parquet file or directory: {error}"
        ) from None
    _check_schema(dataset.schema, spec)
    return dataset


def _check_schema(schema: pa.Schema, spec: InputSpec) -> None:
    problems = []
    names = {
        "input.id_col": spec.id_col,
        "input.time_col": spec.time_col,
        "input.target_col": spec.target_col,
    }
    missing = [f"{col!r} ({key})" for key, col in names.items() if col not in schema.names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}; found {schema.names}")
    absent = [f for f in spec.features if f not in schema.names]
    if absent:
        problems.append(
            f"missing feature column(s) {absent} (input.features); found {schema.names}"
        )
    for role, column in [("target", spec.target_col), *(("feature", f) for f in spec.features)]:
        if column in schema.names and not is_numeric(schema.field(column).type):
            problems.append(
                f"{role} column {column!r} must be numeric, found {schema.field(column).type}"
            )
    if spec.time_col in schema.names:
        kind = schema.field(spec.time_col).type
        if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_integer(kind)):
            problems.append(
                f"time column {spec.time_col!r} must be a timestamp, date or integer, found {kind}"
            )
    if problems:
        raise InputError(f"{spec.path}: " + "; ".join(problems))


def is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def plain_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Ids without dictionary encoding, so that they compare by value."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    return ids.dictionary_decode() if pa.types.is_dictionary(ids.type) else ids


def input_columns(spec: InputSpec) -> list[str]:
    """The columns a job reads of the input: id, time, target, then the features."""
    return [spec.id_col, spec.time_col, spec.target_col, *spec.features]


def read_rows(
    spec: InputSpec,
    files: list[str],
    segments: list[tuple[int, int, int]],
    schema: pa.Schema | None = None,
) -> pa.Table:
    """The id, time, target (and feature) rows of ``segments`` (file index, first row,
    stop row).

    Only the row groups that overlap a segment are read. ``schema`` (the index's)
    unifies column types that differ between files.
    """
    fs, _ = _filesystem(spec.path)
    columns = input_columns(spec)
    pieces = []
    for number, start, stop in segments:
        with fs.open_input_file(files[number]) as handle:
            parquet = pq.ParquetFile(handle)
            sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
            bounds = np.r_[0, np.cumsum(sizes)]  # (groups + 1,) first row of each group
            first = int(np.searchsorted(bounds, start, "right")) - 1
            last = int(np.searchsorted(bounds, stop - 1, "right")) - 1
            rows = parquet.read_row_groups(range(first, last + 1), columns=columns)
        piece = rows.slice(start - bounds[first], stop - start)
        if schema is not None:
            piece = piece.cast(schema)
        pieces.append(piece)
    return pa.concat_tables(pieces)
