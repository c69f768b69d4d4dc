"""Non-saturating GAN losses (hand values), R1 on a linear discriminator (exact), adversarial-weight schedule."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.losses import (
    adversarial_weight_at,
    discriminator_loss_nonsaturating,
    generator_loss_nonsaturating,
    r1_penalty,
)


def test_softplus_losses_hand_values():
    zeros = torch.zeros(5)
    assert generator_loss_nonsaturating(zeros).item() == pytest.approx(math.log(2))
    assert discriminator_loss_nonsaturating(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    # softplus(-2) = log(1 + e^-2), softplus(2) = log(1 + e^2)
    fake = torch.tensor([2.0, -2.0])
    assert generator_loss_nonsaturating(fake).item() == pytest.approx(
        (math.log1p(math.exp(-2)) + math.log1p(math.exp(2))) / 2
    )
    real = torch.tensor([3.0])
    expected = math.log1p(math.exp(-3)) + (math.log1p(math.exp(2)) + math.log1p(math.exp(-2))) / 2
    assert discriminator_loss_nonsaturating(real, fake).item() == pytest.approx(expected)


def test_confident_discriminator_has_small_loss():
    assert discriminator_loss_nonsaturating(torch.full((4,), 20.0), torch.full((4,), -20.0)).item() < 1e-8
    assert generator_loss_nonsaturating(torch.full((4,), -20.0)).item() == pytest.approx(20.0, rel=1e-6)


def test_r1_linear_discriminator_is_squared_weight_norm():
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4, dtype=torch.float64, requires_grad=True)
    images = torch.rand(6, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    logits = images.flatten(1) @ w  # D(x) = <w, x>: input gradient is w for every sample
    penalty = r1_penalty(images, logits)
    assert penalty.item() == pytest.approx(w.detach().pow(2).sum().item(), rel=1e-12)
    (grad_w,) = torch.autograd.grad(penalty, w)  # create_graph=True lets the penalty train D
    assert torch.isfinite(grad_w).all()
    assert torch.allclose(grad_w, 2 * w.detach())


def test_r1_requires_input_gradient():
    images = torch.rand(2, 3)
    w = torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(images, images @ w)


def test_adversarial_weight_schedule():
    assert adversarial_weight_at(0, 100, 0.1) == 0.0
    assert adversarial_weight_at(99, 100, 0.1) == 0.0
    assert adversarial_weight_at(100, 100, 0.1) == 0.1
    assert adversarial_weight_at(10_000, 100, 0.1) == 0.1
    assert adversarial_weight_at(0, 0, 0.5) == 0.5
    with pytest.raises(ValueError, match="start_step"):
        adversarial_weight_at(0, -1, 0.1)
