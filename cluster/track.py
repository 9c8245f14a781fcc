"""One MLflow run per job (``track:`` in the spec; ``pip install 'runner[mlflow]'``).

The driver logs a finished job: the spec as it was given and what it resolved from the
data as parameters; the summary's accuracy, the counts by status, the timings and, on a
nightly run, the ledger's realised scores as metrics; manifest.json and report.html as
artifacts; runner's run id, output and spec digest as tags. Tracking never fails a job:
its outputs are written before, and a server that is down or refuses makes the summary
say so (``tracking failed: ...``) and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cluster.manifest import Manifest, read_manifest
from cluster.report.page import REPORT_HTML
from cluster.report.summary import RunSummary
from cluster.sections import TrackSpec
from lstm_worker.data.layout import MANIFEST
from lstm_worker.data.place import Place

_BATCH = 100  # MLflow takes at most this many parameters in one call
_VALUE_LENGTH = 6000  # nor a parameter value longer than this
_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def track_run(track: TrackSpec, output: Place, summary: RunSummary) -> str:
    """Log the finished job in ``output`` (its ``summary``: ``report.summary``) to MLflow;
    the line the summary ends with: where it was logged, or why it was not."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param
    except ImportError:
        return "tracking failed: MLflow is not installed (pip install 'runner[mlflow]')"
    manifest = read_manifest(output)
    if manifest is None:
        return f"tracking failed: {output / MANIFEST} does not read"
    try:
        with _fail_fast(), tempfile.TemporaryDirectory(prefix="runner-track-") as temp:
            client = MlflowClient(tracking_uri=track.mlflow_uri)
            found = client.get_experiment_by_name(track.experiment)
            experiment = (
                found.experiment_id if found else client.create_experiment(track.experiment)
            )
            run = client.create_run(
                experiment,
                run_name=f"{manifest.name} {manifest.run_id}",
                tags={
                    "runner.run_id": manifest.run_id,
                    "runner.output": str(output),
                    "runner.spec_digest": manifest.spec_digest,
                },
            )
            run_id = run.info.run_id
            params = [Param(k, v) for k, v in parameters(manifest).items()]
            for first in range(0, len(params), _BATCH):
                client.log_batch(run_id, params=params[first : first + _BATCH])
            stamp = run.info.start_time
            values = [Metric(k, v, stamp, 0) for k, v in metrics(manifest, summary).items()]
            client.log_batch(run_id, metrics=values)
            for name in (MANIFEST, REPORT_HTML):
                if (output / name).exists():  # a local copy: the output may be on a store
                    copy = Path(temp) / name
                    copy.write_bytes((output / name).read_bytes())
                    client.log_artifact(run_id, str(copy))
            client.set_terminated(run_id)
    except Exception as error:  # noqa: BLE001 - tracking must never fail the finished job
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"tracking failed: {type(error).__name__}: {reason[:300]}"
    return f"tracking: MLflow run {run_id} in experiment {track.experiment!r} at {track.mlflow_uri}"


@contextmanager
def _fail_fast() -> Iterator[None]:
    """No retries and a short timeout while logging: a server that is down is said in
    seconds, not after MLflow's minutes of backoff."""
    before = {name: os.environ.get(name) for name in _FAIL_FAST}
    os.environ.update(_FAIL_FAST)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parameters(manifest: Manifest) -> dict[str, str]:
    """The spec as given (dotted keys) and what the job resolved from the data."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = json.dumps(value) if not isinstance(value, str) else value

    walk("", manifest.spec)
    walk("resolved", manifest.resolved.model_dump(mode="json", exclude={"why"}))
    flat["resolved.lstm_weight"] = json.dumps(manifest.lstm_weight)
    flat["resolved.table_share"] = json.dumps(manifest.table_share)
    return {key: value[:_VALUE_LENGTH] for key, value in flat.items()}


def metrics(manifest: Manifest, summary: RunSummary) -> dict[str, float]:
    """Every finite number of the summary, the counts, the timings and the ledger."""
    found: dict[str, Any] = {}
    for model, stats in summary.accuracy.items():
        for stat, value in asdict(stats).items():
            found[f"{model.replace(' ', '_')}_{stat}"] = value
    found["beat_snaive"] = summary.beat_snaive
    found.update({f"series_{status}": n for status, n in summary.counts.items()})
    found.update({f"coverage_{level}": share for level, share in summary.coverage.items()})
    found.update({"wall_seconds": summary.wall_seconds, "lstm_weight": summary.lstm_weight})
    found["table_share"] = summary.table_share
    found["series_per_second"] = summary.series_per_second
    found["task_seconds"] = manifest.task_seconds
    found.update(manifest.timings)
    for key, value in (summary.ledger or {}).items():
        if key == "coverage":
            found.update({f"ledger_coverage_{level}": v for level, v in value.items()})
        else:
            found[f"ledger_{key}"] = value
    return {
        key: float(value)
        for key, value in found.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
