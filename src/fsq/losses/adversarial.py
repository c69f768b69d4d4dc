"""Non-saturating GAN losses, the R1 gradient penalty and the adversarial-weight schedule (MaskGIT's recipe).

MaskGIT (google-research/maskgit ``losses.py``; the FSQ paper sec. 4.1): generator
``0.1 * generator_loss_nonsaturating``; discriminator ``discriminator_loss_nonsaturating + 10 * r1_penalty``, one D
step per G step. Logits are raw (pre-sigmoid)
discriminator outputs of shape ``(N,)`` (any shape works: losses average over every element).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean(softplus(-D(fake)))`` = ``-mean(log sigmoid(D(fake)))``: the generator wants fakes judged real."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss_nonsaturating(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean(softplus(-D(real))) + mean(softplus(D(fake)))``: binary cross-entropy with real = 1, fake = 0.

    Pass ``fake_logits`` computed on detached fakes so the discriminator step does not reach the generator.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty: batch mean of ``||d D(x) / d x||^2`` on real images, a scalar (Mescheder et al. 2018).

    Call ``real_images.requires_grad_(True)`` before the discriminator forward that produced ``real_logits``.
    The gradient of ``sum(real_logits)`` gives each sample's own input gradient (the discriminator must not mix
    samples: no batch norm). The graph is kept (``create_graph=True``) so the penalty trains the discriminator.

    Returns the unweighted penalty: the caller multiplies by the R1 weight. MaskGIT uses 10 on exactly this
    quantity; StyleGAN-family code writes ``gamma / 2 * penalty``, so their ``gamma = 10`` is a weight of 5 here.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs real_images.requires_grad_(True) set before the discriminator forward")
    if real_logits.grad_fn is None:
        raise ValueError("real_logits carry no graph: compute them from real_images with gradients enabled")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    grad = grad.to(torch.promote_types(grad.dtype, torch.float32))  # half / bfloat16 -> float32, float64 kept
    return grad.pow(2).flatten(1).sum(1).mean()


def adversarial_weight_at(step: int, start_step: int, weight: float) -> float:
    """``weight`` once ``step >= start_step``, else 0.0 (the GAN is off during the first steps of training)."""
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    return float(weight) if step >= start_step else 0.0


# ----------------------------------------------------------------------- audio codecs: least squares + feature matching
# A discriminator of audio codecs gives one (logits, features) pair per sub-discriminator
# (:class:`fsq.models.audio_discriminator.AudioDiscriminator`). HiFi-GAN, EnCodec and DAC train them with the least
# squares GAN loss (Mao et al., 2017) and add feature matching (Larsen et al., 2016; HiFi-GAN sec. 2.3) to the
# generator's loss.


def discriminator_loss_least_squares(real: list[tuple[Any, Any]], fake: list[tuple[Any, Any]]) -> torch.Tensor:
    """``sum_k mean((D_k(real) - 1)^2) + mean(D_k(fake)^2)`` over the sub-discriminators ``k`` (HiFi-GAN's
    discriminator loss); pass judgements of detached fakes."""
    _check_judgements(real, fake)
    total = torch.zeros((), device=real[0][0].device)
    for (r, _), (f, _) in zip(real, fake):
        total = total + (r.float() - 1).square().mean() + f.float().square().mean()
    return total


def generator_loss_least_squares(fake: list[tuple[Any, Any]]) -> torch.Tensor:
    """``sum_k mean((D_k(fake) - 1)^2)``: the generator wants every sub-discriminator to call its output real."""
    if not fake:
        raise ValueError("no sub-discriminator judgements given")
    return sum(((f.float() - 1).square().mean() for f, _ in fake), torch.zeros((), device=fake[0][0].device))


def feature_matching_loss(real: list[tuple[Any, Any]], fake: list[tuple[Any, Any]]) -> torch.Tensor:
    """``mean |F(fake) - F(real)|`` averaged over every layer of every sub-discriminator, the real features
    detached (HiFi-GAN sums the layers' means: its weight 2 on that sum is ``2 x layers`` here)."""
    _check_judgements(real, fake)
    terms = [
        (ff.float() - fr.detach().float()).abs().mean()
        for (_, fr_all), (_, ff_all) in zip(real, fake)
        for fr, ff in zip(fr_all, ff_all, strict=True)
    ]
    return torch.stack(terms).mean()


def _check_judgements(real: list[tuple[Any, Any]], fake: list[tuple[Any, Any]]) -> None:
    if not real or len(real) != len(fake):
        raise ValueError(
            f"real and fake need the same, non-zero number of sub-discriminators: {len(real)}, {len(fake)}"
        )
