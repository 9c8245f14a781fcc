"""A shard's results of every search setting, kept in Parquet between the two passes of a
choice made for the whole table (``cluster.passes``): one row per setting and series,
its trained models too (each model's parameters as safetensors bytes: never a pickle),
and each series' statistical and table forecasts (on its every row), so the second pass
refits nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
from safetensors.numpy import load, save

from lstm_worker import SeriesResult
from lstm_worker.data.place import Place, read_table, write_parquet
from lstm_worker.names import Status
from lstm_worker.result import StoredModel
from lstm_worker.shard.messages import Placement
from lstm_worker.smoothing import Statistical
from lstm_worker.table.forecasts import TableForecast
from lstm_worker.views import FittedView

_PLACEMENT = b"runner.placement"
_SCORES = pa.map_(pa.string(), pa.float64())
_MODELS = pa.list_(
    pa.struct(
        [
            ("window", pa.int64()),
            ("epochs", pa.int64()),
            ("view", pa.string()),
            ("params", pa.binary()),
        ]
    )
)


def write_pending(
    path: Place,
    outcomes: dict[int, list[SeriesResult]],
    placement: Placement,
    statistical: Sequence[Statistical | None],
    tables: Sequence[TableForecast | None],
) -> None:
    """``outcomes``: setting index -> the shard's results under it, in series order;
    ``statistical`` and ``tables``: each series' statistical and table forecasts, in
    series order."""
    rows = [(index, r) for index, results in outcomes.items() for r in results]
    results = [r for _, r in rows]
    known = [s for results in outcomes.values() for s in statistical[: len(results)]]
    mixed = [t for results in outcomes.values() for t in tables[: len(results)]]
    table = pa.table(
        {
            "setting": pa.array([index for index, _ in rows], pa.int64()),
            "series_id": pa.array([r.series_id for r in results]),
            "status": pa.array([r.status.value for r in results], pa.string()),
            "reason": pa.array([r.reason for r in results], pa.string()),
            "metrics": pa.array([list(r.metrics.items()) for r in results], _SCORES),
            "window_metrics": pa.array(
                [[list(w.items()) for w in r.window_metrics] for r in results], pa.list_(_SCORES)
            ),
            "backtest": pa.array(
                [r.backtest.tolist() for r in results], pa.list_(pa.list_(pa.float64()))
            ),
            "forecast": pa.array([r.forecast.tolist() for r in results], pa.list_(pa.float64())),
            "cutoffs": pa.array([r.cutoffs for r in results], pa.list_(pa.int64())),
            "epochs": pa.array([r.epochs for r in results], pa.int64()),
            "train_seconds": pa.array([r.train_seconds for r in results], pa.float64()),
            "forecast_seconds": pa.array([r.forecast_seconds for r in results], pa.float64()),
            "device": pa.array([r.device for r in results], pa.string()),
            "attempts": pa.array([r.attempts for r in results], pa.int64()),
            "inputs": pa.array([json.dumps(r.inputs) for r in results], pa.string()),
            "baseline": pa.array([r.baseline for r in results], pa.string()),
            "models": pa.array([[_model_row(m) for m in r.models] for r in results], _MODELS),
            **_forecast_columns("statistical", known),
            **_forecast_columns("table", mixed),
        }
    )
    meta = json.dumps({"node_id": placement.node_id, "gpu_ids": placement.gpu_ids})
    write_parquet(table.replace_schema_metadata({_PLACEMENT: meta}), path)


def _forecast_columns(
    name: str, found: Sequence[Statistical | TableForecast | None]
) -> dict[str, pa.Array]:
    """One more model's backtests and forecasts, a row each (null where a series has none)."""
    return {
        f"{name}_backtest": pa.array(
            [None if f is None else f.backtest.tolist() for f in found],
            pa.list_(pa.list_(pa.float64())),
        ),
        f"{name}_forecast": pa.array(
            [None if f is None else f.forecast.tolist() for f in found], pa.list_(pa.float64())
        ),
    }


def read_pending(
    path: Place,
) -> tuple[
    dict[int, list[SeriesResult]],
    Placement,
    list[Statistical | None],
    list[TableForecast | None],
]:
    """What ``write_pending`` wrote: the results by setting, where they were trained, and
    each series' statistical and table forecasts."""
    table = read_table(path)
    placement = Placement(**json.loads(table.schema.metadata[_PLACEMENT]))
    outcomes: dict[int, list[SeriesResult]] = {}
    statistical: list[Statistical | None] = []
    tables: list[TableForecast | None] = []
    first_setting = table.column("setting")[0].as_py() if len(table) else None
    for row in table.to_pylist():
        if row["setting"] == first_setting:
            statistical.append(_forecasts(row, "statistical", Statistical))
            tables.append(_forecasts(row, "table", TableForecast))
        backtest = np.array(row["backtest"], np.float64)
        outcomes.setdefault(row["setting"], []).append(
            SeriesResult(
                row["series_id"],
                Status(row["status"]),
                row["reason"],
                metrics=dict(row["metrics"]),
                backtest=backtest.reshape(len(row["backtest"]), -1) if backtest.size else backtest,
                forecast=np.array(row["forecast"], np.float64),
                epochs=row["epochs"],
                train_seconds=row["train_seconds"],
                forecast_seconds=row.get("forecast_seconds", 0.0),  # older parts: none
                device=row["device"],
                attempts=row["attempts"],
                window_metrics=[dict(w) for w in row["window_metrics"]],
                inputs=json.loads(row["inputs"]),
                cutoffs=list(row["cutoffs"]),
                baseline=row["baseline"],
                models=tuple(_stored_model(m) for m in row["models"]),
            )
        )
    return outcomes, placement, statistical, tables


_F = TypeVar("_F", Statistical, TableForecast)


def _forecasts(row: dict[str, Any], name: str, kind: type[_F]) -> _F | None:
    """The statistical or table forecasts (``name``) of a row's series, as ``kind``."""
    if row[f"{name}_forecast"] is None:
        return None
    windows = row[f"{name}_backtest"]  # a series too short for a window has none
    backtest = np.array(windows, np.float64).reshape(len(windows), -1 if windows else 0)
    return kind(backtest, np.array(row[f"{name}_forecast"], np.float64))


def _model_row(model: StoredModel) -> dict[str, object]:
    return {
        "window": model.window,
        "epochs": model.epochs,
        "view": json.dumps(asdict(model.view)),
        "params": save(model.params),
    }


def _stored_model(row: dict[str, Any]) -> StoredModel:
    view = json.loads(row["view"])
    if view["indices"] is not None:
        view["indices"] = tuple(view["indices"])
    fitted = FittedView(
        **{**view, **{k: tuple(view[k]) for k in ("covariate_shift", "covariate_scale")}}
    )
    return StoredModel(row["window"], load(row["params"]), fitted, row["epochs"])
