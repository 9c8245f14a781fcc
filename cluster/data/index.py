"""The Parquet input as the driver sees it: an index of where each series lies.

The driver never holds the values: it streams the id column once to learn, per series,
its file, first row and row count (a task then reads its own rows with
``lstm_worker.data.source.read_rows``). This needs every series to be one run of
consecutive rows in one file (sorted by id, or at least grouped); input that is not is
re-partitioned once by ``cluster.data.prepare``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lstm_worker.data.contract import InputSpec
from lstm_worker.data.source import input_columns, open_dataset, plain_ids
from lstm_worker.errors import InputError

_SCAN_BATCH = 1 << 20  # rows per batch while scanning ids: bounds the driver's memory


@dataclass(frozen=True)
class SeriesIndex:
    """Where every series' rows are; one entry per series, in file then row order."""

    files: list[str]  # paths within the input's file system
    ids: pa.Array  # (n,)
    file: np.ndarray  # (n,) int32: the series' file, an index into ``files``
    first_row: np.ndarray  # (n,) int64: its first row in that file
    rows: np.ndarray  # (n,) int64: its row count
    schema: pa.Schema  # the id, time, target and feature columns, one type each across files
    grouped: bool  # every series is one run of rows in one file; if not, the rest is empty
    total_rows: int

    def __len__(self) -> int:
        return len(self.ids)


def input_fingerprint(spec: InputSpec) -> str:
    """Names, sizes and modification times of the input files: cheap and change-sensitive."""
    dataset = open_dataset(spec)
    digest = hashlib.sha256()
    infos = dataset.filesystem.get_file_info(sorted(dataset.files))
    for info in infos:
        digest.update(f"{info.path}:{info.size}:{info.mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def scan_index(spec: InputSpec) -> SeriesIndex:
    """Stream the id column (and check the time column for nulls) into a ``SeriesIndex``.

    Memory is one batch of rows plus a few numbers per series. The scan stops early,
    with ``grouped`` false, as soon as one id is seen in two runs of rows.
    """
    dataset = open_dataset(spec)
    schema = dataset.schema
    columns = [spec.id_col, spec.time_col]
    files, run_ids, run_file, run_start, file_rows = list(dataset.files), [], [], [], []
    total = 0
    for number, name in enumerate(files):
        previous, offset = None, 0
        for batch in _batches(dataset.filesystem, name, columns, spec):
            ids, times = batch.column(0), batch.column(1)
            if ids.null_count:
                raise InputError(f"{name}: id column {spec.id_col!r} has null values")
            if times.null_count:
                raise InputError(f"{name}: time column {spec.time_col!r} has null values")
            ids = plain_ids(ids)
            changed = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(np.r_[True, changed])  # first row of each run in the batch
            if pc.count_distinct(ids).as_py() < len(starts):  # an id in two runs
                return _ungrouped(dataset, spec)
            if previous is not None and ids[0].as_py() == previous:
                starts = starts[1:]  # the batch continues the last run of the previous one
            run_ids.append(ids.take(pa.array(starts, pa.int64())))
            run_start.append(starts + offset)
            run_file.append(np.full(len(starts), number, np.int32))
            previous, offset = ids[-1].as_py(), offset + len(ids)
        file_rows.append(offset)
        total += offset
    if total == 0:
        raise InputError(f"{spec.path}: the table has no rows")
    all_ids = pa.concat_arrays(run_ids)
    if pc.count_distinct(all_ids).as_py() < len(all_ids):  # an id in two files, or two runs
        return _ungrouped(dataset, spec)
    first_row = np.concatenate(run_start).astype(np.int64)
    file = np.concatenate(run_file)
    same_file_next = np.r_[file[1:] == file[:-1], False]
    ends = np.where(same_file_next, np.r_[first_row[1:], 0], np.asarray(file_rows)[file])
    return SeriesIndex(
        files,
        all_ids,
        file,
        first_row,
        ends - first_row,
        _columns(schema, spec),
        grouped=True,
        total_rows=total,
    )


def _ungrouped(dataset: pads.Dataset, spec: InputSpec) -> SeriesIndex:
    schema, empty = dataset.schema, np.empty(0, np.int64)
    return SeriesIndex(
        list(dataset.files),
        pa.array([], pa.null()),
        empty.astype(np.int32),
        empty,
        empty,
        _columns(schema, spec),
        grouped=False,
        total_rows=dataset.count_rows(),
    )


def _columns(schema: pa.Schema, spec: InputSpec) -> pa.Schema:
    return pa.schema([schema.field(c) for c in input_columns(spec)])


def _batches(
    fs: pafs.FileSystem, name: str, columns: list[str], spec: InputSpec
) -> Iterator[pa.RecordBatch]:
    try:
        with fs.open_input_file(name) as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=_SCAN_BATCH, columns=columns)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{name}: cannot read: {error}") from None
