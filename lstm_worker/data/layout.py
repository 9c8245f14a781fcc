"""The output directory: atomic writes, per-shard parts, and a guard against mixing jobs.

    OUTPUT/
      manifest.json         the job's key (spec digest, input fingerprint), status, counts
      parts/<name>/shard-000042.parquet   written by the shard's task; metrics last
      parts/failed/<name>/shard-000042.parquet   a shard whose task failed: retried next run
      parts/pending/shard-000042.parquet  a shard's results awaiting a global choice
      prepared/             the input copied sorted by id, when it was not grouped by series
      forecasts.parquet, backtest.parquet, candidates.parquet, metrics.parquet   compacted
      ledger.parquet      the forecast ledger, when the run scores a previous one
      models/shard-000042.safetensors   the series' chosen models (lstm_worker.data.models)

A shard counts as done when its metrics part exists, so a rerun of the same job resumes
where the last one stopped, and nothing finished is lost if the driver dies.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from lstm_worker.data.place import (
    Place,
    write_parquet,
)

MANIFEST = "manifest.json"
FORECASTS, BACKTEST, METRICS_FILE = "forecasts.parquet", "backtest.parquet", "metrics.parquet"
CANDIDATES, LEDGER = "candidates.parquet", "ledger.parquet"
OUTPUTS = (FORECASTS, BACKTEST, CANDIDATES, LEDGER, METRICS_FILE)  # metrics last: a shard done
OPTIONAL = (LEDGER,)  # written only by a run that scores a previous one (ledger.previous)
PARTS = "parts"
FAILED = "failed"  # parts/failed/<name>/: shards whose task failed, retried by a rerun
PENDING = "pending"  # parts/pending/shard-N.parquet: a shard's results awaiting a global choice
PREPARED = "prepared"  # the input re-partitioned by series, when it was not
MODELS = "models"  # models/shard-N.safetensors: the model store (lstm_worker.data.models)
TABLE_MODEL = f"{MODELS}/table.safetensors"  # the table model (lstm_worker.table.models)
_CLEANING = "runner.input_cleaning"
CLEANING_KEY = _CLEANING.encode()


def write_json(payload: dict[str, Any], path: Place) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _shard_file(index: int, suffix: str = ".parquet") -> str:
    return f"shard-{index:06d}{suffix}"


def shard_indices(folder: Place, suffix: str = ".parquet") -> set[int]:
    """The indices of the shard files in ``folder``."""
    return {
        int(p.name.removeprefix("shard-").removesuffix(suffix))
        for p in folder.glob(f"shard-*{suffix}")
    }


def shard_part(out: Place, name: str, index: int, failed: bool = False) -> Place:
    folder = out / PARTS / FAILED if failed else out / PARTS
    return folder / name.removesuffix(".parquet") / _shard_file(index)


def write_shard(
    out: Place,
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
        write_parquet(table, shard_part(out, name, index, failed))


def pending_part(out: Place, index: int) -> Place:
    return out / PARTS / PENDING / _shard_file(index)
