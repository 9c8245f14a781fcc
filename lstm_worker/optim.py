"""``torch.optim.Adam`` and ``clip_grad_norm_`` applied to each model of a stack on its own.

Every parameter of a stack has a leading model axis K; each model has its own step
count and learning rate, and a model that sat out a batch (``active`` false) keeps its
weights and moments exactly as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults


def grad_of(p: torch.Tensor) -> torch.Tensor:
    """p's gradient; every parameter of the stack takes part in every forward."""
    if p.grad is None:
        raise RuntimeError("a parameter of the stack has no gradient")
    return p.grad


def clip_per_model(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each model's slice of every parameter."""
    squares = [grad_of(p).pow(2).flatten(1).sum(1) for p in params]  # each (K,)
    norms = sum(squares[1:], squares[0]).sqrt()  # (K,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        grad_of(p).mul_(coef.view(-1, *[1] * (p.dim() - 1)))


def adam_step(
    params: Sequence[torch.Tensor],
    moments: list[tuple[torch.Tensor, torch.Tensor]],
    steps: torch.Tensor,
    lr: torch.Tensor,
    active: torch.Tensor,
    weight_decay: float,
) -> None:
    """``torch.optim.Adam`` (L2 weight decay) with a step count and lr per model."""
    steps += active
    bias1 = (1 - _BETA1**steps).clamp(min=1e-12)  # (K,)
    bias2 = (1 - _BETA2**steps).clamp(min=1e-12)
    for p, (m, v) in zip(params, moments, strict=True):
        shape = (-1, *[1] * (p.dim() - 1))  # broadcast a (K,) over one parameter
        on = active.view(shape)
        grad = grad_of(p) + weight_decay * p if weight_decay else grad_of(p)
        m.copy_(torch.where(on, _BETA1 * m + (1 - _BETA1) * grad, m))
        v.copy_(torch.where(on, _BETA2 * v + (1 - _BETA2) * grad * grad, v))
        denom = v.sqrt() / bias2.sqrt().view(shape) + _EPS
        update = (lr / bias1).view(shape) * m / denom
        p.sub_(torch.where(on, update, torch.zeros_like(update)))
