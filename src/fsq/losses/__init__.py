"""Tokenizer losses: L2 reconstruction, EfficientNet-Lite0 perceptual (not LPIPS), LPIPS (VGG16 + the lpips
package's heads), non-saturating GAN and R1."""

from fsq.losses.adversarial import (
    adversarial_weight_at,
    discriminator_loss_nonsaturating,
    generator_loss_nonsaturating,
    r1_penalty,
)
from fsq.losses.lpips import LPIPS
from fsq.losses.perceptual import EfficientNetPerceptualLoss, load_efficientnet_lite0
from fsq.losses.reconstruction import l2_loss

__all__ = [
    "LPIPS",
    "EfficientNetPerceptualLoss",
    "adversarial_weight_at",
    "discriminator_loss_nonsaturating",
    "generator_loss_nonsaturating",
    "l2_loss",
    "load_efficientnet_lite0",
    "r1_penalty",
]
