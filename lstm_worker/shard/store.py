"""A shard's side of the model store: what it keeps of each series, the stored models a
warm start begins from, and forecasts from stored models alone."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from lstm_worker import SeriesResult, WorkerConfig
from lstm_worker.batch import pick_device
from lstm_worker.data.future import known_inputs
from lstm_worker.data.layout import METRICS_FILE
from lstm_worker.data.models import SeriesModels, StoreFile, model_part, read_models
from lstm_worker.data.place import Place, read_series
from lstm_worker.data.table import SeriesTable
from lstm_worker.fit import forecast_stored, reads_calendar
from lstm_worker.names import Status
from lstm_worker.result import StoredModel, calendar_read, short_result
from lstm_worker.shard.combine import mix
from lstm_worker.shard.messages import JobContext, Placement
from lstm_worker.shard.select import Choice
from lstm_worker.smoothing import statistical_forecast
from lstm_worker.table.forecasts import table_forecasts
from lstm_worker.table.models import read_table, table_path

_ARCHITECTURE = ("hidden_size", "num_layers", "head", "bidirectional")  # what shapes the weights
Warm = dict[object, dict[int, list[StoredModel]]]  # series -> setting -> its stored models


def store_entries(
    table: SeriesTable, choices: list[Choice], outcomes: dict[int, list[SeriesResult]]
) -> list[SeriesModels]:
    """What the store keeps of each series: the models of the settings it was chosen
    among, its last time, and its interval widths."""
    entries = []
    for position, choice in enumerate(choices):
        models = {
            s: list(outcomes[s][position].models)
            for s in choice.settings
            if outcomes[s][position].models
        }
        entries.append(
            SeriesModels(
                table.ids[position],
                str(table.times[position][-1]),
                len(table.values[position]),
                choice.model,
                models,
                {k: v.tolist() for k, v in choice.widths.items()},
                choice.lstm_weight,
                choice.table_share,
            )
        )
    return entries


def warm_models(job: JobContext, table: SeriesTable, source: str) -> tuple[Warm, dict[object, str]]:
    """The stored models of this shard's series in the run at ``source`` whose
    architecture matches; and, for every series without, why it starts cold."""
    reasons: dict[object, str] = {}
    stores = _stores_of(Place(source), job.input.id_col, table.ids, reasons)
    warm: Warm = {}
    for series_id in table.ids:
        store = stores.get(series_id)
        if store is None:
            reasons.setdefault(series_id, f"no model of it stored in {source}")
            continue
        entry, kept = store.series[series_id], {}
        for setting, cfg in enumerate(job.configs):
            stored = store.settings.get(setting)
            if setting in entry.models and stored is not None:
                changed = _changed(stored, cfg)
                if changed:
                    reasons[series_id] = f"its stored model's architecture differs ({changed})"
                else:
                    kept[setting] = entry.models[setting]
        if kept:
            warm[series_id] = kept
    return warm, reasons


def _changed(stored: dict[str, Any], cfg: WorkerConfig) -> str:
    """What of a stored model's resolved config shapes weights differently from ``cfg``:
    its layers, or its inputs (calendar parts, features); "" when nothing does."""
    model = stored["model"]
    changed = [
        f"model.{k} {model[k]} -> {getattr(cfg.model, k)}"
        for k in _ARCHITECTURE
        if model[k] != getattr(cfg.model, k)
    ]
    calendar, features = list(model.get("calendar") or []), list(stored.get("features", []))
    if calendar != list(cfg.calendar):
        changed.append(f"model.calendar {calendar} -> {list(cfg.calendar)}")
    if features != list(cfg.features):
        changed.append(f"input.features {features} -> {list(cfg.features)}")
    return ", ".join(changed)


def _stores_of(
    source: Place, id_col: str, ids: list[object], reasons: dict[object, str]
) -> dict[object, StoreFile]:
    """The store file holding each of ``ids`` in the run at ``source``; a series whose file
    is missing or unreadable gets its reason."""
    try:
        index = read_series(source / METRICS_FILE, id_col, ids, columns=[id_col, "shard"])
    except (OSError, ValueError) as error:
        for series_id in ids:
            reasons[series_id] = f"{source}: no readable {METRICS_FILE} ({error})"
        return {}
    shard_of = dict(
        zip(index.column(id_col).to_pylist(), index.column("shard").to_pylist(), strict=True)
    )
    files: dict[int, StoreFile | str] = {}
    found = {}
    for series_id in ids:
        shard = shard_of.get(series_id)
        if shard is None:
            continue
        if shard not in files:
            try:
                files[shard] = read_models(model_part(source, shard))
            except ValueError as error:
                files[shard] = str(error)
        store = files[shard]
        if isinstance(store, str):
            reasons[series_id] = store
        elif series_id in store.series and store.series[series_id].models:
            found[series_id] = store
    return found


def forecast_from_store(
    job: JobContext,
    table: SeriesTable,
    placement: Placement,
    source: str,
) -> list[Choice]:
    """Every usable series forecast by its stored model(s) and its newest data, no
    training: the mean over the settings it was chosen among, mixed at its stored table
    share with the stored table model's forecast, combined at its stored LSTM weight with
    the statistical forecast of tonight's history, the stored interval widths.
    The series of one setting are forecast as one stack, with that run's resolved config
    (its calendar and features too). A series with no stored model falls back as a short
    one does (``forecast.short_series``; skip: failed)."""
    device, horizon = pick_device(), job.cfg.forecast.horizon
    reasons: dict[object, str] = {}
    stores = _stores_of(Place(source), job.input.id_col, table.ids, reasons)
    files = {id(store): store for store in stores.values()}  # one per store file read
    by_setting: dict[tuple[int, int], list[tuple[int, StoredModel]]] = defaultdict(list)
    for position, series_id in enumerate(table.ids):
        store = stores.get(series_id)
        if store is not None and not table.notes[position]:
            for setting, stored in store.series[series_id].refits().items():
                by_setting[(id(store), setting)].append((position, stored))
    forecasts: dict[int, list[np.ndarray]] = defaultdict(list)
    calendars: dict[int, str | None] = {}  # metrics.parquet's calendar (``calendar_read``)
    for (key, setting), members in by_setting.items():
        store = files[key]
        stored_cfg = WorkerConfig.model_validate(store.settings[setting])
        cfg = stored_cfg.model_copy(
            update={"forecast": stored_cfg.forecast.model_copy(update={"horizon": horizon})}
        )
        if cfg.features != job.cfg.features:
            for position, _ in members:
                reasons[table.ids[position]] = (
                    f"its stored model reads input.features {list(cfg.features)}, this job "
                    f"gives {list(job.cfg.features)}"
                )
            continue
        positions = [p for p, _ in members]
        predicted = forecast_stored(
            [table.values[p] for p in positions],
            [m for _, m in members],
            horizon,
            cfg,
            device,
            known_inputs(table, cfg, positions),
        )
        for (position, stored), forecast in zip(members, predicted, strict=True):
            forecasts[position].append(forecast)
            read = calendar_read(cfg, bool(cfg.calendar) and reads_calendar(stored, cfg))
            calendars[position] = calendars.get(position) or read
    weights = {p: stores[table.ids[p]].series[table.ids[p]].lstm_weight for p in forecasts}
    statistical = _statistical(table, weights, horizon, job.cfg.first_season)
    shares = {p: stores[table.ids[p]].series[table.ids[p]].table_share for p in forecasts}
    tables = _table(table, shares, job.cfg, Place(source))
    choices = []
    for position, series_id in enumerate(table.ids):
        if position not in forecasts:
            choices.append(_not_stored(job, table, position, reasons, source, str(device)))
            continue
        entry = stores[series_id].series[series_id]
        own = np.mean(forecasts[position], axis=0)
        share = shares[position] if position in tables else None
        lstm = own if share is None else mix(tables[position], own, share)
        weight = weights[position]
        combined = lstm
        if weight is not None and position in statistical:
            combined = mix(lstm, statistical[position], weight)
        result = SeriesResult(
            series_id,
            Status.OK,
            forecast=combined,
            device=str(device),
            inputs={"init": "stored", "calendar": calendars.get(position)},
        )
        widths = {k: np.asarray(v) for k, v in entry.widths.items()}
        choices.append(
            Choice(
                result,
                f"{entry.model or 'lstm'} (stored)",
                settings=tuple(entry.refits()),
                placement=placement,
                widths=widths,
                lstm=SeriesResult(series_id, Status.OK, forecast=lstm),
                lstm_weight=weight,
                table_share=share,
                parts=None if share is None else (tables[position], own),
            )
        )
    return choices


def _statistical(
    table: SeriesTable, weights: dict[int, float | None], horizon: int, period: int
) -> dict[int, np.ndarray]:
    """Tonight's statistical forecast of each series (by position) whose stored LSTM
    weight mixes one in; none where the LSTM forecasts alone."""
    mixed = [p for p, weight in weights.items() if weight is not None and weight < 1]
    if not mixed:
        return {}
    found = statistical_forecast([table.values[p] for p in mixed], horizon, period)
    return dict(zip(mixed, found, strict=True))


def _table(
    table: SeriesTable, shares: dict[int, float | None], cfg: WorkerConfig, source: Place
) -> dict[int, np.ndarray]:
    """Tonight's table forecast of each series (by position) whose stored LSTM forecast
    mixed one in, from the table model the run at ``source`` stored (none: a run without
    one, or a series whose share is 0)."""
    mixed = [p for p, share in shares.items() if share]
    if not mixed or not table_path(source).exists():
        return {}
    models = read_table(table_path(source))
    found = table_forecasts([table.values[p] for p in mixed], models, cfg, pick_device(), [-1])
    return {p: f.forecast for p, f in zip(mixed, found, strict=True) if f is not None}


def _not_stored(
    job: JobContext,
    table: SeriesTable,
    position: int,
    reasons: dict[object, str],
    source: str,
    device: str,
) -> Choice:
    """A series the store cannot forecast: skipped as read, or a short series' fallback
    with the reason it has no stored model (failed where short series are skipped)."""
    series_id, note = table.ids[position], table.notes[position]
    if note:
        return Choice(SeriesResult(series_id, Status.SKIPPED, note), None)
    reason = reasons.get(series_id, f"no model of it stored in {source}")
    if job.cfg.forecast.short_series == "skip":
        return Choice(SeriesResult(series_id, Status.FAILED, reason), None)
    result = short_result(series_id, table.values[position], reason, job.cfg, device)
    return Choice(result, result.baseline)
