"""The job spec: YAML validated into a frozen, strict model before any data is read.

The model, training and forecast sections are ``lstm_worker``'s own config models, so
each field and its default is defined once. Relative paths resolve against the
directory the command runs in.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from cluster.sections import LedgerSpec, OutputSpec, ResourcesSpec, TrackSpec
from lstm_worker.config import (
    ForecastConfig,
    ModelConfig,
    Strict,
    TableConfig,
    TrainConfig,
    WorkerConfig,
)
from lstm_worker.data.contract import InputSpec
from lstm_worker.errors import InputError, SpecError
from lstm_worker.search import SearchSpec, Setting, expand


class JobSpec(Strict):
    name: str = Field("job", description="a label for the run, kept in manifest.json")
    input: InputSpec
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    forecast: ForecastConfig = ForecastConfig()
    table: TableConfig = TableConfig()
    resources: ResourcesSpec = ResourcesSpec()
    output: OutputSpec
    ledger: LedgerSpec = LedgerSpec()
    search: SearchSpec | None = None
    track: TrackSpec | None = None
    seed: int = Field(
        0, description="seed of everything random; each series' seed derives from it and its id"
    )

    def for_setting(self, setting: Setting) -> JobSpec:
        """This spec with one search setting's model and training fields applied."""
        if not setting.overrides:
            return self
        raw = self.model_dump()  # a fresh dict: this spec stays as it is
        for key, value in setting.overrides.items():
            apply_override(raw, key, value, source="search.grid")
        return JobSpec.model_validate(raw)

    def worker_config(self, calendar: Sequence[int] = (), freq: Any = None) -> WorkerConfig:
        """The task's config, with what the spec leaves open resolved; ``calendar`` is
        the input frequency's seasons (``table.seasons_from_freq``), shortest first, and
        ``freq`` the frequency itself (None: not known yet)."""
        resolved = self.resolved(calendar)
        parts = self.model.calendar
        if parts == "auto":
            from lstm_worker.calendar import calendar_for

            parts = list(calendar_for(freq, resolved["lookback"])) if freq is not None else []
        elif parts and isinstance(freq, int):
            raise InputError(
                f"model.calendar {parts}: input.time_col {self.input.time_col!r} is an "
                "integer clock, which has no calendar; use timestamps or leave it out"
            )
        model = {"lookback": resolved["lookback"], "calendar": parts or None}
        shared = self.train.shared_start
        train = {"shared_start": bool(self.input.features) if shared is None else shared}
        return WorkerConfig(
            model=self.model.model_copy(update=model),
            train=self.train.model_copy(update=train),
            forecast=self.forecast,
            table=self.table,
            season_length=resolved["season_length"],
            seasons=resolved["seasons"],
            features=tuple(self.input.features),
            seed=self.seed,
        )

    def resolved(self, calendar: Sequence[int] = ()) -> dict[str, Any]:
        """The values the spec leaves to the data, each with the reason it has that value."""
        fc, explicit = self.forecast, self.forecast.season_length
        season = explicit or (calendar[0] if calendar else 1)
        seasons = (
            tuple(fc.seasons)
            if fc.seasons is not None
            else tuple(dict.fromkeys(p for p in (explicit, *calendar) if p and p >= 2))
        )
        lookback = self.model.lookback or math.ceil(1.5 * max(fc.horizon, season))
        val = self.train.val_steps(fc.horizon)
        return {
            "season_length": season,
            "seasons": seasons,
            "lookback": lookback,
            "why": {
                "season_length": "forecast.season_length"
                if explicit
                else "the input frequency's season"
                if calendar
                else "no season in the frequency",
                "seasons": "forecast.seasons"
                if fc.seasons is not None
                else "forecast.season_length and the frequency's seasons",
                "model.lookback": "model.lookback"
                if self.model.lookback
                else f"1.5 x max(horizon {fc.horizon}, season {season}); a series with fewer "
                "points gets a shorter window",
                "train.val_size": f"{val} ("
                + ("train.val_size" if self.train.val_size is not None else "the horizon")
                + f"); a history shorter than {3 * val} monitors its training loss",
                "model.skip": f"{self.model.skip}"
                + (
                    ": per series, the baseline that forecast its own last three horizons best"
                    if self.model.skip == "auto"
                    else ""
                ),
                "per series": "metrics.parquet: lookback, skip, val_size, deseasonalised",
            },
        }

    def digest(self) -> str:
        """A hash of everything that changes results (not where they are written)."""
        payload = self.model_dump(
            mode="json", exclude={"output": True, "resources": True, "track": True}
        )
        payload["series_per_task"] = self.resources.series_per_task
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def parse_override(text: str) -> tuple[str, Any]:
    """``train.epochs=5`` -> ("train.epochs", 5); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set {text!r}: expected KEY=VALUE, for example train.epochs=5")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise SpecError(f"--set {text!r}: value is not valid YAML: {error}") from None


def apply_override(raw: dict, key: str, value: Any, source: str) -> None:
    """Set ``key`` (dotted: ``train.lr``) in a spec's mapping to ``value``."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SpecError(f"{source}: --set {key}: {part!r} is not a section")
        node = child
    node[leaf] = value


_RETIRED = {  # keys a spec may still carry from an older runner, and what became of them
    "monitor": " (renamed ledger: the same previous and jump)",
    "train.trainer": " (there is one trainer now, the stacked one: remove the key)",
}


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid job spec"]
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _RETIRED.get(where, "")
        elif "input" in item and not isinstance(item["input"], dict):
            message += f" (got {item['input']!r})"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load_spec(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> JobSpec:
    """Read, override and validate a job spec; every problem raises ``SpecError``."""
    return spec_from_dict(read_spec_file(path), str(path), overrides)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """A job spec file's YAML mapping, as written (``SpecError`` when it is not one)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: job spec not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read job spec: {error}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a job spec is a YAML mapping, got {type(raw).__name__}")
    return raw


def spec_from_dict(
    raw: dict[str, Any], source: str, overrides: tuple[str, ...] | list[str] = ()
) -> JobSpec:
    """Override (``KEY=VALUE``, as ``--set``) and validate a job spec's mapping, named
    ``source`` in every error: the one check a YAML file and a Python dict both pass."""
    raw = copy.deepcopy(raw)  # the caller's mapping stays as it is
    for text in overrides:
        apply_override(raw, *parse_override(text), source=source)
    try:
        spec = JobSpec.model_validate(raw)
        spec.worker_config()  # cross-section checks
    except ValidationError as error:
        raise SpecError(_describe(error, source)) from None
    for setting in expand(spec.search, spec.seed):  # every setting must be a valid spec too
        try:
            spec.for_setting(setting).worker_config()
        except ValidationError as error:
            raise SpecError(
                _describe(error, f"{source} (search.grid setting {setting.label()})")
            ) from None
    return spec
