"""MaskGIT iterative decoding as a pure function of a ``tokens_to_logits`` callable (official ``parallel_decode``).

``sample(tokens_to_logits, initial, mask_id=...)`` starts from ``initial`` (B, N) int64 where unknown positions
hold ``mask_id`` and, for ``steps`` steps: gets logits (B, N, K) of the current tokens, applies classifier-free
guidance ``l = l_c + alpha * (l_c - l_uncond)`` when an unconditional callable is given, samples every unknown
position (temperature ``temperature``), scores the samples by their log-probability plus Gumbel noise scaled by
``choice_temperature * (1 - (t+1)/T)``, keeps known tokens (score +inf: never rewritten) and re-masks the
lowest-scoring samples so that the schedule's count stays unknown. The last step keeps every sample, so the
result holds no mask. Randomness comes only from ``generator``: the same generator state gives the same tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from fsq.generation.mask_schedule import masked_after_step

TokensToLogits = Callable[[torch.Tensor], torch.Tensor]


class SampleResult(NamedTuple):
    tokens: torch.Tensor  # (B, N) int64, no mask left
    masked_per_step: list[torch.Tensor]  # masked count of each row after each step


def _gumbel(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, dtype=torch.float32).to(device)
    return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))


@torch.no_grad()
def sample(
    tokens_to_logits: TokensToLogits,
    initial: torch.Tensor,
    *,
    mask_id: int,
    steps: int = 12,
    schedule: str = "cosine",
    temperature: float = 1.0,
    choice_temperature: float = 4.5,
    guidance: float = 0.0,
    uncond_tokens_to_logits: TokensToLogits | None = None,
    generator: torch.Generator | None = None,
) -> SampleResult:
    """Decode the masked positions of ``initial``; see the module docstring. ``generator`` lives on the CPU."""
    if initial.dim() != 2 or initial.dtype != torch.long:
        raise ValueError(f"initial must be int64 (batch, tokens), got {tuple(initial.shape)} {initial.dtype}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if guidance != 0.0 and uncond_tokens_to_logits is None:
        raise ValueError("guidance != 0 needs uncond_tokens_to_logits")
    device = initial.device
    current = initial.clone()
    unknown = (current == mask_id).sum(dim=1)
    history = []
    for step in range(steps):
        is_masked = current == mask_id
        logits = tokens_to_logits(current).float()
        if logits.shape[:2] != current.shape:
            raise ValueError(f"tokens_to_logits returned {tuple(logits.shape)} for tokens {tuple(current.shape)}")
        if uncond_tokens_to_logits is not None:
            uncond = uncond_tokens_to_logits(current).float()
            logits = logits + guidance * (logits - uncond)
        log_probs = torch.log_softmax(logits / temperature, dim=-1)
        sampled = (log_probs + _gumbel(log_probs.shape, generator, device)).argmax(dim=-1)  # Gumbel-max sampling
        sampled = torch.where(is_masked, sampled, current)
        chosen = log_probs.gather(-1, sampled.unsqueeze(-1)).squeeze(-1)
        noise_scale = choice_temperature * (1.0 - (step + 1) / steps)
        confidence = chosen + noise_scale * _gumbel(chosen.shape, generator, device)
        confidence = torch.where(is_masked, confidence, torch.full_like(confidence, float("inf")))
        keep_masked = masked_after_step(unknown, step, steps, schedule).to(device)
        ranks = confidence.argsort(dim=1, stable=True).argsort(dim=1)  # 0 = least confident
        remask = ranks < keep_masked.unsqueeze(1)
        current = torch.where(remask, torch.full_like(sampled, mask_id), sampled)
        history.append((current == mask_id).sum(dim=1).cpu())
    return SampleResult(current, history)
