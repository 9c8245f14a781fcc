"""The names one concept has everywhere: a series' status and the baselines."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What happened to a series, as metrics.parquet's ``status`` column says."""

    OK = "ok"  # an LSTM forecast it (alone, or combined with the statistical models)
    FALLBACK = "fallback"  # a baseline forecast it: too short, a forecast not finite, or
    # it beat the LSTM
    SKIPPED = "skipped"  # not trained: unusable as read, or too short
    FAILED = "failed"  # training or its task failed; ``reason`` says why


FORECAST_STATUSES = (Status.OK, Status.FALLBACK)  # the statuses with a forecast


class Baseline(StrEnum):
    """The baselines every forecast is scored against, and that may take over."""

    NAIVE = "naive"  # the last value
    SNAIVE = "snaive"  # the last season


STATISTICAL = "statistical"  # the mean of damped trend and Theta (lstm_worker.smoothing)
