"""``unquantized`` of the residual quantizers: the latent their stages approximate (the ceiling of every depth)."""

from __future__ import annotations

import pytest
import torch

from fsq.quantizers.residual import ResidualFSQ
from fsq.quantizers.residual_vq import ResidualVQ


@pytest.mark.parametrize("variant", ["paper", "symmetric"])
def test_residual_fsq_approaches_its_unquantized_latent(variant):
    """Stage 0's continuous code; deeper stacks get closer to it (8 stages: within h_1 / (L - 1)^7)."""
    z = torch.randn(4000, 3) * 1.5
    levels = [8, 5, 7]
    ceiling = ResidualFSQ(levels, 2, variant=variant).unquantized(z)
    torch.testing.assert_close(ceiling, ResidualFSQ(levels, 1, variant=variant).stage0.continuous_codes(z))
    errors = [(ResidualFSQ(levels, s, variant=variant)(z).quantized - ceiling).abs().max().item() for s in (1, 4, 8)]
    first_half = [1 / (level - 1) if variant == "symmetric" else 1 / (2 * (level // 2)) for level in levels]
    bound = max(h / (level - 1) ** 7 for h, level in zip(first_half, levels))
    assert errors[0] > errors[1] > errors[2] and errors[2] <= bound * (1 + 1e-3) + 1e-7, (errors, bound)


def test_residual_fsq_unquantized_layouts_projection_and_errors():
    rfsq = ResidualFSQ([5, 5, 5], 6, dim=16, channel_axis=1)
    z = torch.randn(2, 16, 9)
    ceiling = rfsq.unquantized(z)
    assert ceiling.shape == z.shape
    torch.testing.assert_close(rfsq(z).quantized, ceiling, atol=2e-3, rtol=0)  # 6 stages, through project_out
    with pytest.raises(ValueError, match="needs 16 channels"):
        rfsq.unquantized(torch.randn(2, 8, 9))
    with pytest.raises(TypeError, match="floating-point"):
        rfsq.unquantized(torch.zeros(2, 16, 9, dtype=torch.long))


def test_residual_vq_unquantized_is_its_input_and_stages_move_towards_it():
    torch.manual_seed(0)
    rvq = ResidualVQ(64, 4, 3, channel_axis=1)
    z = torch.randn(8, 4, 50)
    assert torch.equal(rvq.unquantized(z), z)
    out = rvq(z)
    errors = [(rvq.indices_to_codes(out.indices[..., :k]) - z).square().mean().item() for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2], errors  # each stage takes what is left of z
    with pytest.raises(ValueError, match="4"):
        rvq.unquantized(torch.randn(8, 5, 50))
