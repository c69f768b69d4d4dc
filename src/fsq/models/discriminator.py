"""StyleGAN-style image discriminator, as MaskGIT's VQGAN tokenizer trains against (``maskgit/nets/discriminator.py``).

Layout (the FSQ paper sec. 4.1, MaskGIT's discriminator), for an ``(N, C, S, S)`` image:

    conv3x3(C -> c0) -> leaky-ReLU 0.2
    per block: residual down-block (S -> ceil(S / 2), channels doubled up to ``max_channels``)
        main:  conv3x3(c_in -> c_in) -> lrelu -> BlurPool -> conv3x3(c_in -> c_out) -> lrelu
        skip:  BlurPool -> conv1x1(c_in -> c_out, no bias)
        out = (main + skip) / sqrt(2)
    conv3x3(c -> c) -> lrelu -> flatten -> Dense(c) -> lrelu -> Dense(1)  ->  logits (N,)

BlurPool is the fixed depthwise filter ``[1,3,3,1] x [1,3,3,1] / 64`` with stride 2 and TF "SAME" padding, so the
output size is ``ceil(S / 2)`` for any ``S`` (MNIST's 28 px: 28 -> 14 -> 7 -> 4). Blocks are added until the
spatial size reaches ``min_resolution`` or below. Every conv and dense weight is xavier-uniform, biases are zero.

Channels: ``base_channels`` after the stem, doubled by each block and capped at ``max_channels``. With the defaults
at 256 px this is MaskGIT's schedule (64; 128, 256, 512, 512, 512, 512). MaskGIT instead fixes 512 channels at
every resolution <= 32 px; here small images keep the doubling schedule (set ``base_channels=512`` for MaskGIT's
width at <= 32 px). There is no normalisation layer (the R1 penalty assumes none) and no minibatch-stddev layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from fsq.layers.resnet import CONVS, check_dims

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
NEGATIVE_SLOPE = 0.2


class BlurPool(nn.Module):
    """Depthwise ``[1,3,3,1]`` blur, stride 2, TF "SAME" padding on each axis whose stride is 2 (an axis with stride 1
    is left alone): ``(N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))`` with the defaults; 1-D and 3-D by ``dims``."""

    kernel: torch.Tensor  # buffer registered in __init__

    def __init__(
        self, taps: tuple[float, ...] = BLUR_TAPS, dims: int = 2, strides: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        self.strides = (2,) * dims if strides is None else tuple(strides)
        if len(self.strides) != dims or any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"strides must be {dims} values of 1 or 2, got {strides!r}")
        k = torch.tensor(taps, dtype=torch.float32)
        kernel = torch.ones(())
        for stride in self.strides:
            axis = k if stride == 2 else torch.ones(1)
            kernel = kernel[..., None] * axis
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    @staticmethod
    def _same_padding(size: int, k: int) -> tuple[int, int]:
        total = max((math.ceil(size / 2) - 1) * 2 + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blur and subsample each channel independently."""
        channels, kernel = x.shape[1], self.kernel.shape[2:]
        pad: list[int] = []
        for size, k, stride in zip(reversed(x.shape[2:]), reversed(kernel), reversed(self.strides)):
            pad += self._same_padding(size, k) if stride == 2 else (0, 0)
        x = F.pad(x, pad)
        weight = self.kernel.to(x.dtype).expand(channels, 1, *kernel)
        return _CONV_FNS[self.dims](x, weight, stride=self.strides, groups=channels)


