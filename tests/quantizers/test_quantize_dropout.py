"""Quantize dropout of the residual quantizers (residual FSQ, residual VQ): in training each dropped sample's output
is exactly the decoding of a prefix of its indices; in evaluation nothing is dropped; every depth decodes."""

from __future__ import annotations

import pytest
import torch

from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.quantizers.residual import ResidualFSQ
from fsq.quantizers.residual_vq import ResidualVQ


def build(kind: str, dropout: float, stages: int = 4) -> torch.nn.Module:
    if kind == "residual_fsq":
        return ResidualFSQ([8, 5, 5], stages, channel_axis=1, quantize_dropout=dropout)
    return ResidualVQ(16, 3, stages, channel_axis=1, quantize_dropout=dropout)


def depths_of(quantizer: torch.nn.Module, z: torch.Tensor) -> list[int]:
    """The depth each sample of a training forward kept: the prefix of its indices that decodes to its output."""
    out = quantizer(z)
    found = []
    for b in range(z.shape[0]):
        matches = [
            k
            for k in range(1, quantizer.num_stages + 1)
            if torch.allclose(
                quantizer.indices_to_quantized(out.indices[b : b + 1, ..., :k]), out.quantized[b : b + 1], atol=1e-6
            )
        ]
        assert matches, f"sample {b}: its output is no prefix's decoding"
        found.append(min(matches))
    return found


@pytest.mark.parametrize("kind", ["residual_fsq", "residual_vq"])
def test_dropped_samples_decode_a_prefix_and_depths_vary(kind: str) -> None:
    torch.manual_seed(0)
    quantizer = build(kind, 1.0).train()
    depths = depths_of(quantizer, torch.randn(64, 3, 5))
    assert set(depths) == {1, 2, 3, 4}  # uniform over 1..num_stages: all four appear in 64 draws


@pytest.mark.parametrize("kind", ["residual_fsq", "residual_vq"])
def test_no_dropout_in_evaluation_or_at_zero(kind: str) -> None:
    torch.manual_seed(0)
    z = torch.randn(32, 3, 5)
    assert set(depths_of(build(kind, 1.0).eval(), z)) == {4}
    torch.manual_seed(0)
    assert set(depths_of(build(kind, 0.0).train(), z)) == {4}


def test_dropout_is_a_pure_function_of_the_torch_seed() -> None:
    z = torch.randn(16, 3, 5)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(build("residual_fsq", 0.5).train()(z).quantized)
    assert torch.equal(outs[0], outs[1])


def test_without_dropout_residual_fsq_is_unchanged() -> None:
    """quantize_dropout=0 (the default) gives the residual FSQ of before, bit for bit, in training mode too."""
    z = torch.randn(32, 3, 5)
    a = ResidualFSQ([8, 5, 5], 3, channel_axis=1).train()(z)
    b = ResidualFSQ([8, 5, 5], 3, channel_axis=1, quantize_dropout=0.0).train()(z)
    assert torch.equal(a.quantized, b.quantized) and torch.equal(a.indices, b.indices)


@pytest.mark.parametrize("kind", ["residual_fsq", "residual_vq"])
def test_each_depth_refines(kind: str) -> None:
    torch.manual_seed(0)
    quantizer = build(kind, 0.0, stages=3)
    z = torch.randn(128, 3, 4) * 0.5
    if kind == "residual_vq":  # a codebook fitted to the data: a few gradient steps on the aux loss
        optimizer = torch.optim.Adam(quantizer.parameters(), lr=0.05)
        for _ in range(20):
            optimizer.zero_grad()
            quantizer(z).aux_loss.backward()
            optimizer.step()
    quantizer.eval()
    torch.set_grad_enabled(False)
    try:
        indices = quantizer(z).indices
        decoded = [quantizer.indices_to_quantized(indices[..., :k]) for k in (1, 2, 3)]
    finally:
        torch.set_grad_enabled(True)
    target = z.tanh() if kind == "residual_fsq" else z
    errors = [float((d - target).square().mean()) for d in decoded]
    assert errors[0] > errors[1] > errors[2]


def test_residual_vq_gradient_is_one_straight_through_estimate() -> None:
    z = torch.randn(4, 3, 5, requires_grad=True)
    ResidualVQ(16, 3, 3, channel_axis=1)(z).quantized.sum().backward()
    # the quantized sum's gradient reaches z once (not once per stage); the aux loss is not in this backward
    assert torch.equal(z.grad, torch.ones_like(z))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["quantizer.kind=residual_fsq", "quantizer.quantize_dropout=1.5"], "quantize_dropout"),
        (["quantizer.kind=residual_vq", "quantizer.num_stages=0"], "num_stages"),
    ],
)
def test_bad_settings_are_named(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(TokenizerExperiment, [], overrides)
    with pytest.raises(ValueError, match="quantize_dropout"):
        ResidualVQ(4, 2, 2, quantize_dropout=-0.1)
    with pytest.raises(ValueError, match="quantize_dropout"):
        ResidualFSQ([5, 5], 2, quantize_dropout=1.5)
