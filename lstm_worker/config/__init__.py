"""Frozen, strict settings for one task: the model, its training, its forecast, and the
table model every series' forecast can draw on.

Defaults live here, in code; a job spec's YAML holds only what differs. The driver's
job spec (``cluster.spec``) embeds these same models, so a field is defined once. One
module per section; this package's surface is the whole of it.
"""

from lstm_worker.config.forecast import LSTM_WEIGHTS, MIN_FIT_POINTS, ForecastConfig
from lstm_worker.config.model import CalendarPart, ModelConfig
from lstm_worker.config.strict import Strict
from lstm_worker.config.table import TABLE_SHARES, TableConfig
from lstm_worker.config.train import TrainConfig
from lstm_worker.config.worker import WorkerConfig

__all__ = [
    "LSTM_WEIGHTS",
    "MIN_FIT_POINTS",
    "TABLE_SHARES",
    "CalendarPart",
    "ForecastConfig",
    "ModelConfig",
    "Strict",
    "TableConfig",
    "TrainConfig",
    "WorkerConfig",
]
