"""BSQ against hand-worked values: the sphere projection, signs scaled by 1/sqrt(d), bit indices, entropies and
commitment; the straight-through gradient through the normalisation; scale invariance; large codebooks."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.quantizers.bsq import BSQ

LN3 = math.log(3.0)
H_QUARTER = math.log(4.0) - 0.75 * LN3  # H(3/4) = H(1/4), in nats
R2 = 1 / math.sqrt(2.0)


def test_golden_two_bits():
    # z = [[1, -1], [5, 5]] -> u = z / ||z|| = [[1/sqrt2, -1/sqrt2], [1/sqrt2, 1/sqrt2]]
    #   q = sign(u) / sqrt(2) = u (these inputs lie on the code points): commitment = 0
    #   indices = [1, 3] (bit i set where u_i > 0)
    #   bit logit = 4 c u_i / temperature, c = 1/sqrt2: 4 * (1/2) * (+-1) / temperature = +-2 / temperature;
    #   temperature = 2 / ln 3 makes it +-ln 3: p = [[3/4, 1/4], [3/4, 3/4]]
    #   sample entropy = 2 H(3/4); mean p = [3/4, 1/2]: codebook entropy = H(3/4) + ln 2
    #   aux (weights 1, 1, 1) = 2 H(3/4) - (H(3/4) + ln 2) + 0 = H(3/4) - ln 2
    q = BSQ(2, entropy_weight=1.0, diversity_weight=1.0, commitment_weight=1.0, temperature=2 / LN3)
    out = q(torch.tensor([[1.0, -1.0], [5.0, 5.0]]))
    assert out.quantized.flatten().tolist() == pytest.approx([R2, -R2, R2, R2])
    assert out.indices.tolist() == [1, 3]
    assert q.last_losses.sample_entropy.item() == pytest.approx(2 * H_QUARTER, rel=1e-5)
    assert q.last_losses.codebook_entropy.item() == pytest.approx(H_QUARTER + math.log(2.0), rel=1e-5)
    assert q.last_losses.commitment.item() == pytest.approx(0.0, abs=1e-7)
    assert out.aux_loss.item() == pytest.approx(H_QUARTER - math.log(2.0), rel=1e-5)


def test_commitment_by_hand():
    # z = [3, -4]: ||z|| = 5, u = [0.6, -0.8], q = [1/sqrt2, -1/sqrt2], index 1
    # commitment = ((0.6 - 1/sqrt2)^2 + (0.8 - 1/sqrt2)^2) / 2 = (2 - 1.4 sqrt2) / 2 = 1 - 0.7 sqrt2 = 0.0100505...
    q = BSQ(2, entropy_weight=0.0, commitment_weight=1.0)
    out = q(torch.tensor([[3.0, -4.0]]))
    assert out.indices.tolist() == [1]
    assert out.quantized[0].tolist() == pytest.approx([R2, -R2])
    assert out.aux_loss.item() == pytest.approx(1 - 0.7 * math.sqrt(2.0), rel=1e-5)


def test_straight_through_gradient_through_the_sphere():
    # quantized = u + sg(q - u), u = z / ||z||: d(g . quantized)/dz = (g - u (u . g)) / ||z||
    # z = [3, -4], g = [1, 0]: u . g = 0.6, (g - 0.6 u) / 5 = ([1 - 0.36, 0.48]) / 5 = [0.128, 0.096]
    z = torch.tensor([[3.0, -4.0]], requires_grad=True)
    (BSQ(2)(z).quantized * torch.tensor([[1.0, 0.0]])).sum().backward()
    assert z.grad[0].tolist() == pytest.approx([0.128, 0.096], rel=1e-5)


def test_scale_invariant_and_codes_on_the_sphere():
    torch.manual_seed(0)
    z = torch.randn(3, 6, 2, 2)
    q = BSQ(6, channel_axis=1)
    a, b = q(z), q(z * 7.5)
    assert torch.equal(a.indices, b.indices) and torch.allclose(a.quantized, b.quantized)
    assert torch.allclose(a.aux_loss, b.aux_loss)
    assert torch.allclose(a.quantized.norm(dim=1), torch.ones(3, 2, 2))
    assert torch.allclose(q.indices_to_codes(a.indices), a.quantized)
    assert torch.equal(q.codes_to_indices(a.quantized), a.indices)


def test_large_codebook():
    q = BSQ(20)
    assert q.codebook_size == 2**20
    out = q(-torch.ones(4, 20))
    assert out.indices.tolist() == [0] * 4 and torch.isfinite(out.aux_loss)
    assert q.indices_to_codes(torch.tensor([2**20 - 1]))[0].tolist() == pytest.approx([1 / math.sqrt(20)] * 20)
