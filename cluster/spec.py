"""The job spec: YAML validated into a frozen, strict model before any data is read.

The model, training and forecast sections are ``lstm_worker``'s own config models, so
each field and its default is defined once. Relative paths resolve against the
directory the command runs in.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cluster.resolve import worker_config
from cluster.sections import JobSpec, apply_override
from lstm_worker.errors import SpecError
from lstm_worker.search import expand


def parse_override(text: str) -> tuple[str, Any]:
    """``train.epochs=5`` -> ("train.epochs", 5); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set {text!r}: expected KEY=VALUE, for example train.epochs=5")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise SpecError(f"--set {text!r}: value is not valid YAML: {error}") from None


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
        worker_config(spec)  # cross-section checks
    except ValidationError as error:
        raise SpecError(_describe(error, source)) from None
    for setting in expand(spec.search, spec.seed):  # every setting must be a valid spec too
        try:
            worker_config(spec.for_setting(setting))
        except ValidationError as error:
            raise SpecError(
                _describe(error, f"{source} (search.grid setting {setting.label()})")
            ) from None
    return spec
