"""Lazy R1 (``loss.r1_every``, StyleGAN2's lazy regularization) in the tokenizer's discriminator step: the penalty
only on every ``r1_every``-th step, weighted ``r1_every`` x; every other step is the plain GAN loss."""

from __future__ import annotations

import pytest
import torch

from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.losses import discriminator_loss_nonsaturating, r1_penalty
from fsq.models.discriminator import StyleGANDiscriminator
from fsq.stages.tokenizer import discriminator_loss


def _setup() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    network = StyleGANDiscriminator(in_channels=3, image_size=16, base_channels=8, max_channels=16)
    passed = {"real": torch.rand(4, 3, 16, 16), "fake": torch.rand(4, 3, 16, 16)}
    return network, passed


def _grads(network: torch.nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return [g.clone() for g in torch.autograd.grad(loss, list(network.parameters()))]


def _reference(network: torch.nn.Module, passed: dict[str, torch.Tensor], r1_scale: float) -> torch.Tensor:
    """The discriminator's loss written out: non-saturating loss + ``r1_scale`` x the R1 penalty on the reals."""
    real = passed["real"].clone().requires_grad_(True)
    logits = network(real)
    loss = discriminator_loss_nonsaturating(logits, network(passed["fake"]))
    return loss + r1_scale * r1_penalty(real, logits) if r1_scale else loss


def test_every_step_is_the_plain_penalty():
    network, passed = _setup()
    out = discriminator_loss(network, passed, 10.0, step=7, r1_every=1)
    expected = _reference(network, passed, 10.0)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    for a, b in zip(_grads(network, out.loss), _grads(network, expected)):
        torch.testing.assert_close(a, b)


def test_lazy_steps_scale_the_penalty_and_skip_it_between():
    network, passed = _setup()
    penalty = discriminator_loss(network, passed, 10.0, step=0, r1_every=1).logged["r1"].item()
    logged = []
    for step in range(8):
        out = discriminator_loss(network, passed, 10.0, step=step, r1_every=4)
        lazy = step % 4 == 0
        expected = _reference(network, passed, 40.0 if lazy else 0.0)
        assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6), step
        for a, b in zip(_grads(network, out.loss), _grads(network, expected)):
            torch.testing.assert_close(a, b)
        logged.append(out.logged["r1"].item())
    assert logged[1:4] == [0.0, 0.0, 0.0] and penalty > 0
    assert sum(logged) / len(logged) == pytest.approx(penalty, rel=1e-6)  # the window mean estimates the penalty


def test_r1_every_is_a_positive_step_count():
    network, passed = _setup()
    with pytest.raises(ValueError, match="r1_every must be a positive"):
        discriminator_loss(network, passed, 10.0, step=0, r1_every=0)
    with pytest.raises(ConfigError, match="r1_every"):
        load_config(TokenizerExperiment, [], ["loss.r1_every=0"])
    assert load_config(TokenizerExperiment, [], ["loss.r1_every=16"]).loss.r1_every == 16
