"""Optimisation pieces every stage shares: the learning-rate schedule, the weights' EMA, AdamW parameter groups.

The learning rate is a pure function of the step (so a resumed run continues the schedule exactly); weight decay
applies to weight matrices only, never to biases, norms, embeddings or position embeddings (MaskGIT's and
big_vision's rule).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine") -> float:
    """Linear warmup over ``warmup_steps``, then ``constant`` or ``cosine`` decay to 0 at ``total_steps``."""
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}; use cosine or constant")
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))


class ModelEMA:
    """Keeps ``shadow``, a frozen copy of ``model`` whose float weights follow ``decay * shadow + (1 - decay) * w``.

    Buffers (e.g. VQ EMA codebooks) are copied as they are. The shadow is what evaluation uses.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, updates: int | None) -> float:
        """The decay of update number ``updates`` (0-based): ``min(decay, (1 + n) / (10 + n))`` with warm-up
        (``updates`` given, as in timm's and NVIDIA's EMA), else the constant ``decay``."""
        return self.decay if updates is None else min(self.decay, (1.0 + updates) / (10.0 + updates))

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int | None = None) -> None:
        """One EMA step; ``updates`` (the number of earlier updates) turns on the warm-up of :meth:`decay_at`."""
        decay = self.decay_at(updates)
        for ema_p, p in zip(self.shadow.parameters(), model.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.shadow.buffers(), model.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state, strict=True)


NO_DECAY_NAMES = ("embedding", "position", "embed.")


def decay_groups(model: nn.Module, weight_decay: float, no_decay: Iterable[str] = NO_DECAY_NAMES) -> list[dict]:
    """Two AdamW groups: weight matrices (``ndim >= 2``) decay, the rest (and names containing ``no_decay``) not."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and not any(s in n for s in no_decay)]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def adamw(model: nn.Module, lr: float, betas: tuple[float, float], weight_decay: float) -> torch.optim.AdamW:
    """AdamW over :func:`decay_groups`."""
    return torch.optim.AdamW(decay_groups(model, weight_decay), lr=lr, betas=betas)
