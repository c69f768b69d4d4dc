"""Small generated signals, deterministic from a seed: audio-shaped tones and video-shaped moving blobs.

- ``tones``: audio ``(1, T)`` float32 in ``[0, 1]`` (``0.5`` is silence) at 8000 Hz: each clip is the sum of one to
  three sinusoids (frequencies log-uniform in 100-2000 Hz, random phases and amplitudes), half of the clips with a
  linear chirp added, then scaled into ``[0.1, 0.9]``.
- ``blobs``: video ``(C, T, H, W)`` uint8 at 10 fps: one or two squares and Gaussian blobs of random size, grey
  level and colour, moving at a constant velocity and bouncing off the borders, on a dark background.

Clip ``i`` of a split depends on ``(seed, i)`` alone, so a longer split starts with the clips of a shorter one.
They exist so that 1-D and 3-D tokenizers and MaskGITs can be trained and tested without any download; they are
not real audio or video, and reports say so. ``moving_mnist`` (real MNIST digits bouncing in a square, labelled
by the class of the first digit) is served through :func:`generated_items` too; see :mod:`fsq.data.moving_mnist`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fsq.data import moving_mnist
from fsq.data.signals import AUDIO, VIDEO, SignalItems

TONES_RATE = 8000.0
TONES_LENGTH = 1024  # samples per clip (0.128 s)
BLOBS_RATE = 10.0
BLOBS_FRAMES = 17  # frames per clip (1 + 16: causal video tokenizers take 1 + 4k frames)
SOURCES = {"tones": AUDIO, "blobs": VIDEO, "moving_mnist": VIDEO}
RATES = {"tones": TONES_RATE, "blobs": BLOBS_RATE, "moving_mnist": moving_mnist.RATE}
CLIP_LENGTHS = {"tones": TONES_LENGTH, "blobs": BLOBS_FRAMES, "moving_mnist": moving_mnist.FRAMES}  # per clip
DEFAULT_COUNTS = {"train": 1024}  # any other split: 128 clips


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5167]))


def tone_clip(seed: int, index: int, length: int = TONES_LENGTH, rate: float = TONES_RATE) -> torch.Tensor:
    """Clip ``index`` of the tones source: float32 ``(1, length)`` in ``[0.1, 0.9]``."""
    rng = _rng(seed, index)
    t = np.arange(length) / rate
    wave = np.zeros(length)
    for _ in range(int(rng.integers(1, 4))):
        freq = math.exp(rng.uniform(math.log(100.0), math.log(2000.0)))
        wave += rng.uniform(0.3, 1.0) * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    if rng.random() < 0.5:  # a linear chirp between two frequencies
        f0, f1 = rng.uniform(100.0, 2000.0, size=2)
        wave += rng.uniform(0.3, 1.0) * np.sin(2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1])))
    wave = 0.5 + 0.4 * wave / max(float(np.abs(wave).max()), 1e-6)
    return torch.from_numpy(wave.astype(np.float32))[None]


def blob_clip(seed: int, index: int, frames: int = BLOBS_FRAMES, size: int = 16, channels: int = 1) -> torch.Tensor:
    """Clip ``index`` of the blobs source: uint8 ``(channels, frames, size, size)``."""
    rng = _rng(seed, index)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    video = np.full((frames, channels, size, size), 0.08)
    for _ in range(int(rng.integers(1, 3))):
        radius = rng.uniform(0.12, 0.25) * size
        pos = rng.uniform(radius, size - radius, size=2)
        vel = rng.uniform(-0.08, 0.08, size=2) * size
        colour = rng.uniform(0.4, 1.0, size=channels)
        square = rng.random() < 0.5
        for f in range(frames):
            dy, dx = yy - pos[0], xx - pos[1]
            if square:
                shape = ((np.abs(dy) <= radius) & (np.abs(dx) <= radius)).astype(np.float64)
            else:
                shape = np.exp(-(dy * dy + dx * dx) / (2 * (radius / 1.5) ** 2))
            video[f] = np.maximum(video[f], colour[:, None, None] * shape[None])
            pos = pos + vel
            for axis in range(2):  # bounce off the borders
                if not radius <= pos[axis] <= size - radius:
                    vel[axis] = -vel[axis]
                    pos[axis] = min(max(pos[axis], radius), size - radius)
    clip = torch.from_numpy(np.round(video * 255).clip(0, 255).astype(np.uint8))
    return clip.permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)


def clip_length(source: str, length: int | None = None) -> int:
    """Samples or frames per clip of a generated source; ``moving_mnist`` makes clips as long as a longer time
    crop ``length`` asks (its default 20 frames otherwise)."""
    if source == "moving_mnist" and length is not None:
        return max(length, CLIP_LENGTHS[source])
    return CLIP_LENGTHS[source]


def generated_items(
    source: str,
    split: str,
    *,
    seed: int,
    count: int | None = None,
    image_size: int = 16,
    channels: int | None = None,
    length: int | None = None,
    cache_dir: str | None = None,
) -> SignalItems:
    """The clips of a generated source's split (``count`` of them: default 1024 for ``train``, 128 otherwise).

    Splits draw from different seeds (``train``: ``seed``, any other: ``seed + 1 + hash of its name``);
    ``moving_mnist`` clips are ``clip_length(source, length)`` frames of ``image_size`` px, with digits read from
    the MNIST cache (``cache_dir``; default ``~/.cache/fsq``) of the same split."""
    if source not in SOURCES:
        raise ValueError(f"unknown generated signal source {source!r}: choose one of {', '.join(SOURCES)}")
    count = count or DEFAULT_COUNTS.get(split, 128)
    if source == "moving_mnist":
        if channels not in (None, 1):
            raise ValueError(f"moving_mnist is grey (1 channel), got channels={channels}")
        frames = clip_length(source, length)
        return moving_mnist.moving_mnist_items(
            split, seed=seed, count=count, image_size=image_size, frames=frames, cache_dir=cache_dir
        )
    split_seed = seed if split == "train" else seed + 1 + sum(split.encode()) * 7919
    if source == "tones":
        if channels not in (None, 1):
            raise ValueError(f"the tones source is mono (1 channel), got channels={channels}")
        clips = torch.stack([tone_clip(split_seed, i) for i in range(count)])
        return SignalItems(clips, AUDIO, source=source, split=split, rate=TONES_RATE)
    clips = torch.stack([blob_clip(split_seed, i, size=image_size, channels=channels or 1) for i in range(count)])
    return SignalItems(clips, VIDEO, source=source, split=split, rate=BLOBS_RATE)
