"""Jobs on a running cluster through Ray's Job Submission API: submit, follow, status, stop.

``runner run`` drives a job from this machine; ``runner submit`` hands the same command
to the cluster's head node, so the driver survives this terminal closing. The
runtime environment carries the directory the user runs from (the spec's relative
paths resolve against it, as with ``run``) and this checkout's ``cluster`` and
``lstm_worker`` packages, so the cluster runs the code that was validated here.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cluster.spec import load_spec
from lstm_worker.data.place import is_remote
from lstm_worker.errors import RunnerError, SpecError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

T = TypeVar("T")

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Not uploaded: environments, history, caches and earlier outputs (gitignore syntax;
# Ray also skips whatever the directory's .gitignore lists).
EXCLUDES = [".git/", ".venv/", "venv/", "__pycache__/", ".pytest_cache/", "runs/", "*.egg-info/"]


@dataclass(frozen=True)
class JobState:
    """What the cluster says about one submitted job."""

    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED
    message: str
    exit_code: int | None  # the driver's, once it ended

    @property
    def done(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(frozen=True)
class Submitted:
    job_id: str
    notes: list[str] = field(default_factory=list)  # what the user should know, not an error


def submit_job(
    spec_path: str,
    overrides: tuple[str, ...],
    address: str,
    overwrite: bool = False,
    report: bool = True,
    python: str | None = None,
) -> Submitted:
    """Validate SPEC here, then submit ``runner run SPEC`` to the cluster.

    A bad spec raises ``SpecError`` before anything is uploaded.
    """
    import cluster
    import lstm_worker

    spec = load_spec(spec_path, overrides)
    here = Path.cwd()
    relative = _inside(Path(spec_path), here, "SPEC")
    tables = {"input.path": spec.input.path, "input.future_path": spec.input.future_path}
    for key, path in tables.items():
        if path and not is_remote(path) and not Path(path).is_absolute():
            _inside(Path(path), here, key)
            if not Path(path).exists():
                raise SpecError(
                    f"{key}: {path} does not exist under {here}, "
                    "so it cannot travel to the cluster with the working directory"
                )
    notes = []
    if not is_remote(spec.output.path) and not Path(spec.output.path).is_absolute():
        notes.append(
            f"output.path {spec.output.path} is relative: on the cluster it lands "
            "in the job's temporary working directory; use an absolute path there "
            "or shared storage to keep the outputs"
        )
    command = ["cluster.cli", "run", relative.as_posix()]
    for override in overrides:
        command += ["--set", override]
    if overwrite:
        command.append("--overwrite")
    if not report:
        command.append("--no-report")
    runtime_env: dict[str, object] = {
        "working_dir": str(here),
        "excludes": EXCLUDES,
        "py_modules": [str(Path(str(module.__file__)).parent) for module in (cluster, lstm_worker)],
    }
    if python is not None:
        runtime_env["env_vars"] = {"RUNNER_PYTHON": python}
    client = _client(address)
    job_id = _call(
        address,
        lambda: client.submit_job(
            entrypoint=entrypoint(command),
            runtime_env=runtime_env,
            metadata={"runner_job": spec.name, "runner_spec": relative.as_posix()},
        ),
    )
    return Submitted(job_id, notes)


def entrypoint(module_args: list[str]) -> str:
    """The shell command the head runs: ``python -m MODULE ARGS`` with an interpreter that
    has Ray and this project, whether or not its environment is on the head's PATH.

    Ray runs the entrypoint with ``/bin/sh -c`` from its job supervisor, a Ray worker
    started with the interpreter that runs Ray on the head; the supervisor's memory map
    (``/proc/$PPID/maps``) names the ``site-packages`` Ray was loaded from, and so the
    environment's own ``bin/python``. Tried in order: ``$RUNNER_PYTHON`` (``runner submit
    --python``), that interpreter, then ``python3`` and ``python`` on PATH; the first that
    imports Ray and this project runs the job. None does: a message naming each one tried.
    """
    args = shlex.join(["-m", *module_args])
    return (
        "ray_lib=$(grep -m1 -o '/[^ ]*-packages/ray/_raylet[^ ]*' /proc/$PPID/maps 2>/dev/null);"
        ' ray_python="${ray_lib%%/lib/python*}/bin/python";'
        ' for py in "$RUNNER_PYTHON" "$ray_python" python3 python; do'
        ' [ -n "$py" ] && "$py" -c "import ray, cluster.cli" >/dev/null 2>&1'
        f' && exec "$py" {args}; done;'
        ' echo "runner: no interpreter on this head imports ray and the project; tried'
        " RUNNER_PYTHON (${RUNNER_PYTHON:-unset}), the one Ray runs with ($ray_python),"
        " $(command -v python3 || echo no python3), $(command -v python || echo no python);"
        ' pass runner submit --python with the interpreter of the environment that runs Ray"'
        " >&2; exit 1"
    )


def follow_job(job_id: str, address: str, on_logs: Callable[[str], None]) -> JobState:
    """Hand the job's logs to ``on_logs`` as they come until it ends; return its state."""
    client = _client(address)

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            on_logs(lines)

    _call(address, lambda: asyncio.run(tail()), job_id)
    return _wait(client, address, job_id)  # the log stream can close before the status turns


