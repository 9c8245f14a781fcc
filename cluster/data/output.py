"""The driver's side of the output directory (its layout and a shard's parts are
``lstm_worker.data.layout``'s): a guard against writing into the input or mixing jobs,
which shards are done, and the compaction of every part into one file per output.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lstm_worker.data.layout import (
    CLEANING_KEY,
    MANIFEST,
    METRICS_FILE,
    MODELS,
    OPTIONAL,
    OUTPUTS,
    PARTS,
    PENDING,
    PREPARED,
    shard_indices,
    shard_part,
)
from lstm_worker.data.place import (
    Place,
    atomic_local,
    is_remote,
    read_table,
    remote_write,
    why,
)
from lstm_worker.errors import OutputError


def check_output_path(path: str, input_path: str) -> None:
    """Refuse an output.path whose writes would land in the input.

    Every write goes under output.path, by fixed names (``OUTPUTS``, ``parts/``, the
    report); no name comes from the data. Outputs inside an input directory would be
    read back as input next time; an input at one of those names would be overwritten.
    """
    if is_remote(path) or is_remote(input_path):
        out_uri, source_uri = str(Place(path)), str(Place(input_path))
        if out_uri == source_uri or out_uri.startswith(source_uri + "/"):
            raise OutputError(
                f"output.path: {out_uri} is inside input.path {source_uri}; the next "
                "read would take the outputs in as input. Choose another output.path"
            )
        return
    out, source = Path(path).resolve(), Path(input_path).resolve()
    if out == source or source in out.parents:
        raise OutputError(
            f"output.path: {out} is inside input.path {source}; the next "
            "read would take the outputs in as input. Choose another output.path"
        )
    own_names = (PARTS, PREPARED, MANIFEST, *OUTPUTS)
    if out in source.parents and source.relative_to(out).parts[0] in own_names:
        raise OutputError(
            f"output.path: the job would overwrite its own input {source}; "
            "choose another output.path"
        )


def prepare_output_dir(
    path: str, previous_key: dict[str, str] | None, job_key: dict[str, str], overwrite: bool
) -> Place:
    """Create ``path`` if needed, check it is writable and not another job's output.

    ``job_key`` (spec digest and input fingerprint) identifies the job; the manifest
    there, whose key is ``previous_key`` ({} when it does not read), is refused when it
    differs unless ``overwrite``, which starts afresh.
    """
    out = Place(path)
    try:
        out.mkdir()
        probe = out / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OutputError(f"output.path: cannot write to {out}: {why(error)}") from None
    manifest = out / MANIFEST
    if overwrite:
        for folder in (PARTS, PREPARED, MODELS):
            (out / folder).rmtree()
        for name in (*OUTPUTS, MANIFEST):
            (out / name).unlink()
    elif manifest.exists():
        old_key = {k: (previous_key or {}).get(k) for k in job_key}
        if old_key != job_key:
            changed = ", ".join(k for k in job_key if old_key[k] != job_key[k])
            raise OutputError(
                f"output.path: {out} holds the outputs of a different job ({changed} differ); "
                "choose another output.path or pass --overwrite"
            )
    return out.resolve()  # tasks on any node write their parts here


def finished_shards(out: Place) -> set[int]:
    """Indices of the shards whose parts are complete."""
    return shard_indices(shard_part(out, METRICS_FILE, 0).parent)


def pending_shards(out: Place) -> set[int]:
    """Shards whose search pass is kept, awaiting the choose pass."""
    return shard_indices(out / PARTS / PENDING)


def compact(out: Place, n_shards: int) -> tuple[dict[str, int], dict[str, int]]:
    """Stream the parts, in shard order, into the single-file outputs; one part in memory
    at a time. A shard whose task failed has its failed-metrics part instead.

    Returns the series counts by status and the summed input-cleaning totals.
    """
    counts: Counter[str] = Counter()
    cleaning: Counter[str] = Counter()
    for name in OUTPUTS:
        paths = [
            path
            for index in range(n_shards)
            if (path := shard_part(out, name, index)).exists()
            or (path := shard_part(out, name, index, failed=True)).exists()
        ]
        if name in OPTIONAL and not paths:
            continue
        if name == METRICS_FILE:
            _write_stream(
                out / name, partial(_concatenate, paths, counts=counts, cleaning=cleaning)
            )
        else:
            _write_stream(out / name, partial(_concatenate, paths))
    return dict(counts), dict(cleaning)


def _write_stream(place: Place, write: Any) -> None:
    """``write(sink, filesystem)`` streams one file: locally to a temporary file renamed
    over ``place``, on a store as one upload that completes only when it closes."""
    if place.local:
        atomic_local(Path(place.uri), lambda temp: write(temp, None))
    else:
        with remote_write(place):
            write(place.path, place.fs)


def _concatenate(
    paths: list[Place],
    sink: str,
    filesystem: Any,
    counts: Counter | None = None,
    cleaning: Counter | None = None,
) -> None:
    writer = None
    try:
        for path in paths:
            table = read_table(path)
            if cleaning is not None and (meta := table.schema.metadata or {}).get(CLEANING_KEY):
                cleaning.update(json.loads(meta[CLEANING_KEY]))
            table = table.replace_schema_metadata(None)
            if counts is not None:
                counts.update(table.column("status").to_pylist())
            if writer is None:
                writer = pq.ParquetWriter(sink, table.schema, filesystem=filesystem)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise OutputError(f"no parts to compact into {sink}")
