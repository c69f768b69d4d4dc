"""Per-item image transforms for streamed data, with randomness that is a pure function of (seed, step, position).

Streamed sources (image folders, WebDataset shards, Hugging Face datasets) hold images of any size; each item is
brought to ``size x size`` here, in the DataLoader worker that decoded it:

- ``"random"`` (training): resize so that the shorter side is ``size`` (area averaging when shrinking, antialiased
  bilinear when enlarging, as :func:`fsq.data.images.resize_uint8`), take a random ``size x size`` crop and flip it
  horizontally with probability 1/2 (the MaskGIT VQGAN training augmentation);
- ``"center"`` (evaluation, token export): the largest centred square, resized to ``size`` (the same pixels as
  :func:`fsq.data.images.decode_image` with ``image_size``);
- ``"none"``: unchanged (in-memory sources already at their size).

The random numbers of an item come from :func:`item_generator` ``(seed, step, position)``: ``position`` is the
item's place in the stream of global batches (``step * global_batch + k``), so the crop of an item does not depend
on which worker or rank decoded it, or on whether the run was resumed, and an item drawn twice gets two crops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from fsq.data.images import center_crop_square, resize_uint8

TransformMode = Literal["random", "center", "none"]


def item_generator(seed: int, step: int, position: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, step, position)`` alone (NumPy's SeedSequence mixes the three)."""
    state = np.random.SeedSequence([int(seed), int(step), int(position)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def resize_shorter_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(C, H, W)`` resized (aspect kept) so that ``min(H, W) == size``; the longer side is rounded."""
    height, width = image.shape[-2:]
    short = min(height, width)
    if short == size:
        return image
    new = (max(size, round(height * size / short)), max(size, round(width * size / short)))
    return resize_uint8(image, new)


def random_crop_flip(image: torch.Tensor, size: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Shorter side to ``size``, a uniformly random ``size x size`` crop, then a horizontal flip with p=1/2."""
    image = resize_shorter_side(image, size)
    height, width = image.shape[-2:]
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    out = image[:, top : top + size, left : left + size]
    if flip and bool(torch.randint(2, (1,), generator=generator)):
        out = out.flip(-1)
    return out.contiguous()


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The largest centred square of uint8 ``(C, H, W)``, resized to ``size x size``."""
    return resize_uint8(center_crop_square(image), (size, size)).contiguous()


@dataclass(frozen=True)
class ItemTransform:
    """What happens to one decoded uint8 ``(C, H, W)`` image: ``mode`` at ``size`` px (``flip`` for ``random``)."""

    mode: TransformMode
    size: int | None = None
    flip: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("random", "center", "none"):
            raise ValueError(f"transform must be 'random', 'center' or 'none', got {self.mode!r}")
        if self.mode != "none" and (self.size is None or self.size < 1):
            raise ValueError(f"the {self.mode!r} transform needs a positive size, got {self.size!r}")

    @property
    def random(self) -> bool:
        return self.mode == "random"

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.mode == "none":
            return image
        assert self.size is not None
        if self.mode == "center":
            return center_crop(image, self.size)
        if generator is None:
            raise ValueError("the random transform needs a generator (item_generator(seed, step, position))")
        return random_crop_flip(image, self.size, generator, self.flip)
