"""What runs inside one Ray task: model, windows, training, forecasting, metrics.

Plain torch and numpy; never imports ray or click, so it can be tested and profiled alone.
"""

from lstm_worker.config import ForecastConfig, ModelConfig, TrainConfig, WorkerConfig
from lstm_worker.task import SeriesResult, run_shard

__all__ = [
    "ForecastConfig",
    "ModelConfig",
    "SeriesResult",
    "TrainConfig",
    "WorkerConfig",
    "run_shard",
]
