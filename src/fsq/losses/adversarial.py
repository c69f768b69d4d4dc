"""Non-saturating GAN losses, the R1 gradient penalty and the adversarial-weight schedule (MaskGIT's recipe).

MaskGIT (google-research/maskgit ``losses.py``; the FSQ paper sec. 4.1): generator
``0.1 * generator_loss_nonsaturating``; discriminator ``discriminator_loss_nonsaturating + 10 * r1_penalty``, one D
step per G step. Logits are raw (pre-sigmoid)
discriminator outputs of shape ``(N,)`` (any shape works: losses average over every element).
"""

from __future__ import annotations

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
