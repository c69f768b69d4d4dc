"""Frame prediction with MaskGIT (MAGVIT's task): the leading latent frames of a video token grid are given.

A token grid ``(t, h, w)`` flattens in row-major order, so its first ``c`` latent frames are the first
``c * h * w`` positions. With ``c`` frames given:

- training masks only the other positions (:func:`conditioned_training_mask`): the given tokens are always visible
  and, since the loss counts masked positions alone, never scored;
- sampling starts from the given tokens and MASK elsewhere (:func:`conditioned_initial`); the sampler keeps every
  token that is not MASK (:func:`fsq.generation.sample`), so the given ones come out unchanged.

Latent frame ``0`` of a causal video tokenizer encodes pixel frame ``0`` alone and each later latent frame the next
``f`` frames (``f`` the product of its time downsampling factors), so ``c`` given latent frames cover
``1 + (c - 1) f`` pixel frames (a non-causal tokenizer: ``c f``): :func:`given_pixel_frames`. With ``c = 0``
everything is the unconditional path, draw for draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from fsq.generation.mask_schedule import random_mask


def given_positions(grid_shape: Sequence[int], condition_frames: int) -> int:
    """How many leading positions of the flattened grid ``condition_frames`` latent frames hold (checked)."""
    grid = tuple(int(n) for n in grid_shape)
    if condition_frames < 0:
        raise ValueError(f"condition_frames must be >= 0, got {condition_frames}")
    if condition_frames == 0:
        return 0
    if len(grid) != 3:
        raise ValueError(
            f"condition_frames={condition_frames} gives the leading latent frames of a video token grid (t, h, w), "
            f"but the token grid is {grid}: frame prediction needs a video tokenizer"
        )
    if condition_frames >= grid[0]:
        raise ValueError(
            f"condition_frames={condition_frames} leaves nothing to predict: the token grid {grid} has {grid[0]} "
            f"latent frames; give at most {grid[0] - 1}"
        )
    return condition_frames * math.prod(grid[1:])


def given_pixel_frames(frames: int, latent_frames: int, condition_frames: int, causal: bool) -> int:
    """The pixel frames (of ``frames``) that ``condition_frames`` of ``latent_frames`` latent frames encode:
    ``1 + (c - 1) f`` for a causal tokenizer (latent frame 0 is pixel frame 0 alone), ``c f`` otherwise, where
    ``f`` is the time downsampling (``(frames - 1) / (latent_frames - 1)`` causal, ``frames / latent_frames``
    otherwise)."""
    if condition_frames <= 0:
        return 0
    if causal:
        factor = (frames - 1) // max(latent_frames - 1, 1)
        return min(frames, 1 + (condition_frames - 1) * factor)
    return min(frames, condition_frames * (frames // latent_frames))


def conditioned_training_mask(
    batch: int, num_tokens: int, given: int, count: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bool (batch, num_tokens): ``count`` True per row, uniformly among the positions after the ``given`` leading
    ones (those are never masked). ``given=0`` draws exactly :func:`random_mask`'s mask."""
    if not 0 <= given < num_tokens:
        raise ValueError(f"given must be in [0, {num_tokens}) (tokens per grid), got {given}")
    if not 1 <= count <= num_tokens - given:
        raise ValueError(f"count must be in [1, {num_tokens - given}] (the positions not given), got {count}")
    free = random_mask(batch, num_tokens - given, count, generator=generator)
    if given == 0:
        return free
    return torch.cat([torch.zeros(batch, given, dtype=torch.bool), free], dim=1)


def conditioned_initial(tokens: torch.Tensor, given: int, mask_id: int) -> torch.Tensor:
    """The sampler's start (B, N): the first ``given`` tokens of ``tokens`` (B, N) or (B, *grid), MASK after."""
    flat = tokens.reshape(tokens.shape[0], -1).long()
    if not 0 <= given <= flat.shape[1]:
        raise ValueError(f"given must be in [0, {flat.shape[1]}], got {given}")
    initial = torch.full_like(flat, mask_id)
    initial[:, :given] = flat[:, :given]
    return initial
