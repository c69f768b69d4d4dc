"""Masking schedules: endpoints, monotonicity, the paper's numbers, training counts, M2T groups and order."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.generation import (
    SCHEDULES,
    decoding_counts,
    gamma,
    gamma_inverse,
    power_schedule,
    qlds_order,
    random_mask,
    training_mask_count,
)


@pytest.mark.parametrize("method", SCHEDULES)
def test_endpoints_and_monotone(method):
    assert gamma(0.0, method) == pytest.approx(1.0)
    assert gamma(1.0, method) == pytest.approx(0.0, abs=1e-12)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    values = gamma(t, method)
    assert (values[1:] <= values[:-1] + 1e-12).all()
    assert (values[1:-1] < values[:-2]).all()  # strictly decreasing inside


@pytest.mark.parametrize("method", SCHEDULES)
def test_inverse(method):
    for ratio in (0.0, 0.2, 0.45, 0.9, 1.0):
        assert gamma(gamma_inverse(ratio, method), method) == pytest.approx(ratio, abs=1e-12)


def test_paper_lower_bound_value():
    assert 1 - gamma_inverse(0.45) == pytest.approx(0.297152, abs=1e-6)  # r_min of App. A.4.2


def test_decoding_counts_match_the_paper():
    # 256 tokens, 12 steps, cosine: the tokens still masked after each step (the official MaskGIT decoder's counts)
    assert decoding_counts(256, 12) == [253, 247, 236, 221, 203, 181, 155, 128, 97, 66, 33, 0]


@pytest.mark.parametrize("tokens,steps", [(16, 12), (49, 12), (49, 1), (5, 12), (256, 8)])
def test_decoding_counts_reveal_every_step(tokens, steps):
    counts = [tokens, *decoding_counts(tokens, steps)]
    assert counts[-1] == 0
    for before, after in zip(counts, counts[1:]):
        assert after < before or before == 0


def test_training_counts_respect_the_lower_bound():
    generator = torch.Generator().manual_seed(0)
    counts = [training_mask_count(256, min_ratio=0.45, generator=generator) for _ in range(2000)]
    assert min(counts) >= math.ceil(0.45 * 256)
    assert max(counts) == 256
    # the count distribution follows the cosine: P(count <= 0.7 N) = P(cos(pi/2 u) <= 0.7) with u ~ U[0, u_max]
    u_max = gamma_inverse(0.45)
    expected = (u_max - gamma_inverse(0.7)) / u_max
    observed = sum(c <= 0.7 * 256 for c in counts) / len(counts)
    assert observed == pytest.approx(expected, abs=0.04)


def test_random_mask_exact_count_and_direction():
    mask = random_mask(64, 49, 30, generator=torch.Generator().manual_seed(1))
    assert mask.dtype == torch.bool and (mask.sum(1) == 30).all()
    assert mask.float().mean(0).min() > 0.2  # positions are spread, not a fixed block


def test_power_schedule():
    sizes = power_schedule(256, 12, 2.2)
    assert sum(sizes) == 256 and all(s >= 1 for s in sizes)
    assert sizes == sorted(sizes)  # groups grow (alpha > 1)
    small = power_schedule(49, 12, 2.2)
    assert sum(small) == 49 and min(small) >= 1
    with pytest.raises(ValueError):
        power_schedule(4, 12)


def test_qlds_order_is_a_spread_permutation():
    order = qlds_order(16, 16)
    assert sorted(order.tolist()) == list(range(256))
    first = order[:16]  # the first 16 points are spread over the grid: every 4x4 quadrant block gets some
    quadrants = {(int(p) // 16 // 8, int(p) % 16 // 8) for p in first}
    assert len(quadrants) == 4
    assert sorted(qlds_order(7, 5).tolist()) == list(range(35))