def job_status(job_id: str, address: str) -> JobState:
    return _state(_client(address), address, job_id)


def job_logs(job_id: str, address: str) -> str:
    client = _client(address)
    return _call(address, lambda: client.get_job_logs(job_id), job_id)


def stop_job(job_id: str, address: str, wait_s: float = 30.0) -> JobState:
    """Ask the cluster to stop the job, then wait (a while) for it to end."""
    client = _client(address)
    _call(address, lambda: client.stop_job(job_id), job_id)
    return _wait(client, address, job_id, time.monotonic() + wait_s)


def _wait(
    client: JobSubmissionClient, address: str, job_id: str, deadline: float = float("inf")
) -> JobState:
    """Poll the job's state until it is done or ``deadline`` (monotonic) passes."""
    state = _state(client, address, job_id)
    while not state.done and time.monotonic() < deadline:
        time.sleep(0.2)
        state = _state(client, address, job_id)
    return state


def _state(client: JobSubmissionClient, address: str, job_id: str) -> JobState:
    info = _call(address, lambda: client.get_job_info(job_id), job_id)
    return JobState(str(info.status.value), info.message or "", info.driver_exit_code)


def _inside(path: Path, root: Path, what: str) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        raise SpecError(
            f"{what}: {path} is outside {root}, the directory uploaded to the "
            "cluster; run `runner submit` from a directory that holds it"
        ) from None


def _client(address: str) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    # Quiet Ray's per-request INFO lines, and its warning that it skips .git and .venv
    # (EXCLUDES skips them anyway); other warnings, such as a large upload, still show.
    for name in ("ray.dashboard", "ray._private.runtime_env"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray._private.runtime_env.working_dir").setLevel(logging.ERROR)
    return _call(address, lambda: JobSubmissionClient(address))


def _call(address: str, request: Callable[[], T], job_id: str | None = None) -> T:
    """Run one request to the Job API; its failures become ``RunnerError`` naming the address."""
    import aiohttp
    import requests
    from ray.exceptions import AuthenticationError

    try:
        return request()
    except (AuthenticationError, aiohttp.ClientResponseError) as error:
        if getattr(error, "status", 401) not in (401, 403):
            raise RunnerError(f"{address}: {error}") from None
        raise RunnerError(
            f"{address} refused the request ({str(error).splitlines()[0]}); this cluster uses "
            "token authentication: set RAY_AUTH_MODE=token here, with its token in "
            "~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH"
        ) from None
    except (ConnectionError, requests.RequestException, aiohttp.ClientError) as error:
        raise RunnerError(
            f"cannot reach the Ray Job API at {address}: {error}; is the head "
            "node's dashboard up (`ray start --head`), and is the address "
            "its http://HOST:8265?"
        ) from None
    except (RuntimeError, ValueError) as error:
        if job_id is not None and ("404" in str(error) or "does not exist" in str(error)):
            raise RunnerError(f"{address}: no job {job_id!r} on this cluster") from None
        raise RunnerError(f"{address}: {error}") from None
