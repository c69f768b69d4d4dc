"""Masking schedules of MaskGIT: what fraction of tokens is masked, in training and at each decoding step.

A schedule maps decoding progress ``t`` in [0, 1] to the fraction of tokens still masked: ``gamma(0) = 1`` (all
masked) and ``gamma(1) = 0``, decreasing in between. MaskGIT uses ``cosine``: ``gamma(t) = cos(pi/2 * t)``.

Training (FSQ paper App. A.4.2): one ratio per batch, ``N_M = ceil(gamma(u) * N)`` tokens masked with
``u ~ U[0, u_max]`` where ``gamma(u_max) = min_ratio``, so at least ``min_ratio * N`` tokens are masked (the paper
writes the same with ``r = 1 - u`` and ``r_min = 1 - arccos(0.45) * 2 / pi``). Positions are chosen uniformly
without replacement.

Decoding (official ``parallel_decode.py``): after step ``t`` of ``T``, ``floor(N_unknown * gamma((t+1)/T))``
tokens stay masked, at least one and at most ``unknown - 1`` (so every step reveals a token), none after the last.

Compression cost (M2T, Mentzer et al. 2023): a fixed deterministic uncovering order, ``power_schedule`` groups
(cumulative uncovered ``N * (s/S)**alpha``) over locations ordered by ``qlds_order`` (the quantized R2
low-discrepancy sequence).
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("cosine", "linear", "square", "cubic", "sqrt")


def gamma(t: float | torch.Tensor, method: str = "cosine") -> float | torch.Tensor:
    """Fraction of tokens masked at decoding progress ``t`` in [0, 1] (1 at t=0, 0 at t=1)."""
    is_tensor = isinstance(t, torch.Tensor)
    lib = torch if is_tensor else math
    if method == "cosine":
        return lib.cos(math.pi / 2 * t)
    if method == "linear":
        return 1 - t
    if method == "square":
        return 1 - t**2
    if method == "cubic":
        return 1 - t**3
    if method == "sqrt":
        return 1 - (t.sqrt() if isinstance(t, torch.Tensor) else t**0.5)
    raise ValueError(f"unknown masking schedule {method!r}; use one of {SCHEDULES}")


def gamma_inverse(ratio: float, method: str = "cosine") -> float:
    """The progress ``t`` at which ``gamma(t) = ratio`` (ratio in [0, 1])."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    if method == "cosine":
        return math.acos(ratio) * 2 / math.pi
    if method == "linear":
        return 1 - ratio
    if method == "square":
        return math.sqrt(1 - ratio)
    if method == "cubic":
        return (1 - ratio) ** (1 / 3)
    if method == "sqrt":
        return (1 - ratio) ** 2
    raise ValueError(f"unknown masking schedule {method!r}; use one of {SCHEDULES}")


def training_mask_count(
    num_tokens: int, *, min_ratio: float = 0.45, method: str = "cosine", generator: torch.Generator | None = None
) -> int:
    """Tokens to mask for one training batch: ``ceil(gamma(u) * N)``, ``u ~ U[0, gamma^-1(min_ratio)]``, in [1, N]."""
    u_max = gamma_inverse(min_ratio, method)
    u = torch.rand((), generator=generator).item() * u_max
    count = math.ceil(float(gamma(u, method)) * num_tokens)
    return min(max(count, 1), num_tokens)


def random_mask(
    batch: int, num_tokens: int, count: int, *, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Bool (batch, num_tokens), exactly ``count`` True per row at uniformly random positions."""
    noise = torch.rand(batch, num_tokens, generator=generator).to(device)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < count


def masked_after_step(unknown: torch.Tensor, step: int, steps: int, method: str = "cosine") -> torch.Tensor:
    """Tokens left masked after decoding ``step`` (0-based) of ``steps``, per row.

    ``unknown`` holds the masked count of each row before the first step; the current masked count is implied by
    the previous steps. Rows reveal at least one token per step while they have any left; the last step reveals all.
    """
    if step >= steps - 1:
        return torch.zeros_like(unknown)
    target = torch.floor(unknown.double() * float(gamma((step + 1) / steps, method))).long()
    previous = unknown if step == 0 else masked_after_step(unknown, step - 1, steps, method)
    return torch.minimum(target.clamp_min(1), (previous - 1).clamp_min(0))


def decoding_counts(num_tokens: int, steps: int, method: str = "cosine") -> list[int]:
    """Masked tokens left after each of ``steps`` decoding steps, starting from ``num_tokens`` unknown."""
    unknown = torch.tensor([num_tokens])
    return [int(masked_after_step(unknown, s, steps, method)[0]) for s in range(steps)]


def power_schedule(num_tokens: int, steps: int = 12, alpha: float = 2.2) -> list[int]:
    """M2T group sizes: cumulative uncovered after step s is ``round(N * (s/S)**alpha)``, every group non-empty."""
    if steps < 1 or steps > num_tokens:
        raise ValueError(f"steps must be in [1, {num_tokens}], got {steps}")
    cumulative = [round(num_tokens * ((s + 1) / steps) ** alpha) for s in range(steps)]
    sizes, done = [], 0
    for s, c in enumerate(cumulative):
        left_steps = steps - s - 1
        c = max(c, done + 1)  # every group uncovers something
        c = min(c, num_tokens - left_steps)  # ... and leaves a token for each later group
        sizes.append(c - done)
        done = c
    return sizes


def qlds_order(height: int, width: int) -> torch.Tensor:
    """Flat grid positions in the order of the quantized R2 low-discrepancy sequence (duplicates skipped).

    Points ``(frac(0.5 + n/g), frac(0.5 + n/g^2))`` with ``g`` the plastic number, quantized to the grid; any
    cell the sequence has not reached after ``64 * H * W`` points follows in raster order.
    """
    g = 1.32471795724474602596
    a1, a2 = 1.0 / g, 1.0 / (g * g)
    seen: set[int] = set()
    order: list[int] = []
    total = height * width
    for n in range(64 * total):
        if len(order) == total:
            break
        y = int(((0.5 + a1 * n) % 1.0) * height)
        x = int(((0.5 + a2 * n) % 1.0) * width)
        cell = y * width + x
        if cell not in seen:
            seen.add(cell)
            order.append(cell)
    order += [c for c in range(total) if c not in seen]
    return torch.tensor(order, dtype=torch.long)
