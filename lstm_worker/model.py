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
            input_size=2,  # the value and its skip input; known inputs are added below
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
            batch_first=True,
        )
        if inputs > 2:
            self._add_known_inputs(inputs - 2)
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

    def _add_known_inputs(self, count: int) -> None:
        """Input columns for ``count`` known inputs (``WorkerConfig.covariates``), at zero:
        the model starts as the same seed's model without them, drawn from the same
        random numbers, and learns what they add (on M4 Hourly, random columns for the
        calendar cost MASE 0.861 against 0.836 without it)."""
        self.lstm.input_size += count
        for suffix in ("", "_reverse") if self.lstm.bidirectional else ("",):
            name = f"weight_ih_l0{suffix}"
            weight = getattr(self.lstm, name).detach()
            zeros = weight.new_zeros(weight.shape[0], count)
            setattr(self.lstm, name, nn.Parameter(torch.cat([weight, zeros], dim=1)))
        self.lstm.flatten_parameters()

    def forward(
        self, x: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """x: (B, T, 2 + E) inputs (``windows.model_inputs``) -> (B, T) next values, state."""
        out, state = self.lstm(x, state)  # (B, T, F)
        pred = self.head(out).squeeze(-1)  # (B, T, 1) -> (B, T)
        return pred + x[..., 1], state  # the residual over the skip input
