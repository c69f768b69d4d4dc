"""LFQ against hand-worked values: signs, bit indices, the per-sample and codebook entropy terms, the commitment
term; the straight-through gradient; the factorised entropies against the full 2^d softmax; large codebooks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from fsq.quantizers.lfq import LFQ, binary_entropy, entropy_terms

LN3 = math.log(3.0)
# H(3/4) = H(1/4) = -(3/4 ln 3/4 + 1/4 ln 1/4) = ln 4 - (3/4) ln 3 = 0.5623351...
H_QUARTER = math.log(4.0) - 0.75 * LN3


def test_golden_two_bits():
    # temperature 4: the bit logit 4 c z / temperature is z itself (c = 1), so p_i = sigmoid(z_i).
    # z = [[ln 3, -ln 3], [ln 3, ln 3]]:
    #   q = [[+1, -1], [+1, +1]]; indices = 1*[z_0 > 0] + 2*[z_1 > 0] = [1, 3]
    #   p = sigmoid(+-ln 3) = 3/4 or 1/4: p = [[3/4, 1/4], [3/4, 3/4]]
    #   sample entropy = mean over tokens of sum_i H(p_i) = (2 H(3/4) + 2 H(3/4)) / 2 = 2 H(3/4)
    #   mean p = [3/4, 1/2]: codebook entropy = H(3/4) + ln 2
    #   commitment = mean((z - q)^2) = (ln 3 - 1)^2 (all four entries)
    #   aux = 1 * (2 H(3/4) - 1 * (H(3/4) + ln 2)) + 1 * (ln 3 - 1)^2 = H(3/4) - ln 2 + (ln 3 - 1)^2
    q = LFQ(2, entropy_weight=1.0, diversity_weight=1.0, commitment_weight=1.0, temperature=4.0)
    z = torch.tensor([[LN3, -LN3], [LN3, LN3]])
    out = q(z)
    assert out.quantized.tolist() == [[1.0, -1.0], [1.0, 1.0]]
    assert out.indices.tolist() == [1, 3] and out.indices.dtype == torch.int64
    sample, codebook = entropy_terms(z)  # logits = z at this temperature
    assert sample.item() == pytest.approx(2 * H_QUARTER, rel=1e-6)
    assert codebook.item() == pytest.approx(H_QUARTER + math.log(2.0), rel=1e-6)
    assert q.last_losses.sample_entropy.item() == pytest.approx(2 * H_QUARTER, rel=1e-6)
    assert q.last_losses.codebook_entropy.item() == pytest.approx(H_QUARTER + math.log(2.0), rel=1e-6)
    assert q.last_losses.commitment.item() == pytest.approx((LN3 - 1) ** 2, rel=1e-5)
    expected = H_QUARTER - math.log(2.0) + (LN3 - 1) ** 2  # = -0.1210880...
    assert out.aux_loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.aux_loss.dtype == torch.float32 and out.aux_loss.ndim == 0


def test_weights_scale_their_terms():
    # diversity 0.5 and commitment 0: aux = entropy_weight * (2 H(3/4) - 0.5 (H(3/4) + ln 2))
    q = LFQ(2, entropy_weight=0.1, diversity_weight=0.5, commitment_weight=0.0, temperature=4.0)
    out = q(torch.tensor([[LN3, -LN3], [LN3, LN3]]))
    assert out.aux_loss.item() == pytest.approx(0.1 * (2 * H_QUARTER - 0.5 * (H_QUARTER + math.log(2.0))), rel=1e-5)
    assert q.last_losses.commitment.item() == 0.0  # weight 0: not computed


def test_binary_entropy_by_hand():
    # H(1/2) = ln 2; H(0) = H(1) = 0 (log arguments clamped, 0 * log(1e-5) = 0); H(1/4) = H(3/4)
    values = binary_entropy(torch.tensor([0.5, 0.0, 1.0, 0.25, 0.75])).tolist()
    assert values == pytest.approx([math.log(2.0), 0.0, 0.0, H_QUARTER, H_QUARTER], abs=1e-6)


def test_zero_input_takes_the_negative_code():
    out = LFQ(3)(torch.tensor([[0.0, 0.5, -0.0]]))
    assert out.quantized.tolist() == [[-1.0, 1.0, -1.0]] and out.indices.tolist() == [2]


def test_indices_codes_round_trip_and_digits():
    q = LFQ(4)
    every = torch.arange(16)
    codes = q.indices_to_codes(every)  # (16, 4): +1 where the bit is set
    assert codes[5].tolist() == [1.0, -1.0, 1.0, -1.0]  # 5 = 0b0101: bits 0 and 2
    assert torch.equal(q.codes_to_indices(codes), every)
    assert torch.equal(q(codes).indices, every)  # the codes quantize to themselves
    assert q.indices_to_digits(torch.tensor([5])).tolist() == [[1, 0, 1, 0]]
    with pytest.raises(ValueError, match=r"indices out of range: found values in \[0, 16\]"):
        q.indices_to_codes(torch.tensor([0, 16]))
    with pytest.raises(TypeError, match="integer tensor"):
        q.indices_to_codes(torch.tensor([0.0]))


def test_channel_axis_is_explicit():
    torch.manual_seed(0)
    z = torch.randn(2, 5, 3, 4)  # (B, C, H, W)
    first, last = LFQ(5, channel_axis=1), LFQ(5)
    a, b = first(z), last(z.movedim(1, -1))
    assert torch.equal(a.quantized, b.quantized.movedim(-1, 1)) and torch.equal(a.indices, b.indices)
    assert a.indices.shape == (2, 3, 4) and torch.allclose(a.aux_loss, b.aux_loss)
    assert torch.equal(first.indices_to_codes(a.indices), a.quantized)
    with pytest.raises(ValueError, match=r"has 4 channels on axis 1 .* expected dim=5"):
        first(torch.randn(2, 4, 3, 3))


def test_straight_through_gradient():
    # quantized = z + sg(q - z): d(sum w * quantized)/dz = w
    z = torch.tensor([[0.3, -2.0, 0.7]], requires_grad=True)
    w = torch.tensor([[1.0, 2.0, -3.0]])
    (LFQ(3)(z).quantized * w).sum().backward()
    assert torch.equal(z.grad, w)


def test_commitment_gradient_by_hand():
    # entropy off, commitment weight 1: aux = mean((z - sg(q))^2), d aux / dz = 2 (z - q) / numel
    z = torch.tensor([[0.5, -0.25]], requires_grad=True)
    LFQ(2, entropy_weight=0.0, commitment_weight=1.0)(z).aux_loss.backward()
    assert z.grad[0].tolist() == pytest.approx([2 * (0.5 - 1) / 2, 2 * (-0.25 + 1) / 2])


def test_entropy_terms_gradient_matches_finite_differences():
    torch.manual_seed(0)
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: torch.stack(entropy_terms(x)), (logits,))


def _full_softmax_entropies(z: torch.Tensor, scale: float, temperature: float) -> tuple[float, float]:
    """Per-sample and batch entropy of softmax(-||z - code||^2 / temperature) over all 2^d codes, built in full."""
    d = z.shape[1]
    codes = torch.tensor(list(itertools.product([-scale, scale], repeat=d)), dtype=torch.float64)
    p = torch.softmax(-(torch.cdist(z.double(), codes) ** 2) / temperature, dim=-1)  # (N, 2^d)
    sample = -(p * p.log()).sum(-1).mean()
    mean = p.mean(0)
    return float(sample), float(-(mean * mean.log()).sum())


def test_factorised_entropies_against_the_full_codebook():
    # the per-sample entropy factorises exactly; the codebook term is the sum of marginal entropies, an upper
    # bound of the exact entropy of the mean distribution, equal when the batch's bits are independent
    torch.manual_seed(1)
    z = torch.randn(64, 3) * 0.5
    q = LFQ(3, temperature=2.0)
    q(z)
    sample, batch = _full_softmax_entropies(z, 1.0, 2.0)
    assert q.last_losses.sample_entropy.item() == pytest.approx(sample, rel=1e-5)
    assert q.last_losses.codebook_entropy.item() >= batch - 1e-6
    independent = torch.tensor([[a, b] for a in (-0.4, 0.4) for b in (-0.7, 0.7)])  # a product batch
    q2 = LFQ(2, temperature=2.0)
    q2(independent)
    sample, batch = _full_softmax_entropies(independent, 1.0, 2.0)
    assert q2.last_losses.codebook_entropy.item() == pytest.approx(batch, rel=1e-5)


def test_large_codebook_without_an_n_by_k_matrix():
    # 2^40 codes: exact int64 indices above 2^31, entropy in O(N d)
    q = LFQ(40)
    assert q.codebook_size == 2**40
    z = torch.ones(8, 40)
    z[1, 0] = -1.0
    out = q(z)
    assert out.indices.tolist() == [2**40 - 1, 2**40 - 2] + [2**40 - 1] * 6
    assert torch.isfinite(out.aux_loss)
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"dim must be an integer in \[1, 62\]"):
        LFQ(63)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        LFQ(4, temperature=0.0)
    with pytest.raises(ValueError, match="entropy_weight must be a finite number >= 0"):
        LFQ(4, entropy_weight=-1.0)
    with pytest.raises(TypeError, match="floating-point"):
        LFQ(2)(torch.tensor([[1, 2]]))


def test_float32_under_lower_precision_input():
    z = torch.tensor([[LN3, -LN3], [LN3, LN3]]).to(torch.bfloat16)
    out = LFQ(2, temperature=4.0)(z)
    assert out.quantized.dtype == torch.bfloat16 and out.aux_loss.dtype == torch.float32
    assert out.indices.tolist() == [1, 3]
