"""Learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math


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
