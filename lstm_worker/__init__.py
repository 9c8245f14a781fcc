"""What runs inside one Ray task: model, windows, training, forecasting, metrics.

Plain torch and numpy; never imports ray or click, so it can be tested and profiled alone.
The settings import without torch, so the driver's CLI starts fast; the task entry
(``forecast_batch``, ``SeriesResult``) loads torch on first use.
"""

from lstm_worker.config import ForecastConfig, ModelConfig, TrainConfig, WorkerConfig

__all__ = [
    "ForecastConfig",
    "ModelConfig",
    "SeriesResult",
    "TrainConfig",
    "WorkerConfig",
    "forecast_batch",
]


def __getattr__(name: str):
    if name in ("SeriesResult", "forecast_batch"):
        from lstm_worker import task

        return getattr(task, name)
    raise AttributeError(f"module 'lstm_worker' has no attribute {name!r}")
