"""The output directory: atomic writes, and a guard against mixing two jobs' results."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cluster.errors import OutputError

MANIFEST = "manifest.json"


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


def prepare_output_dir(path: str, job_key: dict[str, str], overwrite: bool) -> Path:
    """Create ``path`` if needed, check it is writable and not another job's output.

    ``job_key`` (spec digest and input fingerprint) identifies the job; an existing
    manifest with a different key is refused unless ``overwrite``.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe.")
        probe.close()
    except OSError as error:
        raise OutputError(f"output.path: cannot write to {out}: {error.strerror}") from None
    manifest = out / MANIFEST
    if manifest.exists() and not overwrite:
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
