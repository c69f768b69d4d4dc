"""Convolutional blocks of the MaskGIT VQGAN tokenizer (google-research/maskgit ``nets/vqgan_tokenizer.py``).

GroupNorm + swish + 3x3 convolutions without bias; 2x2 average-pool downsampling; nearest-neighbour upsampling
followed by a 3x3 convolution. No attention anywhere, as the paper's tokenizer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int, num_groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``num_groups`` that divides ``channels`` (flax eps 1e-6)."""
    return nn.GroupNorm(math.gcd(channels, num_groups), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, plus a (1x1-projected when widths differ) skip.

    The public MaskGIT code applies its 1x1 shortcut to the block *output* when channels change (so those blocks
    lose their skip); we use the standard form, projecting the block *input*, since we do not load its weights.
    """

    def __init__(self, in_channels: int, out_channels: int, num_groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = group_norm(out_channels, num_groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class Downsample(nn.Module):
    """2x2 average pooling (``conv_downsample=False`` in MaskGIT); odd sizes round up (28 -> 14 -> 7 -> 4)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False)


class Upsample(nn.Module):
    """Nearest-neighbour x2 upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="nearest") if size else F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x)
