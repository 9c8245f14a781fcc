"""Nightly runs side by side: an output path that names the night, and the runs a night
builds on (the models it warm starts from, the forecasts it scores), found by path or as
the newest finished run of the same job under the runs root.

    output.path: runs/{date}        runs/2026-12-02 (UTC), a rerun the same day resumes
    output.path: runs/{run_id}      runs/20261202T031500-1f3a, never a resume
    train.warm_start: latest        the newest finished run under runs/ (not this one)
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cluster.manifest import RunStatus, read_manifest
from cluster.sections import JobSpec
from lstm_worker.data.place import Place
from lstm_worker.errors import SpecError

LATEST = "latest"
_FIELD = re.compile(r"\{([^{}]*)\}")
_FIELDS = ("date", "run_id")


def new_run_id() -> str:
    """When the run started (UTC, to the second) and four random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def output_path(template: str, run_id: str) -> str:
    """``output.path`` with ``{date}`` (today, UTC) and ``{run_id}`` filled in."""
    unknown = sorted(set(_FIELD.findall(template)) - set(_FIELDS))
    if unknown:
        raise SpecError(
            f"output.path: {template!r} names {', '.join(f'{{{u}}}' for u in unknown)}; "
            "only {date} and {run_id} are filled in"
        )
    return template.format(date=f"{datetime.now(UTC):%Y-%m-%d}", run_id=run_id)


def _matching(pattern: str) -> list[Place]:
    """The directories a pattern names, a ``*`` in a name standing for any text there."""
    parts = pattern.split("/")
    first = next(i for i, part in enumerate(parts) if "*" in part)
    places = [Place("/".join(parts[:first]))]
    for part in parts[first:]:
        places = (
            [p for d in places for p in d.glob(part) if p.is_dir()]
            if "*" in part
            else [d / part for d in places]
        )
    return [p for p in places if p.is_dir()]


def latest_run(template: str, name: str, exclude: Place) -> Place | None:
    """The newest finished run of the job ``name`` among the paths ``template`` can name
    (each ``{...}`` a wildcard; a plain path: its siblings), other than ``exclude``."""
    pattern = str(Place(_FIELD.sub("*", template)))
    if "*" not in pattern:
        pattern = f"{Place(template).parent}/*"
    found = []
    for path in _matching(pattern):
        manifest = read_manifest(path)
        if (
            manifest is not None
            and manifest.status == RunStatus.FINISHED
            and manifest.name == name
            and path.resolve() != exclude.resolve()
        ):
            found.append((manifest.finished_at or "", str(path), path))
    return max(found, key=lambda f: f[:2])[2].resolve() if found else None


@dataclass(frozen=True)
class RunLinks:
    """The runs this one builds on, resolved to paths (None: none)."""

    warm_start: str | None
    from_models: str | None
    previous: str | None
    notes: dict[str, str]  # field -> why it resolved as it did, for the manifest


def resolve_links(spec: JobSpec, template: str, out: Place) -> tuple[JobSpec, RunLinks]:
    """``spec`` with each ``latest`` replaced by the newest run ``template`` (output.path
    as written) can name. Night one has none to warm start from or score, and runs cold;
    a forecast-only run without one is refused."""
    notes: dict[str, str] = {}
    found: Place | None = None
    searched = False

    def resolve(field: str, value: str | None) -> str | None:
        nonlocal found, searched
        if value != LATEST:
            return value
        if not searched:
            found, searched = latest_run(template, spec.name, out), True
        notes[field] = (
            f"latest: {found}" if found else f"latest: no finished run of {spec.name!r} yet"
        )
        return str(found) if found else None

    warm = resolve("train.warm_start", spec.train.warm_start)
    models = resolve("forecast.from_models", spec.forecast.from_models)
    previous = resolve("ledger.previous", spec.ledger.previous)
    if models is not None:
        warm = None  # a forecast-only run trains nothing to warm start
    if spec.forecast.from_models == LATEST and models is None:
        raise SpecError(
            f"forecast.from_models: latest, but no finished run of {spec.name!r} is under "
            f"{Place(_FIELD.sub('*', template)).parent}; run the job once to store models"
        )
    resolved = spec.model_copy(
        update={
            "train": spec.train.model_copy(update={"warm_start": warm}),
            "forecast": spec.forecast.model_copy(update={"from_models": models}),
            "ledger": spec.ledger.model_copy(update={"previous": previous}),
        }
    )
    return resolved, RunLinks(warm, models, previous, notes)
