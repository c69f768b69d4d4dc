"""LPIPS (Zhang et al., CVPR 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric") as
the field uses it: VGG16 features with the calibrated linear heads (version 0.1) of the ``lpips`` package.

Per image pair: both images go from [0, 1] to [-1, 1], through LPIPS' scaling layer (shift
``[-.030, -.088, -.188]``, scale ``[.458, .448, .450]``) and VGG16's convolutional trunk; at ``relu1_2``,
``relu2_2``, ``relu3_3``, ``relu4_3`` and ``relu5_3`` each feature vector is unit-normalised over channels
(``x / (||x|| + 1e-10)``), the squared difference is weighted per channel by that layer's linear head (a 1x1
convolution to one channel), averaged over positions and summed over the five layers. That is
``lpips.LPIPS(net="vgg", version="0.1")`` (its default ``normalize=False`` expects [-1, 1]; this module takes
[0, 1] and maps it, as ``normalize=True`` does); the tests check it against the package's own code.

Where the weights come from (nothing is downloaded unless asked):

* the **linear heads** ship inside the ``lpips`` wheel (``lpips/weights/v0.1/vgg.pth``, 7 KB); the file is found
  with ``importlib.util.find_spec`` and the package is never imported (its code needs torchvision; this module
  does not). ``pip install --no-deps lpips`` installs it (the ``lpips`` extra of fsq-toolkit brings it with its
  declared dependencies, torchvision among them, which fsq does not use);
* the **VGG16 trunk**: ``vgg_weights``, a path to torchvision's ImageNet VGG16 file (``vgg16-397923af.pth``, a
  plain state dict; ``classifier.*`` is ignored) or any state dict with its ``features.N.*`` names; else the copy
  in torch hub's cache when one is there; else, with ``download=True``, torchvision's public URL
  (:data:`VGG16_URL`, through ``torch.hub``). Files load with ``weights_only=True``.

The networks are frozen, always in eval mode and held outside the module tree (not in ``state_dict()``, so
checkpoints of a model holding the loss do not carry VGG16's 59 MB); ``.to()`` still moves them.
This is not the EfficientNet-Lite0 distance of :mod:`fsq.losses.perceptual` (the offline default, no
calibrated heads); the two values are not comparable.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

NAME = "LPIPS (VGG16, lpips v0.1 linear heads)"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision's ImageNet VGG16
VGG16_FILE = "vgg16-397923af.pth"
HEADS_FILE = ("weights", "v0.1", "vgg.pth")
INSTALL_HINT = "pip install --no-deps lpips"
# VGG16's convolutional trunk: (out channels or "M" for max-pooling), torchvision's `features` layout
VGG16_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
)
TAPS = (3, 8, 15, 22, 29)  # indices in `features` after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def vgg16_trunk() -> nn.Sequential:
    """VGG16's ``features`` up to ``relu5_3`` (torchvision's module indices 0 ... 29), randomly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


