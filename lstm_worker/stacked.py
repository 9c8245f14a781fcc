"""K independent LSTM forecasters evaluated as one stacked computation.

Every weight has a leading model axis K (``w_hh``: (K, H, 4H)), so one batched matmul
per time step advances all K models. Model k only ever touches slice k of every
tensor: its outputs and gradients do not depend on the other models' data. Each model
is initialised exactly as ``LSTMForecaster`` would be with the same seed, so the
stack and a plain ``nn.LSTM`` (the test oracle, ``tests/reference_loop.py``) start from the
same weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lstm_worker.config import ModelConfig

StackedState = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: h, c each (K, B, H)
_WEIGHTS = ("w_ih", "w_hh", "bias")  # one list of each per direction, a tensor per layer
_DIRECTIONS = (("", ""), ("reverse_", "_reverse"))  # (our prefix, nn.LSTM's suffix)


@dataclass(frozen=True)
class _Drawn:
    """One seed's initial weights, as ``LSTMForecaster`` draws them."""

    lstm: dict[str, torch.Tensor]  # nn.LSTM's names: weight_ih_l0, ..., bias_hh_l0_reverse
    head: list[tuple[torch.Tensor, torch.Tensor]]  # each Linear's (weight, bias)


def _drawn(cfg: ModelConfig, inputs: int, seed: int) -> _Drawn:
    """The weights ``LSTMForecaster(cfg, inputs)`` starts from after ``torch.manual_seed
    (seed)``: the same draws from the CPU's generator in the same order (nn.LSTM's
    uniform per parameter, then each head Linear's), without building the modules (a
    millisecond a model: most of a stack's set-up); ``tests/test_train.py`` checks them
    against the module, weight for weight."""
    torch.default_generator.manual_seed(seed)
    hidden, directions = cfg.hidden_size, 2 if cfg.bidirectional else 1
    bound = 1.0 / math.sqrt(hidden)
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(cfg.num_layers):
        width = 2 if layer == 0 else hidden * directions
        for suffix in ("", "_reverse")[:directions]:
            shapes[f"weight_ih_l{layer}{suffix}"] = (4 * hidden, width)
            shapes[f"weight_hh_l{layer}{suffix}"] = (4 * hidden, hidden)
            shapes[f"bias_ih_l{layer}{suffix}"] = (4 * hidden,)
            shapes[f"bias_hh_l{layer}{suffix}"] = (4 * hidden,)
    # nn.LSTM draws each parameter in this order from the same uniform: one draw of them
    # all takes the same numbers from the generator (its CPU kernel draws element by element)
    counts = [math.prod(shape) for shape in shapes.values()]
    flat = torch.split(nn.init.uniform_(torch.empty(sum(counts)), -bound, bound), counts)
    lstm = {
        name: part.reshape(shape) for (name, shape), part in zip(shapes.items(), flat, strict=True)
    }
    if inputs > 2:  # the known inputs' columns start at zero (LSTMForecaster._add_known_inputs)
        for suffix in ("", "_reverse")[:directions]:
            first = lstm[f"weight_ih_l0{suffix}"]
            lstm[f"weight_ih_l0{suffix}"] = torch.cat(
                [first, first.new_zeros(4 * hidden, inputs - 2)], 1
            )
    features = hidden * directions
    sizes = [(features, hidden), (hidden, 1)] if cfg.head == "mlp" else [(features, 1)]
    head = []
    for fan_in, out in sizes:  # nn.Linear's reset_parameters
        weight = nn.init.kaiming_uniform_(torch.empty(out, fan_in), a=math.sqrt(5))
        bias_bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        head.append((weight, nn.init.uniform_(torch.empty(out), -bias_bound, bias_bound)))
    last = head[-1]
    head[-1] = (torch.zeros_like(last[0]), torch.zeros_like(last[1]))  # the last starts at zero
    return _Drawn(lstm, head)


