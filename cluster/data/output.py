"""The output directory: atomic writes, per-shard parts, and a guard against mixing jobs.

    OUTPUT/
      manifest.json         the job's key (spec digest, input fingerprint), status, counts
      parts/<name>/shard-000042.parquet   written by the shard's task; metrics last
      parts/failed/<name>/shard-000042.parquet   a shard whose task failed: retried next run
      parts/pending/shard-000042.parquet  a shard's results awaiting a global choice
      prepared/             the input copied sorted by id, when it was not grouped by series
      forecasts.parquet, backtest.parquet, candidates.parquet, metrics.parquet   compacted
      accuracy.parquet      the forecast ledger, when the run scores a previous one
      models/shard-000042.safetensors   the series' chosen models (cluster.data.models)

A shard counts as done when its metrics part exists, so a rerun of the same job resumes
where the last one stopped, and nothing finished is lost if the driver dies.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cluster.errors import OutputError

MANIFEST = "manifest.json"
FORECASTS, BACKTEST, METRICS_FILE = "forecasts.parquet", "backtest.parquet", "metrics.parquet"
CANDIDATES, ACCURACY = "candidates.parquet", "accuracy.parquet"
OUTPUTS = (FORECASTS, BACKTEST, CANDIDATES, ACCURACY, METRICS_FILE)  # metrics last: a shard done
OPTIONAL = (ACCURACY,)  # written only by a run that scores a previous one (monitor.previous)
PARTS = "parts"
FAILED = "failed"  # parts/failed/<name>/: shards whose task failed, retried by a rerun
PENDING = "pending"  # parts/pending/shard-N.parquet: a shard's results awaiting a global choice
PREPARED = "prepared"  # the input re-partitioned by series, when it was not
MODELS = "models"  # models/shard-N.safetensors: the model store (cluster.data.models)
_CLEANING = "runner.input_cleaning"
_CLEANING_KEY = _CLEANING.encode()


def _atomic(path: Path, write: Any) -> None:
    """Write through a temp file in the same directory, then rename over ``path``."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_parquet(table: pa.Table, path: Path) -> None:
    _atomic(path, lambda temp: pq.write_table(table, temp))


def write_bytes(payload: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda temp: Path(temp).write_bytes(payload))


def write_json(payload: dict, path: Path) -> None:
    def dump(temp: str) -> None:
        Path(temp).write_text(json.dumps(payload, indent=2, default=str) + "\n")

    _atomic(path, dump)


def check_output_path(path: str, input_path: str) -> None:
    """Refuse an output.path whose writes would land in the input.

    Every write goes under output.path, by fixed names (``OUTPUTS``, ``parts/``, the
    report); no name comes from the data. Outputs inside an input directory would be
    read back as input next time; an input at one of those names would be overwritten.
    """
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
) -> Path:
    """Create ``path`` if needed, check it is writable and not another job's output.

    ``job_key`` (spec digest and input fingerprint) identifies the job; the manifest
    there, whose key is ``previous_key`` ({} when it does not read), is refused when it
    differs unless ``overwrite``, which starts afresh.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe.")
        probe.close()
    except OSError as error:
        raise OutputError(f"output.path: cannot write to {out}: {error.strerror}") from None
    manifest = out / MANIFEST
    if overwrite:
        shutil.rmtree(out / PARTS, ignore_errors=True)
        shutil.rmtree(out / PREPARED, ignore_errors=True)
        shutil.rmtree(out / MODELS, ignore_errors=True)
        for name in (*OUTPUTS, MANIFEST):
            (out / name).unlink(missing_ok=True)
    elif manifest.exists():
        old_key = {k: (previous_key or {}).get(k) for k in job_key}
        if old_key != job_key:
            changed = ", ".join(k for k in job_key if old_key[k] != job_key[k])
            raise OutputError(
                f"output.path: {out} holds the outputs of a different job ({changed} differ); "
                "choose another output.path or pass --overwrite"
            )
    return out.resolve()  # tasks on any node write their parts here


def _shard_file(index: int, suffix: str = ".parquet") -> str:
    return f"shard-{index:06d}{suffix}"


def _shard_indices(folder: Path, suffix: str = ".parquet") -> set[int]:
    """The indices of the shard files in ``folder``."""
    return {
        int(p.name.removeprefix("shard-").removesuffix(suffix))
        for p in folder.glob(f"shard-*{suffix}")
    }


def _part(out: Path, name: str, index: int, failed: bool = False) -> Path:
    folder = out / PARTS / FAILED if failed else out / PARTS
    return folder / name.removesuffix(".parquet") / _shard_file(index)


def write_shard(
    out: Path,
    index: int,
    tables: dict[str, pa.Table],
    cleaning: dict[str, int] | None = None,
    failed: bool = False,
) -> None:
    """Write one shard's outputs, each atomically, the metrics part last.

    The shard's input-cleaning totals ride in the metrics part's Parquet metadata. A
    shard whose task ``failed`` goes under ``parts/failed/``, so a rerun retries it.
    """
    for name in OUTPUTS:
        if name in OPTIONAL and name not in tables:
            continue
        table = tables[name]
        if name == METRICS_FILE and cleaning:
            table = table.replace_schema_metadata({_CLEANING: json.dumps(cleaning)})
        path = _part(out, name, index, failed)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(table, path)


def finished_shards(out: Path) -> set[int]:
    """Indices of the shards whose parts are complete."""
    return _shard_indices(_part(out, METRICS_FILE, 0).parent)


def pending_part(out: Path, index: int) -> Path:
    return out / PARTS / PENDING / _shard_file(index)


def pending_shards(out: Path) -> set[int]:
    """Shards whose search pass is kept, awaiting the choose pass."""
    return _shard_indices(out / PARTS / PENDING)


def compact(out: Path, n_shards: int) -> tuple[dict[str, int], dict[str, int]]:
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
            if (path := _part(out, name, index)).exists()
            or (path := _part(out, name, index, failed=True)).exists()
        ]
        if name in OPTIONAL and not paths:
            continue
        if name == METRICS_FILE:
            _atomic(out / name, partial(_concatenate, paths, counts=counts, cleaning=cleaning))
        else:
            _atomic(out / name, partial(_concatenate, paths))
    return dict(counts), dict(cleaning)


def _concatenate(
    paths: list[Path], temp: str, counts: Counter | None = None, cleaning: Counter | None = None
) -> None:
    writer = None
    try:
        for path in paths:
            table = pq.read_table(path)
            if cleaning is not None and (meta := table.schema.metadata or {}).get(_CLEANING_KEY):
                cleaning.update(json.loads(meta[_CLEANING_KEY]))
            table = table.replace_schema_metadata(None)
            if counts is not None:
                counts.update(table.column("status").to_pylist())
            if writer is None:
                writer = pq.ParquetWriter(temp, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise OutputError(f"no parts to compact into {temp}")
