"""Compression cost: exact bits for models with known distributions."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.generation import compression_bits, power_schedule, qlds_order

K, N, MASK = 8, 16, 8


def test_uniform_model_costs_log2_k_per_token():
    tokens = torch.randint(0, K, (3, N))
    bits = compression_bits(
        lambda t: torch.zeros(*t.shape, K), tokens, mask_id=MASK, order=qlds_order(4, 4), group_sizes=power_schedule(N)
    )
    assert torch.allclose(bits, torch.full((3,), N * math.log2(K), dtype=torch.float64))


def test_model_that_copies_context_is_cheaper_and_sees_only_uncovered_tokens():
    # all tokens of a row are equal; the model predicts the value of any visible token with certainty
    tokens = torch.randint(0, K, (5, 1)).expand(5, N).clone()
    seen = []

    def model(current):
        seen.append(current.clone())
        logits = torch.zeros(*current.shape, K)
        for row in range(current.shape[0]):
            visible = current[row][current[row] != MASK]
            if visible.numel():
                logits[row, :, visible[0]] = 50.0
        return logits

    sizes = power_schedule(N, 4, 2.2)
    bits = compression_bits(model, tokens, mask_id=MASK, order=torch.arange(N), group_sizes=sizes)
    assert torch.allclose(bits, torch.full((5,), sizes[0] * math.log2(K), dtype=torch.float64), atol=1e-6)
    assert (seen[0] == MASK).all()
    assert (seen[1] != MASK).sum(1).eq(sizes[0]).all()


def test_bad_order_refused():
    with pytest.raises(ValueError):
        compression_bits(
            lambda t: torch.zeros(*t.shape, K),
            torch.zeros(1, N, dtype=torch.long),
            mask_id=MASK,
            order=torch.zeros(N, dtype=torch.long),
            group_sizes=[N],
        )
