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

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
NEGATIVE_SLOPE = 0.2


class BlurPool2d(nn.Module):
    """Depthwise ``[1,3,3,1]`` blur, stride 2, TF "SAME" padding: ``(N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))``."""

    kernel: torch.Tensor  # buffer registered in __init__

    def __init__(self, taps: tuple[float, ...] = BLUR_TAPS) -> None:
        super().__init__()
        k = torch.tensor(taps, dtype=torch.float32)
        kernel = k[:, None] * k[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    @staticmethod
    def _same_padding(size: int, k: int) -> tuple[int, int]:
        total = max((math.ceil(size / 2) - 1) * 2 + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blur and subsample each channel independently."""
        channels, k = x.shape[1], self.kernel.shape[-1]
        top, bottom = self._same_padding(x.shape[-2], k)
        left, right = self._same_padding(x.shape[-1], k)
        x = F.pad(x, (left, right, top, bottom))
        weight = self.kernel.to(x.dtype).expand(channels, 1, k, k)
        return F.conv2d(x, weight, stride=2, groups=channels)


class DownBlock(nn.Module):
    """Residual down-block: ``(N, c_in, S, S) -> (N, c_out, ceil(S/2), ceil(S/2))``, output scaled by 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.blur = BlurPool2d()

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

    Attributes ``resolutions`` and ``channels`` list the spatial size and width after the stem and each block.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 256,
        base_channels: int = 64,
        max_channels: int = 512,
        min_resolution: int = 4,
    ) -> None:
        super().__init__()
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
        if image_size < min_resolution:
            raise ValueError(f"image_size ({image_size}) must be >= min_resolution ({min_resolution})")
        self.in_channels, self.image_size = in_channels, image_size
        self.min_resolution = min_resolution

        resolutions, channels = [image_size], [base_channels]
        while resolutions[-1] > min_resolution:
            resolutions.append(math.ceil(resolutions[-1] / 2))
            channels.append(min(channels[-1] * 2, max_channels))
        self.resolutions, self.channels = tuple(resolutions), tuple(channels)

        width, final = channels[-1], resolutions[-1]
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.blocks = nn.ModuleList(DownBlock(a, b) for a, b in zip(channels[:-1], channels[1:]))
        self.final_conv = nn.Conv2d(width, width, 3, padding=1)
        self.dense = nn.Linear(width * final * final, width)
        self.logit = nn.Linear(width, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases for every conv and dense layer (MaskGIT's init)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def extra_repr(self) -> str:
        return f"resolutions={list(self.resolutions)}, channels={list(self.channels)}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, in_channels, image_size, image_size)`` -> ``logits (N,)`` (positive = judged real)."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"discriminator expects images of shape (N, {', '.join(map(str, expected))}), got {tuple(images.shape)}"
            )
        x = F.leaky_relu(self.stem(images), NEGATIVE_SLOPE)
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.final_conv(x), NEGATIVE_SLOPE)
        x = F.leaky_relu(self.dense(x.flatten(1)), NEGATIVE_SLOPE)
        return self.logit(x).squeeze(-1)