def _recur(
    projected: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    w_hh: torch.Tensor,
    start: torch.Tensor | None,
) -> tuple[list[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """One direction of one layer, step by step: projected (K, B, T, 4H), gates in
    (i, f, o, g) order -> each step's h (K, B, H), and the last (h, c). ``start`` (K, B):
    steps before it are left padding, through which the state stays where it was."""
    hidden = h.shape[-1]
    outputs = []
    for t, step_input in enumerate(projected.unbind(2)):  # each (K, B, 4H); unbind once
        gates = torch.baddbmm(step_input, h, w_hh)  # (K, B, 4H)
        sig = gates[..., : 3 * hidden].sigmoid()  # i, f, o
        c_new = (
            sig[..., hidden : 2 * hidden] * c + sig[..., :hidden] * gates[..., 3 * hidden :].tanh()
        )
        h_new = sig[..., 2 * hidden :] * c_new.tanh()
        if start is not None:  # padding keeps the zero state
            real = (start <= t)[..., None]  # (K, B, 1)
            h_new, c_new = torch.where(real, h_new, h), torch.where(real, c_new, c)
        h, c = h_new, c_new
        outputs.append(h)
    return outputs, (h, c)


def _reorder_gates(weight: torch.Tensor, hidden: int, dim: int = 0) -> torch.Tensor:
    """nn.LSTM stacks gates as (i, f, g, o) along ``dim``; put the three sigmoid gates
    first: (i, f, o, g)."""
    i, f, g, o = torch.split(weight, hidden, dim=dim)
    return torch.cat([i, f, o, g], dim=dim)


class StackedLSTM(nn.Module):
    """K LSTM forecasters with a linear or MLP head each.

    A bidirectional stack (``model.bidirectional``) has a second set of weights per
    layer, ``reverse_w_ih`` and so on, that reads each window from its end; a layer's
    output is both directions' side by side, (K, B, T, 2H), as ``nn.LSTM``'s is.
    """

    w_ih: nn.ParameterList
    w_hh: nn.ParameterList
    bias: nn.ParameterList
    reverse_w_ih: nn.ParameterList
    reverse_w_hh: nn.ParameterList
    reverse_bias: nn.ParameterList

    def __init__(self, cfg: ModelConfig, seeds: Sequence[int], inputs: int = 2):
        super().__init__()
        self.cfg, self.k = cfg, len(seeds)
        hidden = cfg.hidden_size
        # a series' backtest and refit models share its seed: each seed drawn once, the
        # last one last, so the CPU's generator ends where one draw a model leaves it
        last = {seed: k for k, seed in enumerate(seeds)}
        drawn = {seed: _drawn(cfg, inputs, seed) for seed in sorted(last, key=last.__getitem__)}
        singles = [drawn[seed] for seed in seeds]
        if seeds:  # the GPUs' generators as torch.manual_seed leaves them: dropout draws there
            torch.cuda.manual_seed_all(seeds[-1])  # once: seeding them costs 1 ms a call
        for prefix, suffix in _DIRECTIONS:  # a unidirectional stack's reverse lists stay empty
            lists = [nn.ParameterList() for _ in _WEIGHTS]
            for layer in range(cfg.num_layers if suffix == "" or cfg.bidirectional else 0):

                def stack(name: str, layer: int = layer, suffix: str = suffix) -> torch.Tensor:
                    weights = torch.stack([s.lstm[f"{name}_l{layer}{suffix}"] for s in singles])
                    return _reorder_gates(weights, hidden, dim=1)  # (K, 4H, ...)

                lists[0].append(nn.Parameter(stack("weight_ih").transpose(1, 2).contiguous()))
                lists[1].append(nn.Parameter(stack("weight_hh").transpose(1, 2).contiguous()))
                lists[2].append(nn.Parameter((stack("bias_ih") + stack("bias_hh")).unsqueeze(1)))
                # shapes: w_ih (K, I, 4H) (I: 2H past the first layer of a bidirectional
                # stack), w_hh (K, H, 4H), bias (K, 1, 4H)
            for name, params in zip(_WEIGHTS, lists, strict=True):
                setattr(self, prefix + name, params)
        linears = [s.head for s in singles]
        self.head_w = nn.ParameterList(
            nn.Parameter(torch.stack([ls[j][0].T for ls in linears]))  # (K, in, out)
            for j in range(len(linears[0]))
        )
        self.head_b = nn.ParameterList(
            nn.Parameter(torch.stack([ls[j][1] for ls in linears]).unsqueeze(1))
            for j in range(len(linears[0]))
        )  # (K, 1, out)

    def forward(
        self,
        x: torch.Tensor,
        state: StackedState | None = None,
        models: torch.Tensor | None = None,
        start: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, StackedState]:
        """x: (K, B, T, 2 + E) inputs (``windows.model_inputs``) -> (K, B, T) next values, state.

        ``models`` (K',) runs only those models (x then holds K' of them): the weights are
        gathered, so gradients flow back into the full stack and the rest cost nothing.
        ``start`` (K, B): steps before it are left padding; the state stays at zero through
        them, so a padded row computes exactly what it would alone and unpadded.
        """
        k, batch, steps, features = x.shape
        hidden = self.cfg.hidden_size

        def pick(weight: torch.Tensor) -> torch.Tensor:
            return weight if models is None else weight[models]

        layer_input = x.reshape(k, batch * steps, features)  # (K, B*T, I)
        new_state: StackedState = []
        for layer in range(self.cfg.num_layers):
            if state is None:
                h = c = x.new_zeros(k, batch, hidden)
            else:
                h, c = state[layer]
            projected = self._project(layer_input, layer, "", pick).view(k, batch, steps, -1)
            outputs, (h, c) = _recur(projected, h, c, pick(self.w_hh[layer]), start)
            new_state.append((h, c))  # a bidirectional stack carries the forward state only
            layer_output = torch.stack(outputs, dim=2)  # (K, B, T, H)
            if self.cfg.bidirectional:  # from the window's end; left padding is read last
                projected = self._project(layer_input, layer, "reverse_", pick)
                zero = x.new_zeros(k, batch, hidden)
                backward, _ = _recur(
                    projected.view(k, batch, steps, -1).flip(2),
                    zero,
                    zero,
                    pick(self.reverse_w_hh[layer]),
                    None,
                )
                reverse = torch.stack(backward, dim=2).flip(2)  # (K, B, T, H)
                layer_output = torch.cat([layer_output, reverse], dim=3)  # (K, B, T, 2H)
            layer_input = layer_output.view(k, batch * steps, -1)  # (K, B*T, H or 2H)
            if layer < self.cfg.num_layers - 1 and self.cfg.dropout > 0:
                layer_input = nn.functional.dropout(layer_input, self.cfg.dropout, self.training)
        out = layer_input
        for j, (weight, bias) in enumerate(zip(self.head_w, self.head_b, strict=True)):
            out = torch.baddbmm(pick(bias), out, pick(weight))  # (K, B*T, in) @ (K, in, out)
            if j < len(self.head_w) - 1:
                out = out.relu()
        pred = out.view(k, batch, steps)  # (K, B*T, 1) -> (K, B, T)
        return pred + x[..., 1], new_state  # the residual over the skip input

    def _project(
        self,
        layer_input: torch.Tensor,
        layer: int,
        direction: str,
        pick: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Input projections of all steps at once: (K, B*T, I) @ (K, I, 4H) -> (K, B*T, 4H)."""
        bias = getattr(self, direction + "bias")[layer]
        return torch.baddbmm(
            pick(bias), layer_input, pick(getattr(self, direction + "w_ih")[layer])
        )

    def repeat(self, sources: Sequence[int]) -> StackedLSTM:
        """A new stack whose model i starts as a copy of this stack's model ``sources[i]``."""
        index = torch.as_tensor(list(sources), device=self.bias[0].device)
        return StackedLSTM.from_params(
            self.cfg, {name: p.detach()[index] for name, p in self.named_parameters()}
        )

    @staticmethod
    def from_params(cfg: ModelConfig, params: dict[str, torch.Tensor]) -> StackedLSTM:
        """A stack of the models whose parameters ``params`` holds, as ``named_parameters``
        names them, each (K, ...): the models a run stored, or a copy of another stack's."""
        stack = StackedLSTM.__new__(StackedLSTM)
        nn.Module.__init__(stack)
        stack.cfg, stack.k = cfg, len(params["bias.0"])
        names = [prefix + name for prefix, _ in _DIRECTIONS for name in _WEIGHTS]
        for name in (*names, "head_w", "head_b"):  # as __init__ registers them
            layers = sorted(
                (int(key.split(".")[1]), value)
                for key, value in params.items()
                if key.split(".")[0] == name
            )
            setattr(stack, name, nn.ParameterList(nn.Parameter(v.clone()) for _, v in layers))
        return stack

    def model_params(self) -> list[dict[str, np.ndarray]]:
        """Each model's parameters, as ``from_params`` takes them back (one model's): rows
        of the stack's arrays, brought to the CPU once for all the models."""
        arrays = {name: p.detach().cpu().numpy() for name, p in self.named_parameters()}
        return [{name: a[k] for name, a in arrays.items()} for k in range(self.k)]

    def state_for(self, index: int) -> dict[str, torch.Tensor]:
        """Model ``index`` as a plain ``LSTMForecaster`` state dict (to save or inspect)."""
        hidden, state = self.cfg.hidden_size, {}
        restore = [0, 1, 3, 2]  # (i, f, o, g) back to nn.LSTM's (i, f, g, o)
        for prefix, suffix in _DIRECTIONS[: 2 if self.cfg.bidirectional else 1]:
            w_ih, w_hh, bias = (getattr(self, prefix + name) for name in _WEIGHTS)
            for layer in range(self.cfg.num_layers):
                at = f"_l{layer}{suffix}"
                for name, weight in (("weight_ih", w_ih[layer]), ("weight_hh", w_hh[layer])):
                    blocks = weight[index].T.split(hidden, dim=0)
                    state[f"lstm.{name}{at}"] = torch.cat([blocks[i] for i in restore]).detach()
                blocks = bias[layer][index, 0].split(hidden)
                state[f"lstm.bias_ih{at}"] = torch.cat([blocks[i] for i in restore]).detach()
                state[f"lstm.bias_hh{at}"] = torch.zeros_like(state[f"lstm.bias_ih{at}"])
        names = ["head"] if len(self.head_w) == 1 else ["head.0", "head.2"]
        for name, weight, bias in zip(names, self.head_w, self.head_b, strict=True):
            state[f"{name}.weight"] = weight[index].T.detach()
            state[f"{name}.bias"] = bias[index, 0].detach()
        return state
