"""Colorization as a UViM task: the colour image from its luminance.

As in UViM's ImageNet colorization (big_vision ``configs/proj/uvim/vqvae_coco_colorization.py``), the oracle
autoencodes the RGB target itself and the model sees only the grey image. Luminance is ITU-R BT.601 luma
``Y = 0.299 R + 0.587 G + 0.114 B`` of the gamma-encoded [0, 1] values (what ``fsq.data`` uses for grey).

    oracle input    the RGB target in [0, 1], (B, 3, H, W)
    loss            ``loss="mse"`` (default; UViM's, which computes it on [-1, 1] values: 4 x this, same minimum)
                    or ``loss="l1"``, per pixel and channel against the RGB target in [0, 1]
    decode          the output clamped to [0, 1] (so the round trip is exact)
    metrics         ``psnr``: mean over images of the per-image PSNR in dB (data range 1), each capped at
                    ``PSNR_CAP_DB`` so a perfect image stays finite; ``chroma_mae``: mean absolute error of the
                    BT.601 chroma channels Cb and Cr (in [0, 1] units, averaged over both and all pixels), which
                    ignores luminance (given by the input) and measures the colours alone. FID (the paper's metric)
                    needs the Inception network: the caller adds it.
    baseline        the grey input, luminance copied to R, G and B
    context         the luminance, (B, 1, H, W)
    visualize       the RGB prediction
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fsq.metrics.image import psnr
from fsq.tasks.base import Task

LOSSES = ("mse", "l1")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
CHROMA_WEIGHTS = ((-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))  # Cb, Cr (BT.601, before + 0.5)
PSNR_CAP_DB = 100.0


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) BT.601 luma of (B, 3, H, W) RGB."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) BT.601 chroma (Cb, Cr) of (B, 3, H, W) RGB in [0, 1], each in [0, 1]."""
    weights = torch.tensor(CHROMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("bchw,kc->bkhw", rgb, weights) + 0.5


class ColorizationTask(Task):
    """RGB colours from the luminance of a photo.

    Args:
        loss: ``"mse"`` or ``"l1"`` on [0, 1] RGB.
    """

    name = "colorization"
    output_channels = 3
    context_channels = 1

    def __init__(self, loss: str = "mse"):
        if loss not in LOSSES:
            raise ValueError(f"colorization task: loss must be one of {LOSSES}, got {loss!r}")
        self.loss_type = loss
        self.options = {"loss": loss}

    def _rgb(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.field(batch, "image", channels=3)

    def encode_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._rgb(batch).float().clone()

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check_output(out, batch)
        target = self._rgb(batch).float()
        return F.mse_loss(out.float(), target) if self.loss_type == "mse" else F.l1_loss(out.float(), target)

    def decode_prediction(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"rgb": self.check_output(out).clamp(0, 1)}

    def _pred_rgb(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        rgb, image = pred["rgb"], self._rgb(batch)
        if rgb.shape != image.shape:
            raise ValueError(f"colorization task: pred['rgb'] {tuple(rgb.shape)} vs images {tuple(image.shape)}")
        return rgb

    def metrics(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, float]:
        rgb, target = self._pred_rgb(pred, batch).double(), self._rgb(batch).double()
        return {
            "psnr": psnr(rgb, target).clamp(max=PSNR_CAP_DB).mean().item(),
            "chroma_mae": (chroma(rgb) - chroma(target)).abs().mean().item(),
            "num_images": rgb.shape[0],
        }

    def baseline(self, batch: dict[str, torch.Tensor], train_batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"rgb": self.context(batch).expand(-1, 3, -1, -1).clone()}

    def context(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The luminance, (B, 1, H, W) float in [0, 1]."""
        return luminance(self._rgb(batch)).clamp(0, 1)

    def visualize(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (self._pred_rgb(pred, batch).float().clamp(0, 1) * 255).round().to(torch.uint8)
