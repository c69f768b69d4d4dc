"""Convolutional blocks of the MaskGIT VQGAN tokenizer (google-research/maskgit ``nets/vqgan_tokenizer.py``), in 1, 2
or 3 dimensions.

GroupNorm + swish + 3x3 convolutions without bias; 2x2 average-pool downsampling; nearest-neighbour upsampling
followed by a 3x3 convolution. No attention anywhere, as the paper's tokenizer.

``dims`` picks Conv1d (audio ``(B, C, T)``), Conv2d (images ``(B, C, H, W)``, the default: exactly the modules of the
2-D tokenizer) or Conv3d (video ``(B, C, T, H, W)``). Down- and upsampling take a factor per axis. ``causal=True``
makes the first axis time, as the causal video tokenizers of MAGVIT-v2 (Yu et al., 2023) and Cosmos (NVIDIA, 2025):
convolutions pad time on the left only (``time_padding``: the first frame repeated, or zeros), GroupNorm
normalises each frame on its own, and time downsampling keeps the first frame alone (``1 + f*k`` frames ->
``1 + k``), so that output frame ``t`` depends on input frames ``<= t`` only and the first frame is encoded on its
own (an image is a one-frame video).

``factorized=True`` (3-D only) replaces each k x k x k convolution by a (2+1)-D pair, as R(2+1)D (Tran et al., 2018)
and the factorized video tokenizers: a 1 x k x k convolution over space, then a k x 1 x 1 convolution over time
(causal like the full one). Its cost per voxel is (k^2 + k) C^2 against k^3 C^2, so a model twice as wide costs
about what the full 3-D one does.
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


TIME_PADDINGS = ("replicate", "zeros")


def check_time_padding(mode: str) -> str:
    """``mode`` itself when it is a known causal time padding; else a ValueError naming the choices."""
    if mode not in TIME_PADDINGS:
        raise ValueError(f"time_padding must be one of {TIME_PADDINGS}, got {mode!r}")
    return mode


def _causal_pad(x: torch.Tensor, kernel: int, mode: str = "replicate") -> torch.Tensor:
    """``x`` (B, C, T, ...) with ``kernel - 1`` frames prepended along T: copies of its first frame
    (``replicate``) or zeros (``zeros``)."""
    if kernel <= 1:
        return x
    pad = [0, 0] * (x.ndim - 3) + [kernel - 1, 0]
    return F.pad(x, pad, mode="replicate") if mode == "replicate" else F.pad(x, pad)


class _CausalTime(nn.Module):
    """Mixed into a convolution: pads time on the left by ``kernel - 1`` frames (``time_padding``) first."""

    kernel_size: tuple[int, ...]

    def __init__(self, *args: Any, time_padding: str = "replicate", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_padding = check_time_padding(time_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_causal_pad(x, self.kernel_size[0], self.time_padding))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", time_padding={self.time_padding}"


class CausalConv1d(_CausalTime, nn.Conv1d):
    """Conv1d padded on the left in time only: output sample ``t`` sees inputs ``<= t``."""


class CausalConv2d(_CausalTime, nn.Conv2d):
    """Conv2d whose first axis is time, padded on the left only (the other axis padded on both sides)."""


class CausalConv3d(_CausalTime, nn.Conv3d):
    """Conv3d over (T, H, W), padded on the left in time only (H and W on both sides)."""


_CAUSAL_CONVS: dict[int, type[CausalConv1d] | type[CausalConv2d] | type[CausalConv3d]] = {
    1: CausalConv1d,
    2: CausalConv2d,
    3: CausalConv3d,
}


def conv(
    dims: int,
    in_channels: int,
    out_channels: int,
    kernel: int,
    *,
    bias: bool = True,
    causal: bool = False,
    time_padding: str = "replicate",
    factorized: bool = False,
) -> nn.Module:
    """A ``kernel``-wide convolution over ``dims`` axes keeping their sizes ("same" padding; causal in time, the
    past padded with ``time_padding``: copies of the first frame or zeros). ``factorized`` (3-D only): a
    :class:`FactorizedConv3d`, space then time."""
    check_dims(dims)
    check_time_padding(time_padding)
    if factorized and dims != 3:
        raise ValueError(f"factorized (2+1)-D convolutions need dims=3 (video), got dims={dims}")
    if kernel == 1:
        return CONVS[dims](in_channels, out_channels, 1, bias=bias)
    if factorized:
        return FactorizedConv3d(in_channels, out_channels, kernel, bias=bias, causal=causal, time_padding=time_padding)
    if causal:
        padding: Any = (0,) + (kernel // 2,) * (dims - 1)  # none in time: the forward pads it on the left
        return _CAUSAL_CONVS[dims](
            in_channels, out_channels, kernel, padding=padding, bias=bias, time_padding=time_padding
        )
    return CONVS[dims](in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)


class FactorizedConv3d(nn.Module):
    """A (2+1)-D convolution: ``1 x k x k`` over space (``in -> out`` channels), then ``k x 1 x 1`` over time
    (``out -> out``; causal: padded on the left with ``time_padding``), with no nonlinearity between them."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        bias: bool = True,
        causal: bool = False,
        time_padding: str = "replicate",
    ) -> None:
        super().__init__()
        self.space = nn.Conv3d(
            in_channels, out_channels, (1, kernel, kernel), padding=(0, kernel // 2, kernel // 2), bias=False
        )
        if causal:
            self.time: nn.Conv3d = CausalConv3d(
                out_channels, out_channels, (kernel, 1, 1), bias=bias, time_padding=time_padding
            )
        else:
            self.time = nn.Conv3d(out_channels, out_channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _time_conv(self.time, self.space(x))

    @torch.no_grad()
    def pass_current_frame_(self) -> None:
        """Set the time convolution to pass the current frame only (its last tap when causal, else its middle one;
        bias zero): the pair then starts as a per-frame 2-D convolution and learns its temporal mixing, as 2-D
        weights inflated to 3-D do (I3D, MAGVIT-v2)."""
        weight = self.time.weight
        weight.zero_()
        tap = weight.shape[2] - 1 if isinstance(self.time, CausalConv3d) else weight.shape[2] // 2
        weight[:, :, tap, 0, 0] = torch.eye(weight.shape[0], dtype=weight.dtype)
        if self.time.bias is not None:
            self.time.bias.zero_()


def _time_conv(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a ``k x 1 x 1`` Conv3d (stride 1), computed as a ``k x 1`` Conv2d over ``(T, H*W)``: the same
    weights and sums, about 2.5x faster than Conv3d on a CPU (measured at 16-32 channels, 9 frames, 16-32 px)."""
    if isinstance(conv, CausalConv3d):
        x, pad = _causal_pad(x, conv.kernel_size[0], conv.time_padding), 0
    else:
        pad = int(conv.padding[0])
    b, c, t, h, w = x.shape
    out = F.conv2d(x.reshape(b, c, t, h * w), conv.weight.squeeze(-1), conv.bias, padding=(pad, 0))
    return out.reshape(b, out.shape[1], out.shape[2], h, w)


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
    """GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, plus a (1x1-projected when widths differ) skip
    (``factorized``: (2+1)-D convolutions, :class:`FactorizedConv3d`).

    The public MaskGIT code applies its 1x1 shortcut to the block *output* when channels change (so those blocks
    lose their skip); we use the standard form, projecting the block *input*, since we do not load its weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_groups: int,
        dims: int = 2,
        causal: bool = False,
        time_padding: str = "replicate",
        factorized: bool = False,
    ) -> None:
        super().__init__()
        kw: dict[str, Any] = {"bias": False, "causal": causal, "time_padding": time_padding, "factorized": factorized}
        self.norm1 = group_norm(in_channels, num_groups, causal)
        self.conv1 = conv(dims, in_channels, out_channels, 3, **kw)
        self.norm2 = group_norm(out_channels, num_groups, causal)
        self.conv2 = conv(dims, out_channels, out_channels, 3, **kw)
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
    others in groups of ``factors[0]`` frames.

    ``time_to_depth`` (causal only; needs ``channels``): each group of ``factors[0]`` frames is stacked into the
    channels and a 1x1 convolution maps them back to ``channels`` (space-to-depth in time, as MAGVIT-v2), so the
    order of the frames in a group is kept where averaging would lose it; the first frame, alone, is stacked
    with copies of itself. Space is still average-pooled."""

    def __init__(
        self,
        dims: int = 2,
        factors: Sequence[int] | None = None,
        causal: bool = False,
        *,
        channels: int | None = None,
        time_to_depth: bool = False,
    ) -> None:
        super().__init__()
        self.dims, self.factors, self.causal = dims, _factors(factors, dims), causal
        self.merge: nn.Module | None = None
        if time_to_depth and self.factors[0] > 1:
            if not causal or channels is None:
                raise ValueError("time_to_depth downsampling needs a causal time axis and the channel count")
            self.merge = CONVS[dims](channels * self.factors[0], channels, 1)

    def _pool(self, x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
        if all(f == 1 for f in factors):
            return x
        kernel = factors[0] if self.dims == 1 else factors
        return _POOLS[self.dims](x, kernel, ceil_mode=True, count_include_pad=False)

    def _stack_time(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1 + f*k, ...) -> (B, f*C, 1 + k, ...) -> 1x1 conv -> (B, C, 1 + k, ...)."""
        f = self.factors[0]
        first, rest = x[:, :, :1], x[:, :, 1:]
        b, c, frames, *space = rest.shape
        if frames % f:
            raise ValueError(f"time_to_depth needs 1 + {f}k frames, got {frames + 1}")
        rest = rest.reshape(b, c, frames // f, f, *space).movedim(3, 1).reshape(b, f * c, frames // f, *space)
        first = first.repeat(1, f, *([1] * (x.ndim - 2)))  # channel blocks in the same (frame, channel) order
        assert self.merge is not None
        return self.merge(torch.cat([first, rest], dim=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merge is not None:
            return self._pool(self._stack_time(x), (1,) + self.factors[1:])
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
    frame is upsampled in space only and the others fill the remaining ``size[0] - 1`` frames.

    ``time_factor`` > 1 (causal only): depth-to-space in time instead of repeating frames, the inverse of
    :class:`Downsample`'s ``time_to_depth``: a 1x1 convolution to ``time_factor`` x the channels, whose channel
    blocks become that many consecutive frames (so the frames from one latent frame can differ); the first latent
    frame gives the first frame alone (its last block)."""

    def __init__(
        self,
        channels: int,
        dims: int = 2,
        causal: bool = False,
        time_padding: str = "replicate",
        *,
        time_factor: int = 1,
        factorized: bool = False,
    ) -> None:
        super().__init__()
        self.conv = conv(dims, channels, channels, 3, causal=causal, time_padding=time_padding, factorized=factorized)
        self.causal = causal
        self.time_factor = int(time_factor)
        self.split: nn.Module | None = None
        if self.time_factor > 1:
            if not causal:
                raise ValueError("depth-to-space upsampling in time needs a causal time axis")
            self.split = CONVS[dims](channels, channels * self.time_factor, 1)

    def _unstack_time(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1 + k, ...) -> 1x1 conv -> (B, f*C, 1 + k, ...) -> (B, C, 1 + f*k, ...)."""
        assert self.split is not None
        f, c = self.time_factor, x.shape[1]
        y = self.split(x)
        b, _, latent, *space = y.shape
        first = y[:, (f - 1) * c :, :1]
        rest = y[:, :, 1:].reshape(b, f, c, latent - 1, *space).movedim(1, 3).reshape(b, c, (latent - 1) * f, *space)
        return torch.cat([first, rest], dim=2)

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        if self.causal:
            if size is None:
                raise ValueError("causal upsampling needs the output size")
            if self.split is not None:
                x = self._unstack_time(x)
                if x.shape[2] != size[0]:
                    raise ValueError(f"depth-to-space in time gives {x.shape[2]} frames, expected {size[0]}")
                return self.conv(F.interpolate(x, size=(size[0], *size[1:]), mode="nearest"))
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
