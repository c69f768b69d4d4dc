"""Convolutional blocks of the MaskGIT VQGAN tokenizer (google-research/maskgit ``nets/vqgan_tokenizer.py``), in 1, 2
or 3 dimensions.

GroupNorm + swish + 3x3 convolutions without bias; 2x2 average-pool downsampling; nearest-neighbour upsampling
followed by a 3x3 convolution. No attention anywhere, as the paper's tokenizer.

``dims`` picks Conv1d (audio ``(B, C, T)``), Conv2d (images ``(B, C, H, W)``, the default: exactly the modules of the
2-D tokenizer) or Conv3d (video ``(B, C, T, H, W)``). Down- and upsampling take a factor per axis. ``causal=True``
makes the first axis time, as the causal video tokenizers of MAGVIT-v2 (Yu et al., 2023) and Cosmos (NVIDIA, 2025):
convolutions pad time on the left only (the first frame repeated), GroupNorm normalises each frame on its own,
and time downsampling keeps the first frame alone (``1 + f*k`` frames -> ``1 + k``), so that output frame ``t``
depends on input frames ``<= t`` only and the first frame is encoded on its own (an image is a one-frame video).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CONVS: dict[int, type[nn.Conv1d] | type[nn.Conv2d] | type[nn.Conv3d]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def check_dims(dims: int) -> int:
    """``dims`` itself when it is 1, 2 or 3; else a ValueError."""
    if isinstance(dims, bool) or dims not in (1, 2, 3):
        raise ValueError(f"dims must be 1 (audio, Conv1d), 2 (images, Conv2d) or 3 (video, Conv3d), got {dims!r}")
    return dims


def _causal_pad(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """``x`` (B, C, T, ...) with ``kernel - 1`` copies of its first frame prepended along T."""
    if kernel <= 1:
        return x
    return F.pad(x, [0, 0] * (x.ndim - 3) + [kernel - 1, 0], mode="replicate")


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left in time only: output sample ``t`` sees inputs ``<= t``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_causal_pad(x, self.kernel_size[0]))


class CausalConv2d(nn.Conv2d):
    """Conv2d whose first axis is time, padded on the left only (the other axis padded on both sides)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_causal_pad(x, self.kernel_size[0]))


class CausalConv3d(nn.Conv3d):
    """Conv3d over (T, H, W), padded on the left in time only (H and W on both sides)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_causal_pad(x, self.kernel_size[0]))


_CAUSAL_CONVS: dict[int, type[nn.Conv1d] | type[nn.Conv2d] | type[nn.Conv3d]] = {
    1: CausalConv1d,
    2: CausalConv2d,
    3: CausalConv3d,
}


def conv(
    dims: int, in_channels: int, out_channels: int, kernel: int, *, bias: bool = True, causal: bool = False
) -> nn.Module:
    """A ``kernel``-wide convolution over ``dims`` axes keeping their sizes ("same" padding; causal in time)."""
    check_dims(dims)
    if kernel == 1:
        return CONVS[dims](in_channels, out_channels, 1, bias=bias)
    if causal:
        padding: Any = (0,) + (kernel // 2,) * (dims - 1)  # none in time: the forward pads it on the left
        return _CAUSAL_CONVS[dims](in_channels, out_channels, kernel, padding=padding, bias=bias)
    return CONVS[dims](in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)


class CausalGroupNorm(nn.GroupNorm):
    """GroupNorm of each time step on its own (time folded into the batch): no statistic crosses frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.movedim(2, 1)  # (B, T, C, ...)
        flat = frames.reshape(-1, *frames.shape[2:])
        return super().forward(flat).reshape(frames.shape).movedim(1, 2)


def group_norm(channels: int, num_groups: int, causal: bool = False) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``num_groups`` that divides ``channels`` (flax eps 1e-6); with
    ``causal`` each frame (time step) is normalised on its own."""
    cls = CausalGroupNorm if causal else nn.GroupNorm
    return cls(math.gcd(channels, num_groups), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, plus a (1x1-projected when widths differ) skip.

    The public MaskGIT code applies its 1x1 shortcut to the block *output* when channels change (so those blocks
    lose their skip); we use the standard form, projecting the block *input*, since we do not load its weights.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_groups: int, dims: int = 2, causal: bool = False
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, num_groups, causal)
        self.conv1 = conv(dims, in_channels, out_channels, 3, bias=False, causal=causal)
        self.norm2 = group_norm(out_channels, num_groups, causal)
        self.conv2 = conv(dims, out_channels, out_channels, 3, bias=False, causal=causal)
        self.skip = conv(dims, in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


def downsampled(size: int, factor: int, causal: bool = False) -> int:
    """An axis' length after :class:`Downsample` by ``factor``: ``ceil(n / f)``; causal (time, the first frame
    kept alone): ``1 + ceil((n - 1) / f)``."""
    if causal:
        return 1 + -(-(size - 1) // factor)
    return -(-size // factor)


def _factors(factors: Sequence[int] | None, dims: int) -> tuple[int, ...]:
    check_dims(dims)
    out = (2,) * dims if factors is None else tuple(int(f) for f in factors)
    if len(out) != dims or any(f < 1 for f in out):
        raise ValueError(f"downsampling factors must be {dims} positive integers (one per axis), got {factors!r}")
    return out


class Downsample(nn.Module):
    """Average pooling by ``factors`` per axis (2 on each by default: ``conv_downsample=False`` in MaskGIT); odd
    sizes round up (28 -> 14 -> 7 -> 4). ``causal``: the first frame is pooled on its own (space only), the
    others in groups of ``factors[0]`` frames."""

    def __init__(self, dims: int = 2, factors: Sequence[int] | None = None, causal: bool = False) -> None:
        super().__init__()
        self.dims, self.factors, self.causal = dims, _factors(factors, dims), causal

    def _pool(self, x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
        if all(f == 1 for f in factors):
            return x
        kernel = factors[0] if self.dims == 1 else factors
        return _POOLS[self.dims](x, kernel, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.causal or self.factors[0] == 1:
            return self._pool(x, self.factors)
        first = self._pool(x[:, :, :1], (1,) + self.factors[1:])
        if x.shape[2] == 1:
            return first
        return torch.cat([first, self._pool(x[:, :, 1:], self.factors)], dim=2)

    def extra_repr(self) -> str:
        return f"factors={self.factors}" + (", causal=True" if self.causal else "") if self.dims != 2 else ""


class Upsample(nn.Module):
    """Nearest-neighbour upsampling (to ``size``, or x2 on each axis), then a 3x3 convolution. ``causal``: the first
    frame is upsampled in space only and the others fill the remaining ``size[0] - 1`` frames."""

    def __init__(self, channels: int, dims: int = 2, causal: bool = False) -> None:
        super().__init__()
        self.conv = conv(dims, channels, channels, 3, causal=causal)
        self.causal = causal

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        if self.causal:
            if size is None:
                raise ValueError("causal upsampling needs the output size")
            first = F.interpolate(x[:, :, :1], size=(1, *size[1:]), mode="nearest")
            if size[0] > 1:
                rest = F.interpolate(x[:, :, 1:], size=(size[0] - 1, *size[1:]), mode="nearest")
                first = torch.cat([first, rest], dim=2)
            return self.conv(first)
        x = (
            F.interpolate(x, size=tuple(size), mode="nearest")
            if size
            else F.interpolate(x, scale_factor=2, mode="nearest")
        )
        return self.conv(x)
