"""A one-time re-partition of input whose series are not runs of consecutive rows.

Tasks read their series by row ranges (``lstm_worker.data.source.read_rows``), so each
series must be one run of rows in one file. A table appended to by date, or shuffled, is
not; this writes an id-sorted copy in files of whole series, streaming, so the driver
never holds more than one bucket of rows:

    1. the distinct ids, sorted                         (one pass over the id column)
    2. rows appended to bucket files by id range        (one pass over three columns)
    3. each bucket sorted by (id, time) into part-NNNNN.parquet

The copy lists the ids in the same order as an id-sorted single file would, so a job
gives the same outputs on either. ``runner run`` does this by itself, into the output
directory, when it meets such input; ``runner prepare`` does it once, for many jobs.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from lstm_worker.data.contract import InputSpec
from lstm_worker.data.place import Place
from lstm_worker.data.source import input_columns, open_dataset, plain_ids

ROWS_PER_FILE = 2_000_000  # rows of one output file; a bucket is sorted in memory
ROWS_PER_GROUP = 65_536  # small row groups: a task reads little beyond its own rows
_DONE = "_prepared.json"  # written last; names the input it was prepared from


def prepared_from(dest: Place | Path) -> str | None:
    """The input fingerprint ``dest`` was prepared from, if it is complete."""
    try:
        return json.loads((Place(dest) / _DONE).read_text())["input_fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def prepare_input(spec: InputSpec, into: Place | Path, fingerprint: str) -> dict[str, float]:
    """Write an id-sorted, id-partitioned copy of ``spec``'s table into ``into``; it is
    marked as prepared from the input whose ``input_fingerprint`` is ``fingerprint``."""
    started, dest = time.perf_counter(), Place(into)
    dataset = open_dataset(spec)
    columns = input_columns(spec)
    ids = _sorted_ids(dataset, spec.id_col)
    rows = dataset.count_rows()
    buckets = max(1, math.ceil(rows / ROWS_PER_FILE))
    lookup = pd.Index(ids.to_numpy(zero_copy_only=False))  # hashes the ids once

    def with_bucket():
        for batch in dataset.to_batches(columns=columns):
            position = lookup.get_indexer(
                plain_ids(batch.column(0)).to_numpy(zero_copy_only=False)
            )  # (rows,)
            bucket = position * buckets // len(ids)
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(position, pa.int64()), pa.array(bucket, pa.int32())],
                names=[*columns, "_position", "_bucket"],
            )

    dest.rmtree()
    staging = dest / "_staging"
    schema = pa.schema(
        [
            *(dataset.schema.field(c) for c in columns),
            pa.field("_position", pa.int64()),
            pa.field("_bucket", pa.int32()),
        ]
    )
    pads.write_dataset(
        pads.Scanner.from_batches(with_bucket(), schema=schema),
        staging.path,
        filesystem=staging.fs,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([("_bucket", pa.int32())])),
        max_open_files=min(buckets + 1, 1024),
        existing_data_behavior="overwrite_or_ignore",
    )
    for bucket in range(buckets):
        source = staging / str(bucket)
        if not source.exists():
            continue
        table = pads.dataset(source.path, filesystem=source.fs, format="parquet").to_table()
        order = np.lexsort(
            (table.column(spec.time_col).to_numpy(), table.column("_position").to_numpy())
        )  # stable: by id, then time
        table = table.take(order).select(columns)
        part = dest / f"part-{bucket:05d}.parquet"
        pq.write_table(table, part.path, filesystem=part.fs, row_group_size=ROWS_PER_GROUP)
    staging.rmtree()
    report = {
        "input_fingerprint": fingerprint,
        "source": spec.path,
        "rows": rows,
        "series": len(ids),
        "files": buckets,
        "seconds": round(time.perf_counter() - started, 3),
    }
    (dest / _DONE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _sorted_ids(dataset: pads.Dataset, id_col: str) -> pa.Array:
    """Every distinct id, ascending; memory is the distinct ids plus one batch."""
    seen: list[pa.Array] = []
    for batch in dataset.to_batches(columns=[id_col]):
        seen.append(pc.unique(plain_ids(batch.column(0))))
        if len(seen) > 64:
            seen = [pc.unique(pa.concat_arrays(seen))]
    distinct = pc.unique(pa.concat_arrays(seen))
    return distinct.take(pc.sort_indices(distinct))
