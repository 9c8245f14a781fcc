"""The output directory: atomic writes, per-shard parts, and a guard against mixing jobs.

    OUTPUT/
      manifest.json         the job's key (spec digest, input fingerprint), status, counts
      parts/<name>/shard-000042.parquet   written as each shard finishes; metrics last
      forecasts.parquet, backtest.parquet, metrics.parquet   the parts compacted, in order

A shard counts as done when its metrics part exists, so a rerun of the same job resumes
where the last one stopped, and nothing finished is lost if the driver dies.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cluster.errors import OutputError

MANIFEST = "manifest.json"
FORECASTS, BACKTEST, METRICS_FILE = "forecasts.parquet", "backtest.parquet", "metrics.parquet"
CANDIDATES = "candidates.parquet"
OUTPUTS = (FORECASTS, BACKTEST, CANDIDATES, METRICS_FILE)  # metrics last: marks a shard done
PARTS = "parts"


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
        raise OutputError(f"output.path: {out} is inside input.path {source}; the next "
                          "read would take the outputs in as input. Choose another output.path")
    if out in source.parents and source.relative_to(out).parts[0] in (PARTS, MANIFEST, *OUTPUTS):
        raise OutputError(f"output.path: the job would overwrite its own input {source}; "
                          "choose another output.path")


def prepare_output_dir(path: str, job_key: dict[str, str], overwrite: bool) -> Path:
    """Create ``path`` if needed, check it is writable and not another job's output.

    ``job_key`` (spec digest and input fingerprint) identifies the job; an existing
    manifest with a different key is refused unless ``overwrite``, which starts afresh.
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
        for name in (*OUTPUTS, MANIFEST):
            (out / name).unlink(missing_ok=True)
    elif manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            old = {}
        old_key = {k: old.get(k) for k in job_key}
        if old_key != job_key:
            changed = ", ".join(k for k in job_key if old_key[k] != job_key[k])
            raise OutputError(
                f"output.path: {out} holds the outputs of a different job ({changed} differ); "
                "choose another output.path or pass --overwrite"
            )
    return out


def _part(out: Path, name: str, index: int) -> Path:
    return out / PARTS / name.removesuffix(".parquet") / f"shard-{index:06d}.parquet"


def write_shard(out: Path, index: int, tables: dict[str, pa.Table]) -> None:
    """Write one shard's outputs, each atomically, the metrics part last."""
    for name in OUTPUTS:
        path = _part(out, name, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(tables[name], path)


def finished_shards(out: Path) -> set[int]:
    """Indices of the shards whose parts are complete."""
    marker_dir = _part(out, METRICS_FILE, 0).parent
    return {int(p.stem.removeprefix("shard-")) for p in marker_dir.glob("shard-*.parquet")}


def compact(out: Path, n_shards: int, unwritten: dict[int, dict[str, pa.Table]]) -> None:
    """Concatenate the parts in shard order (plus ``unwritten`` shards) into the outputs."""
    for name in OUTPUTS:
        pieces = []
        for index in range(n_shards):
            if index in unwritten:
                pieces.append(unwritten[index][name])
            elif (path := _part(out, name, index)).exists():
                pieces.append(pq.read_table(path))
        write_parquet(pa.concat_tables(pieces), out / name)
