"""Progress of a job: a live bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressSink(Protocol):
    """What the job tells of its progress: series done (and how many of them failed)."""

    def advance(self, series: int, failed: int) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """The job's progress, told to no one (tests, benchmarks, library callers)."""

    def __init__(self, total: int = 0, already: int = 0) -> None:
        pass

    def advance(self, series: int, failed: int) -> None:
        pass

    def close(self) -> None:
        pass


class JobProgress:
    """Counts series done and failed; shows rate and ETA."""

    def __init__(
        self,
        total: int,
        already: int = 0,
        every_seconds: float = 10.0,
        stream: TextIO = sys.stderr,
    ) -> None:
        self.total, self.done, self.failed, self.already = total, already, 0, already
        self.started = self._last_line = time.monotonic()
        self.every_seconds, self.stream = every_seconds, stream
        self._bar = None
        if stream.isatty():
            self._bar = Progress(
                TextColumn("series"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._bar.add_task(
                "series", total=total, completed=already, failed=0, rate=""
            )
            self._bar.start()

    def advance(self, series: int, failed: int) -> None:
        self.done += series
        self.failed += failed
        elapsed = time.monotonic() - self.started
        rate = (self.done - self.already) / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            self._bar.update(
                self._task, completed=self.done, failed=self.failed, rate=f"{rate:.1f} series/s"
            )
        elif time.monotonic() - self._last_line >= self.every_seconds or self.done == self.total:
            self._last_line = time.monotonic()
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(
                f"progress: {self.done}/{self.total} series, {self.failed} failed, "
                f"{rate:.1f} series/s, eta {eta:.0f}s",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
