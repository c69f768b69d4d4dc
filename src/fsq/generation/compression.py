"""Compression cost of a token grid under a masked transformer (M2T-style deterministic uncovering).

The grid is uncovered in ``len(group_sizes)`` steps along a fixed location ``order``; at each step the model sees
the tokens uncovered so far (the rest masked) and the cost of the next group is ``-log2 p(true tokens)``. The sum
is the ideal entropy-coding length of the grid; divided by the token count it is bits per token (``log2 K`` for a
model that knows nothing, less the more predictable the representation is).
"""

from __future__ import annotations

import math

import torch

from fsq.generation.sampler import TokensToLogits


@torch.no_grad()
def compression_bits(
    tokens_to_logits: TokensToLogits, tokens: torch.Tensor, *, mask_id: int, order: torch.Tensor, group_sizes: list[int]
) -> torch.Tensor:
    """Bits to code each row of ``tokens`` (B, N): (B,) float64. ``order`` is a permutation of the N positions."""
    batch, num_tokens = tokens.shape
    if sorted(order.tolist()) != list(range(num_tokens)) or sum(group_sizes) != num_tokens:
        raise ValueError("order must be a permutation of the positions and group_sizes must sum to their number")
    order = order.to(tokens.device)
    current = torch.full_like(tokens, mask_id)
    bits = torch.zeros(batch, dtype=torch.float64, device=tokens.device)
    start = 0
    for size in group_sizes:
        positions = order[start : start + size]
        log_probs = torch.log_softmax(tokens_to_logits(current).float(), dim=-1)[:, positions]
        true = tokens[:, positions]
        bits -= log_probs.gather(-1, true.unsqueeze(-1)).squeeze(-1).double().sum(1) / math.log(2)
        current[:, positions] = true
        start += size
    return bits
