"""ResidualFSQ: stage 0 equals FSQ, per-stage error bound, truncated decoding, layouts, gradient."""

from __future__ import annotations

import pytest
import torch

from fsq import FSQ
from fsq.quantizers.residual import ResidualFSQ


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
def test_one_stage_equals_fsq(variant):
    z = torch.randn(500, 4) * 2
    residual = ResidualFSQ([8, 5, 5, 5], 1, variant=variant)(z)
    single = FSQ([8, 5, 5, 5], variant=variant)(z)
    assert torch.equal(residual.quantized, single.quantized)
    assert torch.equal(residual.indices[..., 0], single.indices)
    assert residual.indices.shape == (500, 1)


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
def test_error_shrinks_by_documented_scale_per_stage(variant):
    levels = [8, 5, 7]
    rfsq = ResidualFSQ(levels, 4, variant=variant)
    z = torch.randn(20000, 3) * 1.5
    out = rfsq(z)
    target = rfsq.stage0.continuous_codes(z)
    first_half = [1 / (level - 1) if variant == "symmetric" else 1 / (2 * (level // 2)) for level in levels]
    for k in range(1, 5):
        error = (rfsq.indices_to_codes(out.indices[..., :k]) - target).abs().amax(0)
        bound = torch.tensor([h / (level - 1) ** (k - 1) for h, level in zip(first_half, levels)])
        assert (error <= bound * (1 + 1e-3) + 1e-6).all(), (k, error, bound)
        if k > 1:  # and the bound is nearly attained: the scale is not looser than documented
            assert (error > bound * 0.9).all()


def test_full_decode_is_bit_exact_and_indices_in_range():
    rfsq = ResidualFSQ([8, 5, 5, 5], 3)
    out = rfsq(torch.randn(64, 4))
    assert torch.equal(rfsq.indices_to_codes(out.indices), out.quantized)
    assert out.indices.dtype == torch.int64
    assert (out.indices >= 0).all() and (out.indices < 1000).all()


def test_channel_first_same_index_layout():
    first = ResidualFSQ([8, 5, 5, 5], 3, channel_axis=1)
    last = ResidualFSQ([8, 5, 5, 5], 3)
    z = torch.randn(2, 4, 5, 6)
    out_first, out_last = first(z), last(z.permute(0, 2, 3, 1))
    assert out_first.indices.shape == out_last.indices.shape == (2, 5, 6, 3)
    assert torch.equal(out_first.indices, out_last.indices)
    assert torch.equal(out_first.quantized, out_last.quantized.permute(0, 3, 1, 2))
    # channel-first decoding of its own (and truncated) indices works
    assert torch.equal(first.indices_to_codes(out_first.indices), out_first.quantized)
    assert first.indices_to_codes(out_first.indices[..., :2]).shape == (2, 4, 5, 6)


def test_gradient_is_stage_zero_straight_through():
    rfsq = ResidualFSQ([8, 5, 5, 5], 3)
    z = torch.randn(32, 4, requires_grad=True)
    rfsq(z).quantized.sum().backward()
    z2 = z.detach().clone().requires_grad_()
    FSQ([8, 5, 5, 5])(z2).quantized.sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)


def test_projection_and_errors():
    rfsq = ResidualFSQ([5, 5, 5], 2, dim=16)
    z = torch.randn(3, 7, 16)
    out = rfsq(z)
    assert out.quantized.shape == z.shape and out.indices.shape == (3, 7, 2)
    torch.testing.assert_close(rfsq.indices_to_quantized(out.indices), out.quantized)
    with pytest.raises(ValueError, match="num_stages"):
        ResidualFSQ([5, 5], 0)
    with pytest.raises(ValueError, match="stage axis of size 1..2"):
        rfsq.indices_to_codes(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="needs 16 channels"):
        rfsq(torch.randn(3, 8))
