"""Audio GAN parts: the multi-period and STFT discriminators' shapes and gradients, the least-squares and
feature-matching losses on hand-made judgements, and determinism without DDP."""

from __future__ import annotations

import pytest
import torch

from fsq.losses.adversarial import (
    discriminator_loss_least_squares,
    feature_matching_loss,
    generator_loss_least_squares,
)
from fsq.models.audio_discriminator import AudioDiscriminator, PeriodDiscriminator, STFTDiscriminator


def judgement(value: float, features: list[float]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    return torch.full((2, 1, 3, 4), value), [torch.full((2, 5), f) for f in features]


def test_least_squares_losses_by_hand() -> None:
    real = [judgement(1.0, [0.0]), judgement(0.5, [0.0])]
    fake = [judgement(0.0, [0.0]), judgement(2.0, [0.0])]
    # D: (1-1)^2 + 0^2 + (0.5-1)^2 + 2^2 = 4.25; G: (0-1)^2 + (2-1)^2 = 2
    assert float(discriminator_loss_least_squares(real, fake)) == pytest.approx(4.25)
    assert float(generator_loss_least_squares(fake)) == pytest.approx(2.0)


def test_feature_matching_averages_every_layer_of_every_discriminator() -> None:
    real = [judgement(0, [1.0, 2.0]), judgement(0, [0.0])]
    fake = [judgement(0, [1.5, 0.0]), judgement(0, [-1.0])]
    assert float(feature_matching_loss(real, fake)) == pytest.approx((0.5 + 2.0 + 1.0) / 3)
    assert float(feature_matching_loss(real, real)) == 0.0
    with pytest.raises(ValueError, match="same, non-zero number"):
        feature_matching_loss(real, fake[:1])


def test_feature_matching_trains_the_generator_only() -> None:
    real_features = torch.ones(2, 3, requires_grad=True)
    fake_features = torch.zeros(2, 3, requires_grad=True)
    feature_matching_loss([(torch.zeros(1), [real_features])], [(torch.zeros(1), [fake_features])]).backward()
    assert real_features.grad is None and torch.allclose(fake_features.grad, torch.full((2, 3), -1 / 6))


def test_discriminator_shapes() -> None:
    period = PeriodDiscriminator(3, channels=4)
    logits, features = period(torch.randn(2, 1, 1000))  # 1000 -> padded to 1002 -> (334, 3)
    assert logits.shape[:2] == (2, 1) and logits.shape[-1] == 3 and len(features) == 5
    stft = STFTDiscriminator(256, channels=4)
    logits, features = stft(torch.randn(2, 1, 1000))
    assert logits.shape[:3] == (2, 1, 1000 // 64 + 1) and len(features) == 6
    both = AudioDiscriminator((2, 3), (128, 256), channels=4)
    assert len(both(torch.randn(2, 1, 1000))) == 4
    with pytest.raises(ValueError, match="mono waveforms"):
        both(torch.randn(2, 2, 1000))
    with pytest.raises(ValueError, match="at least one"):
        AudioDiscriminator((), ())


def test_every_discriminator_parameter_learns_and_the_input_gets_a_gradient() -> None:
    torch.manual_seed(0)
    disc = AudioDiscriminator((2, 5), (128,), channels=4)
    real, fake = torch.randn(2, 1, 800), torch.randn(2, 1, 800, requires_grad=True)
    discriminator_loss_least_squares(disc(real), disc(fake.detach())).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    disc.zero_grad()
    generator_loss_least_squares(disc(fake)).backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_deterministic_without_ddp() -> None:
    outputs = []
    for _ in range(2):
        torch.manual_seed(3)
        disc = AudioDiscriminator((2, 3), (128,), channels=4)
        x = torch.randn(2, 1, 500)
        outputs.append(float(generator_loss_least_squares(disc(x)).detach()))
    assert outputs[0] == outputs[1]
