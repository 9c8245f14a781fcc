"""One run at a time per output: ``output.path/.lock`` names the run that holds it.

The lock is created exclusively, holds the holder's host, pid, run id and start, and its
``beat`` is renewed every ``HEARTBEAT`` seconds while the run lives. A second run is refused with
the holder's name. A lock is stale, and taken over, when its holder is a process of this
host that no longer exists, when it is this process's but no run of it holds it (a run
whose store went away could not delete it: the next run from a notebook or a scheduler's
long-lived worker takes it over), or when its heartbeat is older than ``STALE`` (a holder
on another host that died without a word).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from cluster.manifest import now
from lstm_worker.data.place import Place, why
from lstm_worker.errors import OutputError

LOCK = ".lock"
HEARTBEAT = 15.0  # seconds between touches of a held lock
STALE = 120.0  # a lock untouched this long is a dead run's
_HELD: set[str] = set()  # the locks this process's runs hold now
_GUARD = threading.Lock()  # one taking at a time here: a lock of this pid not held is left over


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _stale(holder: dict, age: float) -> bool:
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return holder["pid"] == os.getpid() or not _alive(holder["pid"])  # ours: not held
    return age > STALE


def _describe(holder: dict, age: float) -> str:
    return (
        f"run {holder.get('run_id', '?')} (host {holder.get('host', '?')}, pid "
        f"{holder.get('pid', '?')}, started {holder.get('started', '?')}, last seen "
        f"{age:.0f}s ago)"
    )


@contextmanager
def output_lock(out: Place, run_id: str) -> Iterator[None]:
    """Hold ``out``'s lock for the run ``run_id`` while the body runs."""
    try:
        out.mkdir()
    except OSError as error:
        raise OutputError(f"output.path: cannot write to {out}: {why(error)}") from None
    path = out / LOCK
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id, "started": now()}
    with _GUARD:
        _acquire(out, path, mine)
        _HELD.add(path.uri)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, mine, stop), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        _HELD.discard(path.uri)
        with suppress(OSError):  # a store gone away: the next run takes the lock over
            path.unlink()


def _acquire(out: Place, path: Place, mine: dict) -> None:
    """Create the lock, or take a stale one over and create it again; else refuse."""
    for _ in range(2):
        if _create(path, {**mine, "beat": time.time()}):
            return
        try:
            holder = json.loads(path.read_text())
            age = time.time() - float(holder.get("beat", 0.0))
        except (OSError, ValueError, TypeError):
            holder, age = {}, STALE + 1  # a lock cut short as it was written: stale
        if path.uri in _HELD:
            raise OutputError(f"output.path: {out} is already in use by this process")
        if not _stale(holder, age):
            raise OutputError(
                f"output.path: {out} is in use by {_describe(holder, age)}; wait for "
                f"it to end, or stop it (a dead run's lock, {path}, is taken over)"
            )
        path.unlink()
    raise OutputError(f"output.path: {out}: another run took the lock as this one did")


def _create(path: Place, holder: dict) -> bool:
    """Write the lock unless there is one. A local disk creates it exclusively; a store
    has no exclusive create, so the lock is written and read back (two runs starting in
    the same second could both win: the window a store leaves)."""
    payload = json.dumps(holder).encode()
    if path.local:
        try:
            handle = os.open(path.uri, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        return True
    if path.exists():
        return False
    path.write_bytes(payload)
    return path.read_bytes() == payload


def _heartbeat(path: Place, holder: dict, stop: threading.Event) -> None:
    """Touch the lock (its ``beat``) every ``HEARTBEAT`` seconds while the run lives."""
    while not stop.wait(HEARTBEAT):
        try:
            path.write_bytes(json.dumps({**holder, "beat": time.time()}).encode())
        except OSError:
            return
