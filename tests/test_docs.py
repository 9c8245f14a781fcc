"""The README tells the truth: every spec field is documented, the commands exist."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from cluster.spec import JobSpec

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(kind: object) -> type[BaseModel] | None:
    """The model behind ``Section`` or ``Section | None``."""
    for candidate in (kind, *typing.get_args(kind)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def spec_fields(model: type[BaseModel] = JobSpec, prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        section = _section(field.annotation)
        if section is not None:
            names += spec_fields(section, f"{prefix}{name}.")
        else:
            names.append(prefix + name)
    return names


def test_every_spec_field_is_in_the_readme():
    missing = [name for name in spec_fields() if f"`{name}`" not in README]
    assert not missing, f"README's spec reference lacks {missing}"


def test_readme_set_up_commands_match_ci():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in README


def test_every_committed_job_spec_is_valid():
    from cluster.spec import load_spec

    jobs = sorted((Path(__file__).resolve().parents[1] / "jobs").glob("*.yaml"))
    assert len(jobs) >= 4
    for path in jobs:
        load_spec(path)  # raises SpecError naming the key if a spec drifted from the code
