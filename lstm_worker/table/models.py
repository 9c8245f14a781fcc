"""The table model as the run keeps it, beside the series' models:

    OUTPUT/models/table.safetensors

One stack of members per backtest window (``w0/...``, the latest window first) and one
for the refit (``w-1/...``), each parameter (members, ...), and a JSON header
(``runner.table``) with the settings that shape and feed it and how each trained.
safetensors holds tensors and strings only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from lstm_worker.config.table import TableConfig
from lstm_worker.data.layout import TABLE_MODEL
from lstm_worker.data.place import Place

_HEADER = "runner.table"
_FORMAT = 1


@dataclass(frozen=True)
class TableWindow:
    """How one window's members trained (``fit.TableFit`` without the weights)."""

    examples: int  # training windows drawn
    checked: int  # validation windows
    epochs: int
    start_loss: float | None  # validation loss at the start (None: the refit has none)
    final_loss: float | None  # and trained
    seconds: float


@dataclass(frozen=True)
class TableModels:
    """Every window's members: window -> parameter name -> (members, ...)."""

    config: TableConfig
    lookback: int  # the context it reads
    steps: int  # the forecast steps it was trained on
    params: dict[int, dict[str, np.ndarray]]
    windows: dict[int, TableWindow]


def table_path(out: Place) -> Place:
    return out / TABLE_MODEL


def write_table(path: Place, models: TableModels) -> None:
    """Write the table model atomically (``Place.write_bytes``)."""
    tensors = {
        f"w{window}/{name}": value
        for window, params in models.params.items()
        for name, value in params.items()
    }
    header = {
        "format": _FORMAT,
        "config": models.config.model_dump(mode="json"),
        "lookback": models.lookback,
        "steps": models.steps,
        "windows": {str(w): asdict(fit) for w, fit in models.windows.items()},
    }
    path.write_bytes(save(tensors, metadata={_HEADER: json.dumps(header)}))


def read_table(path: Place) -> TableModels:
    """The table model at ``path``; ``ValueError`` naming the file when it is not one."""
    try:
        payload = path.read_bytes()
        (size,) = struct.unpack("<Q", payload[:8])  # safetensors: header size, then JSON
        header: dict[str, Any] = json.loads(
            json.loads(payload[8 : 8 + size])["__metadata__"][_HEADER]
        )
        tensors = load(payload)
    except (OSError, KeyError, ValueError, TypeError, struct.error, SafetensorError) as error:
        raise ValueError(f"{path}: not a readable table model ({error})") from None
    if header.get("format") != _FORMAT:
        raise ValueError(f"{path}: table model format {header.get('format')}, not {_FORMAT}")
    params: dict[int, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        window, name = key.split("/", 1)
        params.setdefault(int(window[1:]), {})[name] = value
    return TableModels(
        TableConfig.model_validate(header["config"]),
        header["lookback"],
        header["steps"],
        params,
        {int(w): TableWindow(**fit) for w, fit in header["windows"].items()},
    )
