"""Shard planning: which series each Ray task runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Series ``start:stop`` of the id-sorted table; ``index`` names the task."""

    index: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def plan_shards(n_series: int, series_per_task: int) -> list[Shard]:
    """Consecutive chunks of ``series_per_task`` series (the last one may be smaller)."""
    starts = range(0, n_series, series_per_task)
    return [
        Shard(index, start, min(start + series_per_task, n_series))
        for index, start in enumerate(starts)
    ]
