"""StyleGAN discriminator: shapes at MNIST/CIFAR/ImageNet-like sizes, gradients, width scaling, xavier init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fsq.models.discriminator import BlurPool2d, StyleGANDiscriminator


@pytest.mark.parametrize(
    ("size", "resolutions"),
    [(16, (16, 8, 4)), (28, (28, 14, 7, 4)), (32, (32, 16, 8, 4)), (64, (64, 32, 16, 8, 4))],
)
def test_logits_shape(size, resolutions):
    torch.manual_seed(0)
    disc = StyleGANDiscriminator(in_channels=1, image_size=size, base_channels=8, max_channels=32)
    assert disc.resolutions == resolutions
    logits = disc(torch.rand(3, 1, size, size))
    assert logits.shape == (3,) and logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_maskgit_channel_schedule_at_256():
    disc = StyleGANDiscriminator(image_size=256)
    assert disc.channels == (64, 128, 256, 512, 512, 512, 512)
    assert disc.resolutions == (256, 128, 64, 32, 16, 8, 4)


def test_gradient_flows_to_input_and_every_parameter():
    torch.manual_seed(0)
    disc = StyleGANDiscriminator(in_channels=3, image_size=28, base_channels=8, max_channels=32)
    images = torch.rand(2, 3, 28, 28, requires_grad=True)
    disc(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    for name, p in disc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_parameter_count_grows_with_width():
    counts = [
        sum(p.numel() for p in StyleGANDiscriminator(image_size=32, base_channels=c, max_channels=512).parameters())
        for c in (8, 16, 32)
    ]
    assert counts[0] < counts[1] < counts[2]


def test_xavier_uniform_init_and_zero_bias():
    torch.manual_seed(0)
    disc = StyleGANDiscriminator(image_size=32, base_channels=64, max_channels=128)
    conv = disc.blocks[0].conv2  # 64 -> 128, 3x3: xavier bound sqrt(6/(576+1152)) ~ 0.059 > default 1/sqrt(576)
    bound = math.sqrt(6.0 / (64 * 9 + 128 * 9))
    assert conv.weight.abs().max() <= bound
    assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert conv.weight.abs().max() > 1 / math.sqrt(64 * 9)  # torch's default init could not reach this
    for module in disc.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0


def test_blurpool_same_padding_and_normalised():
    blur = BlurPool2d()
    assert blur(torch.ones(1, 2, 7, 7)).shape == (1, 2, 4, 4)
    assert blur(torch.ones(1, 2, 28, 28)).shape == (1, 2, 14, 14)
    inner = blur(torch.ones(1, 1, 8, 8))[..., 1:-1, 1:-1]  # away from the zero padding a constant is kept
    assert torch.allclose(inner, torch.ones_like(inner))
    assert blur.state_dict() == {}


def test_bad_configuration_and_input():
    with pytest.raises(ValueError, match="min_resolution"):
        StyleGANDiscriminator(image_size=2)
    with pytest.raises(ValueError, match="base_channels"):
        StyleGANDiscriminator(base_channels=1024, max_channels=512)
    with pytest.raises(ValueError, match="image_size"):
        StyleGANDiscriminator(image_size=0)
    disc = StyleGANDiscriminator(in_channels=1, image_size=16, base_channels=8, max_channels=16)
    with pytest.raises(ValueError, match=r"\(N, 1, 16, 16\)"):
        disc(torch.rand(2, 1, 28, 28))
