"""Pixel reconstruction loss of the Stage I tokenizer (MaskGIT: plain L2; the FSQ paper sec. 4.1)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def l2_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element: ``mean((reconstruction - target) ** 2)``, a scalar.

    Any shape, e.g. images ``(N, C, H, W)``; both tensors must have the same shape (no broadcasting, which would
    silently average the wrong pairs). The pixel range is the caller's choice ([0, 1] or [-1, 1]); note that the
    same error is 4x larger in [-1, 1] units, which matters when weighting it against other terms.
    """
    if reconstruction.shape != target.shape:
        raise ValueError(
            f"reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    return F.mse_loss(reconstruction, target)