def heads_path() -> Path:
    """The v0.1 VGG linear heads inside the installed ``lpips`` package (found without importing it)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"LPIPS needs the linear heads shipped in the lpips wheel: {INSTALL_HINT}", name="lpips"
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*HEADS_FILE)


def vgg16_weights_path(given: str | os.PathLike[str] | None, download: bool = False) -> Path | str:
    """The VGG16 file to load: ``given``; else torch hub's cached copy; else :data:`VGG16_URL` when
    ``download``; else a FileNotFoundError saying where to get it."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"VGG16 weights not found at {path} (torchvision's {VGG16_FILE}: {VGG16_URL})")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    if cached.is_file():
        return cached
    if download:
        return VGG16_URL
    raise FileNotFoundError(
        f"LPIPS needs ImageNet VGG16 weights: pass their path (loss.vgg16_weights=PATH; torchvision's {VGG16_FILE}, "
        f"from {VGG16_URL}), put the file in {cached.parent}, or allow the download"
    )


def load_vgg16_trunk(weights: Path | str) -> nn.Sequential:
    """VGG16's trunk with the ``features.*`` weights of a state-dict file (or URL), frozen and in eval mode."""
    if isinstance(weights, str) and weights.startswith("https://"):
        state = torch.hub.load_state_dict_from_url(weights, map_location="cpu", weights_only=True)
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    trunk = vgg16_trunk()
    prefix = "features."
    wanted = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    wanted = {k: v for k, v in wanted.items() if int(k.split(".")[0]) < len(trunk)}  # past relu5_3: unused
    missing = sorted(set(trunk.state_dict()) - set(wanted))
    if missing:
        raise ValueError(f"{weights} is not a VGG16 state dict: it lacks {['features.' + k for k in missing]}")
    trunk.load_state_dict(wanted, strict=True)
    trunk.requires_grad_(False)
    return trunk.eval()


def load_heads(path: str | os.PathLike[str] | None = None) -> list[torch.Tensor]:
    """The five linear heads' weights ``(1, C_l, 1, 1)`` of ``lpips/weights/v0.1/vgg.pth`` (or ``path``)."""
    state = torch.load(path or heads_path(), map_location="cpu", weights_only=True)
    heads = [state[f"lin{i}.model.1.weight"].float() for i in range(len(CHANNELS))]
    shapes = [tuple(h.shape) for h in heads]
    if shapes != [(1, c, 1, 1) for c in CHANNELS]:
        raise ValueError(f"{path or heads_path()}: linear heads of shapes {shapes}, expected VGG16's {CHANNELS}")
    return heads


class LPIPS(nn.Module):
    """LPIPS distance, per image (``reduction="none"``) or its mean: ``lpips(a, b)`` for (N, 1 or 3, H, W) in
    [0, 1]. As a loss it is differentiable in both inputs; as a metric call it under ``torch.no_grad()``.

    Args:
        vgg_weights: torchvision's VGG16 file (see the module docstring); ``None``: torch hub's cache, or the
            download when ``download``.
        heads: the linear heads' file (default: inside the installed ``lpips`` package).
        download: fetch VGG16 from :data:`VGG16_URL` when no local copy is found.
        reduction: ``"mean"`` (a scalar) or ``"none"`` (one value per image).
    """

    _trunk: nn.Sequential  # set with object.__setattr__: not a registered submodule (not saved)
    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        vgg_weights: str | os.PathLike[str] | None = None,
        *,
        heads: str | os.PathLike[str] | None = None,
        download: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.reduction = reduction
        object.__setattr__(self, "_trunk", load_vgg16_trunk(vgg16_weights_path(vgg_weights, download)))
        for i, weight in enumerate(load_heads(heads)):
            self.register_buffer(f"head{i}", weight, persistent=False)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"network={NAME} (frozen, eval, not in state_dict), reduction={self.reduction}"

    def train(self, mode: bool = True) -> LPIPS:
        super().train(mode)
        self._trunk.eval()
        return self

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> LPIPS:
        super()._apply(fn, recurse)
        self._trunk._apply(fn, recurse)
        self._trunk.requires_grad_(False)
        return self

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """VGG16's five tapped feature maps of ``images`` (N, 1 or 3, H, W) in [0, 1]."""
        if images.ndim != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
            raise ValueError(f"images must be float (N, 1 or 3, H, W) in [0, 1], got {tuple(images.shape)}")
        x = (images.expand(-1, 3, -1, -1).float() * 2 - 1 - self.shift) / self.scale
        out = []
        for index, layer in enumerate(self._trunk):
            x = layer(x)
            if index in TAPS:
                out.append(x)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"LPIPS compares images of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        heads: list[Any] = [getattr(self, f"head{i}") for i in range(len(CHANNELS))]
        total = torch.zeros(a.shape[0], device=a.device)
        for fa, fb, head in zip(self.features(a), self.features(b), heads):
            diff = (_unit(fa) - _unit(fb)).pow(2)
            total = total + F.conv2d(diff, head).mean(dim=(1, 2, 3))
        return total.mean() if self.reduction == "mean" else total


def _unit(x: torch.Tensor) -> torch.Tensor:
    """``x / (||x||_2 over channels + 1e-10)``: LPIPS' ``normalize_tensor``."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
