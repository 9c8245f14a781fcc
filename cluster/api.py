"""runner from Python: the job ``runner run`` runs, on a DataFrame, its outputs as DataFrames.

    from cluster import Job, forecast

    result = forecast(frame, horizon=18)                # a spec of only the horizon
    result.forecasts, result.metrics, result.backtest   # pandas DataFrames
    result.plot("M1")                                   # the report's figure of one series
    job = Job({"forecast": {"horizon": 18}}, train={"epochs": 20})
    result = job.run(frame, output="runs/trial")
    job.to_yaml("jobs/nightly.yaml")                    # the same job, for cron

A ``Job`` holds a job spec as a mapping, checked as ``runner run`` checks YAML; ``run``
calls ``execute``, which ``runner run`` calls too: the same outputs, report, tracking and
errors (``lstm_worker.errors``, whose classes the CLI maps to its exit codes).
"""

from __future__ import annotations

import copy
import io
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from cluster.sections import JobSpec, apply_override
from cluster.spec import read_spec_file, spec_from_dict
from lstm_worker.data.layout import BACKTEST, FORECASTS, METRICS_FILE
from lstm_worker.data.place import Place, read_table
from lstm_worker.errors import FailureLimitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cluster.progress import ProgressSink
    from cluster.report.summary import RunSummary

_GIVEN_TO_RUN = "(given to Job.run)"  # input.path and output.path until ``run`` has them
INPUT_FILE = "input.parquet"  # where ``run`` writes a DataFrame, inside the output


@dataclass(frozen=True)
class Executed:
    """A finished job as ``runner run`` reports it."""

    output: Place
    summary: RunSummary
    report: Place | None  # report.html, unless asked for none
    tracking: str  # the summary's last line when the spec tracks the run; "" when not
    error: FailureLimitError | None = None  # too many series failed: raise it once shown


def execute(
    spec: JobSpec,
    address: str | None = None,
    overwrite: bool = False,
    report: bool = True,
    progress: Callable[[int, int], ProgressSink] | None = None,
) -> Executed:
    """Run the job, then its report and its tracking: what ``runner run`` and ``Job.run``
    both do. A job with too many failed series is reported and tracked too; its error
    comes back in ``error`` for the caller to raise once it has shown the outputs."""
    from cluster.job import run_job
    from cluster.progress import NoProgress
    from cluster.report.page import build_report
    from cluster.report.summary import summarize

    error = None
    try:
        output = run_job(spec, address, overwrite, progress or NoProgress).output
    except FailureLimitError as failed:  # the job finished: its outputs are all there
        output, error = failed.output, failed
    summary = summarize(output)
    page = build_report(output, summary=summary) if report else None
    tracking = ""
    if spec.track is not None:
        from cluster.manifest import record_tracking
        from cluster.track import track_run

        tracking = track_run(spec.track, output, summary)
        record_tracking(output, tracking)
    return Executed(output, summary, page, tracking, error)