BlurPool2d = BlurPool  # the 2-D blur of the image discriminator (its former name)
_CONV_FNS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class DownBlock(nn.Module):
    """Residual down-block: ``(N, c_in, S, S) -> (N, c_out, ceil(S/2), ceil(S/2))``, output scaled by 1/sqrt(2)
    (1-D and 3-D by ``dims``; ``strides`` 1 on an axis leaves its size)."""

    def __init__(
        self, in_channels: int, out_channels: int, dims: int = 2, strides: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        convs = CONVS[dims]
        self.conv1 = convs(in_channels, in_channels, 3, padding=1)
        self.conv2 = convs(in_channels, out_channels, 3, padding=1)
        self.skip = convs(in_channels, out_channels, 1, bias=False)
        self.blur = BlurPool(dims=dims, strides=strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Main path and blurred 1x1 shortcut, summed and divided by sqrt(2)."""
        h = F.leaky_relu(self.conv1(x), NEGATIVE_SLOPE)
        h = F.leaky_relu(self.conv2(self.blur(h)), NEGATIVE_SLOPE)
        return (h + self.skip(self.blur(x))) / math.sqrt(2.0)


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class StyleGANDiscriminator(nn.Module):
    """StyleGAN-like discriminator (MaskGIT's): ``(N, in_channels, image_size, image_size) -> logits (N,)`` float.

    Args:
        in_channels: image channels (3 for RGB, 1 for MNIST).
        image_size: height = width of the inputs; any size >= ``min_resolution`` (16, 28, 32, 64, 256 ...).
        base_channels: width after the stem conv; doubled by each down-block.
        max_channels: cap on the width.
        min_resolution: stop down-sampling once the spatial size is <= this (MaskGIT: 4).

        dims, shape: 1-D (audio), 2-D (images, the default: ``shape`` is ``image_size`` squared) or 3-D (video)
            inputs with the given per-axis sizes; each block halves the axes still above ``min_resolution``.

    Attributes ``resolutions`` and ``channels`` list the spatial size (the largest axis) and width after the stem and
    each block; ``shapes`` the per-axis sizes.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 256,
        base_channels: int = 64,
        max_channels: int = 512,
        min_resolution: int = 4,
        *,
        dims: int = 2,
        shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        check_dims(dims)
        for name, value in [
            ("in_channels", in_channels),
            ("image_size", image_size),
            ("base_channels", base_channels),
            ("max_channels", max_channels),
            ("min_resolution", min_resolution),
        ]:
            _positive_int(name, value)
        if base_channels > max_channels:
            raise ValueError(f"base_channels ({base_channels}) must not exceed max_channels ({max_channels})")
        sizes = (image_size,) * dims if shape is None else tuple(int(n) for n in shape)
        if len(sizes) != dims:
            raise ValueError(f"shape {tuple(sizes)} must have {dims} sizes (dims={dims})")
        if min(sizes) < min_resolution and shape is None:
            raise ValueError(f"image_size ({image_size}) must be >= min_resolution ({min_resolution})")
        self.in_channels, self.image_size, self.dims, self.shape = in_channels, image_size, dims, sizes
        self.min_resolution = min_resolution

        # each block halves every axis still above min_resolution (all of them for square images)
        shapes, channels, strides = [sizes], [base_channels], []
        while max(shapes[-1]) > min_resolution:
            stride = tuple(2 if n > min_resolution else 1 for n in shapes[-1])
            strides.append(stride)
            shapes.append(tuple(math.ceil(n / s) for n, s in zip(shapes[-1], stride)))
            channels.append(min(channels[-1] * 2, max_channels))
        self.shapes, self.channels = tuple(shapes), tuple(channels)
        self.resolutions = tuple(max(shape) for shape in shapes)

        width, convs = channels[-1], CONVS[dims]
        self.stem = convs(in_channels, base_channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            DownBlock(a, b, dims, stride) for a, b, stride in zip(channels[:-1], channels[1:], strides)
        )
        self.final_conv = convs(width, width, 3, padding=1)
        self.dense = nn.Linear(width * math.prod(shapes[-1]), width)
        self.logit = nn.Linear(width, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases for every conv and dense layer (MaskGIT's init)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def extra_repr(self) -> str:
        return f"resolutions={list(self.resolutions)}, channels={list(self.channels)}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, in_channels, *shape)`` -> ``logits (N,)`` (positive = judged real)."""
        expected = (self.in_channels, *self.shape)
        if images.ndim != 2 + self.dims or tuple(images.shape[1:]) != expected:
            what = "images" if self.dims == 2 else f"{self.dims}-D signals"
            raise ValueError(
                f"discriminator expects {what} of shape (N, {', '.join(map(str, expected))}), got {tuple(images.shape)}"
            )
        x = F.leaky_relu(self.stem(images), NEGATIVE_SLOPE)
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.final_conv(x), NEGATIVE_SLOPE)
        x = F.leaky_relu(self.dense(x.flatten(1)), NEGATIVE_SLOPE)
        return self.logit(x).squeeze(-1)
