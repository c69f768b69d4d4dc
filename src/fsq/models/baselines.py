"""Baseline codecs a video tokenizer is compared against at equal bits per clip.

- :func:`naive_codec`: area-downsample every frame to the token grid's (h, w), quantize each position uniformly
  to a fixed number of levels per channel, upsample back bilinearly (``align_corners=False``) and clamp to
  ``[0, 1]``. No learning, no entropy coding: a fixed-length code of ``log2(prod(levels))`` bits per position.
- :func:`naive_levels`: the levels per channel that spend at most a given number of bits per position: the
  largest balanced split whose product of levels stays within ``2 ** bits`` (grey: ``floor(2 ** bits)``; RGB at 10
  bits: 10 x 10 x 10 = 1000 levels, where a split of bits 4 + 3 + 3 would give 16 x 8 x 8 = 1024).
- :func:`equal_bit_naive_levels`: the naive codec's levels at the bits per clip of a tokenizer, spread evenly
  over every frame's ``h x w`` positions (a frame-by-frame codec has no temporal compression, so a causal video
  tokenizer's ``t' < T`` token frames buy it fewer bits per position).
- :func:`per_frame_reconstruct`: a 2-D image tokenizer applied to every frame of a clip (the other baseline:
  does temporal compression pay?); :func:`tokenizer_bits_per_clip` counts what either kind of tokenizer spends.

Bits are counted as fixed-length codes: ``tokens x log2(codebook size)`` for a tokenizer (times the indices per
token of a residual quantizer), ``positions x log2(prod(levels))`` for the naive codec.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from fsq.models.autoencoder import Tokenizer
from fsq.quantizers.registry import family_of

UPSAMPLING = "bilinear"  # how the naive codec upsamples each frame (align_corners=False)


def naive_levels(bits: float, channels: int) -> list[int]:
    """Levels per channel (each >= 2) whose product is the largest balanced one within ``2 ** bits``.

    Every channel starts at ``floor(2 ** (bits / channels))`` levels; then, channel by channel from the first,
    one level is added while the product stays within ``2 ** bits``. Raises ``ValueError`` when even two levels
    per channel (``channels`` bits) do not fit.
    """
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    budget = 2.0**bits
    if 2**channels > budget * (1 + 1e-12):
        raise ValueError(
            f"{bits:.3g} bits per position cannot give {channels} channels two levels each (needs {channels} bits)"
        )
    base = max(2, math.floor(budget ** (1 / channels) + 1e-9))
    levels = [base] * channels
    for c in range(channels):  # a balanced top-up: never more than one extra level per channel
        if math.prod(levels) // levels[c] * (levels[c] + 1) <= budget * (1 + 1e-12):
            levels[c] += 1
    return levels


def tokenizer_bits_per_clip(model: Tokenizer) -> float:
    """Bits a tokenizer spends on one input (clip or image): tokens x log2(codebook size) x indices per token."""
    per_token = family_of(model.quantizer).indices_per_token(model.quantizer)
    return math.prod(model.spec.grid_shape) * per_token * math.log2(model.codebook_size)


def equal_bit_naive_levels(bits_per_clip: float, frames: int, grid: Sequence[int], channels: int) -> list[int]:
    """The naive codec's levels per channel for ``bits_per_clip`` spread over ``frames`` frames of ``grid``
    ``(h, w)`` positions each (see :func:`naive_levels`)."""
    positions = frames * math.prod(grid)
    if positions < 1 or len(grid) != 2:
        raise ValueError(f"grid must be (h, w) of positive sizes and frames positive, got {list(grid)}, {frames}")
    return naive_levels(bits_per_clip / positions, channels)


def quantize_uniform(x: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Values in ``[0, 1]`` (channels on axis 1) rounded to ``levels[c]`` evenly spaced values ``k / (L - 1)``."""
    if x.shape[1] != len(levels) or any(L < 2 for L in levels):
        raise ValueError(f"levels {list(levels)} must give each of the {x.shape[1]} channels at least 2 levels")
    steps = torch.tensor([L - 1 for L in levels], dtype=x.dtype, device=x.device).view(1, -1, *[1] * (x.ndim - 2))
    return torch.round(x.clamp(0, 1) * steps) / steps


def naive_codec(
    clips: torch.Tensor, grid: Sequence[int], levels: Sequence[int], upsampling: str = UPSAMPLING
) -> torch.Tensor:
    """Area-downsample each frame of (B, C, T, H, W) clips in ``[0, 1]`` to ``grid`` ``(h, w)``, quantize each
    position to ``levels`` per channel (:func:`quantize_uniform`), upsample to (H, W) (``upsampling``: bilinear
    by default, or bicubic, both ``align_corners=False``), clamp to ``[0, 1]``. A (B, C, H, W) image batch works
    the same (one frame)."""
    if clips.ndim not in (4, 5) or len(grid) != 2:
        raise ValueError(
            f"naive_codec takes (B, C, T, H, W) clips or (B, C, H, W) images and an (h, w) grid, got "
            f"shape {tuple(clips.shape)} and grid {list(grid)}"
        )
    if upsampling not in ("bilinear", "bicubic"):
        raise ValueError(f"naive_codec upsampling must be 'bilinear' or 'bicubic', got {upsampling!r}")
    video = clips.ndim == 5
    frames = clips.transpose(1, 2).flatten(0, 1) if video else clips  # (B T, C, H, W)
    h, w = frames.shape[-2:]
    if grid[0] > h or grid[1] > w or min(grid) < 1:
        raise ValueError(f"the grid {list(grid)} must fit the frames ({h} x {w})")
    small = F.interpolate(frames.float(), size=tuple(grid), mode="area")
    coded = quantize_uniform(small, levels)
    out = F.interpolate(coded, size=(h, w), mode=upsampling, align_corners=False).clamp(0, 1)
    if not video:
        return out
    b, t = clips.shape[0], clips.shape[2]
    return out.view(b, t, *out.shape[1:]).transpose(1, 2)


@torch.no_grad()
def per_frame_reconstruct(model: Tokenizer, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D image tokenizer applied to every frame of (B, C, T, H, W) clips in ``[0, 1]``: the reconstruction
    (same shape, clamped to ``[0, 1]``) and the indices ``(B, T, h, w)``."""
    if model.spec.dims != 2:
        raise ValueError(f"per-frame coding needs an image (2-D) tokenizer, got a {model.spec.dims}-D one")
    if clips.ndim != 5:
        raise ValueError(f"clips must be (B, C, T, H, W), got shape {tuple(clips.shape)}")
    b, c, t, h, w = clips.shape
    frames = clips.transpose(1, 2).reshape(b * t, c, h, w)
    reconstruction, out = model(frames)
    reconstruction = reconstruction.float().clamp(0, 1).view(b, t, c, h, w).transpose(1, 2)
    return reconstruction, out.indices.view(b, t, *out.indices.shape[1:])
