"""Shard planning: which series each Ray task runs, and which rows it reads for them."""

from __future__ import annotations

import itertools

import numpy as np

from cluster.data.index import SeriesIndex
from lstm_worker.shard.messages import Shard


def plan_shards(series: SeriesIndex, series_per_task: int) -> list[Shard]:
    """Consecutive chunks of ``series_per_task`` series (the last one may be smaller)."""
    shards = []
    for index, start in enumerate(range(0, len(series), series_per_task)):
        stop = min(start + series_per_task, len(series))
        files = series.file[start:stop]
        cuts = np.flatnonzero(np.r_[True, files[1:] != files[:-1], True])  # runs of one file
        segments = tuple(
            (
                int(files[a]),
                int(series.first_row[start + a]),
                int(series.first_row[start + b - 1] + series.rows[start + b - 1]),
            )
            for a, b in itertools.pairwise(cuts)
        )
        shards.append(Shard(index, start, stop, segments))
    return shards
