"""The model store: every series' trained models, one safetensors file per shard.

    OUTPUT/models/shard-000042.safetensors

A file holds, for each search setting a series' forecast came from, the stacked
parameters of its models (the refit on the whole history, and one per backtest window)
as plain tensors named ``s<setting>/<parameter>``, each (models, ...), and a JSON header
(``runner.models``) that says which series, window and view each model row is, the
resolved model settings, the spec digest, each series' last timestamp and interval
widths. safetensors holds tensors and strings only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from lstm_worker.data.layout import MODELS
from lstm_worker.data.place import Place
from lstm_worker.result import StoredModel
from lstm_worker.views import FittedView

_HEADER = "runner.models"
_FORMAT = 1


@dataclass(frozen=True)
class SeriesModels:
    """What the store keeps of one series."""

    series_id: object
    last_time: str  # its last timestamp (ISO) or integer step, as text
    n_points: int
    model: str | None  # the forecast's model label, as in metrics.parquet
    models: dict[int, list[StoredModel]]  # setting index -> its models (backtests, refit)
    widths: dict[int, list[float]] = field(default_factory=dict)  # level -> (horizon,)
    lstm_weight: float | None = None  # the LSTM's share of its forecast (the rest statistical)
    table_share: float | None = None  # the table model's share of the LSTM's forecast

    def refits(self) -> dict[int, StoredModel]:
        """Each setting's model fitted on the whole history."""
        return {s: m for s, ms in self.models.items() for m in ms if m.window == -1}


@dataclass(frozen=True)
class StoreFile:
    spec_digest: str
    settings: dict[int, dict[str, Any]]  # setting index -> its resolved ModelConfig
    series: dict[object, SeriesModels]


def model_part(out: Place, index: int) -> Place:
    return out / MODELS / f"shard-{index:06d}.safetensors"


def write_models(
    path: Place, spec_digest: str, settings: dict[int, dict[str, Any]], entries: list[SeriesModels]
) -> None:
    """Write one shard's store file atomically."""
    rows: dict[int, list[StoredModel]] = defaultdict(list)
    header_series, header_models = [], []
    for entry in entries:
        header_series.append(
            {
                "id": entry.series_id,
                "last_time": entry.last_time,
                "n_points": entry.n_points,
                "model": entry.model,
                "widths": {str(k): v for k, v in entry.widths.items()},
                "lstm_weight": entry.lstm_weight,
                "table_share": entry.table_share,
            }
        )
        for setting, models in entry.models.items():
            for m in models:
                header_models.append(
                    {
                        "id": entry.series_id,
                        "setting": setting,
                        "slot": len(rows[setting]),
                        "window": m.window,
                        "epochs": m.epochs,
                        "view": asdict(m.view),
                    }
                )
                rows[setting].append(m)
    tensors = {
        f"s{setting}/{name}": np.stack([m.params[name] for m in models])
        for setting, models in rows.items()
        for name in models[0].params
    }
    header = {
        "format": _FORMAT,
        "spec_digest": spec_digest,
        "settings": {str(s): settings[s] for s in rows},
        "series": header_series,
        "models": header_models,
    }
    path.write_bytes(save(tensors, metadata={_HEADER: json.dumps(header)}))


def read_models(path: Place) -> StoreFile:
    """One shard's store file; raises ``ValueError`` naming the file when it is not one.
    It is read whole (one GET on a store) and parsed by safetensors from memory."""
    try:
        payload = path.read_bytes()
        (size,) = struct.unpack("<Q", payload[:8])  # safetensors: header size, then JSON
        header = json.loads(json.loads(payload[8 : 8 + size])["__metadata__"][_HEADER])
        tensors = load(payload)
    except (OSError, KeyError, ValueError, TypeError, struct.error, SafetensorError) as error:
        raise ValueError(f"{path}: not a readable model store file ({error})") from None
    if header.get("format") != _FORMAT:
        raise ValueError(f"{path}: model store format {header.get('format')}, not {_FORMAT}")
    models: dict[object, dict[int, list[StoredModel]]] = defaultdict(lambda: defaultdict(list))
    for row in header["models"]:
        prefix, slot = f"s{row['setting']}/", row["slot"]
        params = {
            name[len(prefix) :]: value[slot]
            for name, value in tensors.items()
            if name.startswith(prefix)
        }
        view = dict(
            row["view"],
            indices=None if row["view"]["indices"] is None else tuple(row["view"]["indices"]),
        )
        models[row["id"]][row["setting"]].append(
            StoredModel(row["window"], params, FittedView(**view), row["epochs"])
        )
    series = {
        s["id"]: SeriesModels(
            s["id"],
            s["last_time"],
            s["n_points"],
            s["model"],
            dict(models.get(s["id"], {})),
            {int(k): v for k, v in s["widths"].items()},
            s.get("lstm_weight", 1.0),  # a store from before the weight: the LSTM alone
            s.get("table_share"),  # a store from before the table model: none
        )
        for s in header["series"]
    }
    settings = {int(k): v for k, v in header["settings"].items()}
    return StoreFile(header["spec_digest"], settings, series)


def find_model(
    output_dir: str | Path | Place, series_id: object, window: int = -1
) -> tuple[dict[str, Any], StoredModel]:
    """One series' stored model (the refit, or backtest ``window``) and the model config
    of the setting it was trained with; raises ``KeyError`` naming the series."""
    for path in (Place(output_dir) / MODELS).glob("shard-*.safetensors"):
        store = read_models(path)
        entry = store.series.get(series_id)
        for setting, models in (entry.models if entry else {}).items():
            for stored in models:
                if stored.window == window:
                    return store.settings[setting]["model"], stored
    raise KeyError(f"{output_dir}: no stored model of series {series_id!r} (window {window})")
