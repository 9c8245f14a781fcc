"""The classic PyTorch LSTM forecaster: ``nn.LSTM`` over scaled values plus a small head."""

from __future__ import annotations

import torch
from torch import nn

from lstm_worker.config import ModelConfig

LSTMState = tuple[torch.Tensor, torch.Tensor]


class LSTMForecaster(nn.Module):
    """Predicts the next scaled value at every position of its input sequence.

    One instance is one series' model. ``forward`` returns the state too, so a forecast
    can carry it forward one step at a time instead of re-reading the whole window.
    The head's last layer starts at zero, so an untrained model forecasts its skip input:
    seasonal naive, naive, or the series' mean (``windows.model_inputs``).
    """

    def __init__(self, cfg: ModelConfig, inputs: int = 2):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(
            input_size=inputs,  # the value, its skip input, known covariates (WorkerConfig.inputs)
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
            batch_first=True,
        )
        features = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        if cfg.head == "mlp":
            self.head: nn.Module = nn.Sequential(
                nn.Linear(features, cfg.hidden_size), nn.ReLU(), nn.Linear(cfg.hidden_size, 1)
            )
        else:
            self.head = nn.Linear(features, 1)
        last = self.head[-1] if isinstance(self.head, nn.Sequential) else self.head
        assert isinstance(last, nn.Linear)  # both heads end in a Linear
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(
        self, x: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """x: (B, T, 2 + E) inputs (``windows.model_inputs``) -> (B, T) next values, state."""
        out, state = self.lstm(x, state)  # (B, T, F)
        pred = self.head(out).squeeze(-1)  # (B, T, 1) -> (B, T)
        return pred + x[..., 1], state  # the residual over the skip input
