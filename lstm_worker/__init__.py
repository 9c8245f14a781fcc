"""What runs inside one Ray task: model, windows, training, forecasting, metrics.

Plain torch and numpy; never imports ray or click, so it can be tested and profiled alone.
The settings import without torch, so the driver's CLI starts fast; the task entry
(``forecast_batch``, ``SeriesResult``) loads torch on first use.
"""

from typing import TYPE_CHECKING

from lstm_worker.config import ForecastConfig, ModelConfig, TrainConfig, WorkerConfig

if TYPE_CHECKING:  # loaded lazily at run time, by ``__getattr__``
    from lstm_worker.batch import forecast_batch
    from lstm_worker.result import SeriesResult

__all__ = [
    "ForecastConfig",
    "ModelConfig",
    "SeriesResult",
    "TrainConfig",
    "WorkerConfig",
    "forecast_batch",
]


def __getattr__(name: str) -> object:
    if name == "SeriesResult":
        from lstm_worker import result

        return result.SeriesResult
    if name == "forecast_batch":
        from lstm_worker import batch

        return batch.forecast_batch
    raise AttributeError(f"module 'lstm_worker' has no attribute {name!r}")