class Job:
    """A job spec in Python: a mapping as a YAML spec holds it, sections given as keywords
    merged in. Input and output are given to ``run``. A bad key or value raises
    ``SpecError`` here, naming it, as ``runner run`` does for a file."""

    def __init__(self, spec: Mapping[str, Any] | None = None, /, **sections: Any):
        raw = copy.deepcopy(dict(spec or {}))
        for name, section in sections.items():
            if isinstance(section, Mapping) and isinstance(raw.get(name), dict):
                raw[name] = {**raw[name], **section}
            else:
                raw[name] = copy.deepcopy(section)
        self._raw = raw
        self._spec({})  # checked now, before any data is read

    @classmethod
    def from_yaml(cls, path: str | Path) -> Job:
        return cls(read_spec_file(path))

    def set(self, key: str, value: Any) -> Job:
        """A copy with one field set by its dotted name, as ``--set key=value`` does."""
        raw = copy.deepcopy(self._raw)
        apply_override(raw, key, value, source="Job.set")
        return Job(raw)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._raw)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The spec as YAML (written to ``path`` when given): ``runner run`` takes it."""
        text = yaml.safe_dump(self._raw, sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text)
        return text

    def _spec(self, paths: dict[str, str], overrides: tuple[str, ...] = ()) -> JobSpec:
        raw = copy.deepcopy(self._raw)
        for section in ("input", "output"):
            raw.setdefault(section, {})
            raw[section].setdefault("path", paths.get(section, _GIVEN_TO_RUN))
            if section in paths:
                raw[section]["path"] = paths[section]
        return spec_from_dict(raw, "Job spec", overrides)

    def run(
        self,
        data: pd.DataFrame | pa.Table | str | Path,
        output: str | Path | None = None,
        address: str | None = None,
        overwrite: bool = False,
        report: bool = True,
    ) -> Result:
        """Run the job on ``data``: a long table (a DataFrame or an Arrow table, written to
        ``output``/input.parquet, rewritten only when it changed, so a run resumes as
        ``runner run`` does) or a path ``input.path`` takes. ``output``: the spec's
        ``output.path`` when None, else a new temporary directory. ``address``: a Ray
        cluster to join (None: an embedded local Ray). Raises what ``runner run`` exits
        on: ``SpecError``, ``InputError``, ``OutputError``, ``FailureLimitError``, ..."""
        return self._run(data, output, address, overwrite, report)

    def forecast(
        self,
        data: pd.DataFrame | pa.Table | str | Path,
        models: str | Path,
        output: str | Path | None = None,
        address: str | None = None,
        overwrite: bool = False,
        report: bool = True,
    ) -> Result:
        """Forecast ``data`` from the models a finished run at ``models`` stored (or
        ``latest``), no training: ``runner forecast --models``."""
        overrides = (f"forecast.from_models={models}",)
        return self._run(data, output, address, overwrite, report, overrides)

    def _run(
        self,
        data: pd.DataFrame | pa.Table | str | Path,
        output: str | Path | None,
        address: str | None,
        overwrite: bool,
        report: bool,
        overrides: tuple[str, ...] = (),
    ) -> Result:
        given = self._raw.get("output", {}).get("path")
        out = str(output or given or Path(tempfile.mkdtemp(prefix="runner-")) / "run")
        source = str(data) if isinstance(data, str | Path) else _written(data, Place(out))
        spec = self._spec({"input": source, "output": out}, overrides)
        done = execute(spec, address, overwrite, report)
        if done.error is not None:
            raise done.error
        return Result(str(done.output), done.summary, done.report, done.tracking)

    def __repr__(self) -> str:
        return f"Job({self._raw!r})"


def _written(data: pd.DataFrame | pa.Table, out: Place) -> str:
    """``data`` as Parquet at ``out``/input.parquet; the file is left as it is (its time
    too, which the input's fingerprint reads) when it holds the same bytes already."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    path = out / INPUT_FILE
    if not (path.exists() and path.read_bytes() == buffer.getvalue()):
        out.mkdir()
        path.write_bytes(buffer.getvalue())
    return str(path)


def forecast(
    data: pd.DataFrame | pa.Table | str | Path,
    horizon: int,
    output: str | Path | None = None,
    address: str | None = None,
    **sections: Any,
) -> Result:
    """``Job(forecast={"horizon": horizon}, **sections).run(data, output, address)``."""
    given = sections.pop("forecast", {})
    return Job(forecast={**given, "horizon": horizon}, **sections).run(data, output, address)


@dataclass(frozen=True)
class Result:
    """A finished job: its outputs as DataFrames, read when first asked for."""

    output: str
    summary: RunSummary = field(repr=False)  # counts, accuracy, coverage, timings, devices
    report: Place | None = field(default=None, repr=False)
    tracking: str = ""  # where the run was logged, or why not; "" untracked

    @property
    def counts(self) -> dict[str, int]:
        """Series by status: ok, skipped, failed, fallback."""
        return dict(self.summary.counts)

    @cached_property
    def forecasts(self) -> pd.DataFrame:
        return read_table(Place(self.output) / FORECASTS).to_pandas()

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return read_table(Place(self.output) / METRICS_FILE).to_pandas()

    @cached_property
    def backtest(self) -> pd.DataFrame:
        return read_table(Place(self.output) / BACKTEST).to_pandas()

    @cached_property
    def manifest(self) -> dict[str, Any]:
        from cluster.manifest import load_manifest

        return load_manifest(self.output).model_dump(mode="json")

    def plot(self, series_id: object) -> Figure:
        """The report's figure of one series: history, holdout, backtest and forecast."""
        from cluster.report.page import series_plot

        return series_plot(self.output, series_id)

    def load_model(self, series_id: object, window: int = -1) -> tuple[Any, Any]:
        """A series' stored model (the refit, or backtest ``window``) as a plain
        ``LSTMForecaster`` in eval mode, and the view it saw its history through."""
        from lstm_worker.fit import load_model  # loads torch

        return load_model(self.output, series_id, window)


__all__ = ["Executed", "Job", "Result", "execute", "forecast"]
