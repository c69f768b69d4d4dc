"""Moving MNIST, generated from the real MNIST digits: digits bouncing in a square (Srivastava et al. 2015).

The benchmark is generated in the original too: each clip draws ``num_digits`` MNIST digits (default two) and,
for each, a start position uniform over the square, a direction uniform over the circle and a fixed step of
``0.1`` of the free range per frame (the original's ``step_length``); a digit that reaches a border stops there and
reverses that component of its velocity, so it never leaves the frame. Frames are the pixel-wise maximum of the
digits (the original's overlap), uint8 ``(1, T, S, S)``, by default ``S = 64`` px and ``T = 20`` frames with
28 px digits; at another size the digits are area-resized by ``S / 64`` (14 px digits at 32 px), so the motion
and the digits keep the benchmark's proportions.

Clip ``index`` of a split depends on ``(seed, split, index)`` alone, so a longer split starts with the clips of a
shorter one. The digits come from the same split of MNIST as the clip (``train``: the first 55,000 training
images, ``val``: the last 5,000, ``test``: the official 10,000 test images, held out), so test clips never show a
training digit. A clip's label is the class of its first digit (class-conditional Stage II). The MNIST digits are
read offline from the project's cache (:func:`fsq.data.sources.load_images`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from fsq.data.signals import VIDEO, SignalItems
from fsq.data.sources import CLASS_NAMES, load_images

RATE = 10.0  # frames per second: the benchmark has none; the generated blobs' rate
FRAMES = 20  # the benchmark's clip length
SIZE = 64  # the benchmark's square
DIGIT = 28  # MNIST's digit size at SIZE
STEP = 0.1  # the original's step_length: a fraction of the free range (size - digit) per frame
SPLITS = {"train": 0, "val": 1, "test": 2}


class ClipPlan(NamedTuple):
    """What clip ``index`` shows: which digits of its split's pool (``(num_digits,)``) and where their top-left
    corners are in every frame (``(num_digits, frames, 2)`` integer pixels ``(y, x)`` in ``[0, size - digit]``)."""

    digits: np.ndarray
    corners: np.ndarray


def digit_size(size: int) -> int:
    """The side of the digits in an ``size`` px square: 28 at 64 px, scaled in proportion otherwise."""
    return max(1, min(size, round(DIGIT * size / SIZE)))


def trajectory(rng: np.random.Generator, frames: int) -> np.ndarray:
    """``(frames, 2)`` positions ``(y, x)`` in ``[0, 1]`` (of the free range) of one bouncing digit: the original's
    random start and direction, a step of ``STEP`` per frame, reflected at the borders."""
    pos = rng.random(2)
    theta = rng.random() * 2 * np.pi
    vel = np.array([np.sin(theta), np.cos(theta)])
    out = np.empty((frames, 2))
    for f in range(frames):
        pos = pos + vel * STEP
        for axis in range(2):
            if pos[axis] <= 0.0 or pos[axis] >= 1.0:
                pos[axis] = min(max(pos[axis], 0.0), 1.0)
                vel[axis] = -vel[axis]
        out[f] = pos
    return out


def clip_plan(seed: int, split: str, index: int, pool_size: int, frames: int, size: int, num_digits: int) -> ClipPlan:
    """The digits and positions of clip ``index`` of ``split``: a pure function of ``(seed, split, index)`` and the
    pool's size."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS[split], int(index), 0x4D4D]))
    digits = rng.integers(0, pool_size, size=num_digits)
    free = size - digit_size(size)
    corners = np.stack([(trajectory(rng, frames) * free).astype(np.int64) for _ in range(num_digits)])
    return ClipPlan(digits, corners)


def render(plan: ClipPlan, pool: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(frames, size, size)``: the plan's digits (``pool``: uint8 ``(N, d, d)``) at their corners, overlapped
    by the pixel-wise maximum."""
    d = pool.shape[-1]
    video = np.zeros((plan.corners.shape[1], size, size), dtype=np.uint8)
    for digit, corners in zip(plan.digits, plan.corners):
        image = pool[digit]
        for f, (y, x) in enumerate(corners):
            np.maximum(video[f, y : y + d, x : x + d], image, out=video[f, y : y + d, x : x + d])
    return video


@lru_cache(maxsize=4)
def digit_pool(split: str, size: int, cache_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST digits of ``split`` at the side ``digit_size(size)`` (uint8 ``(N, d, d)``) and their classes."""
    d = digit_size(size)
    images = load_images("mnist", split, image_size=None if d == DIGIT else d, cache_dir=cache_dir)
    assert images.labels is not None
    return images.images[:, 0].numpy(), images.labels.numpy()


def moving_mnist_items(
    split: str,
    *,
    seed: int,
    count: int,
    image_size: int = SIZE,
    frames: int = FRAMES,
    num_digits: int = 2,
    cache_dir: str | None = None,
) -> SignalItems:
    """``count`` clips of ``split`` (``train``, ``val`` or ``test``), uint8 ``(count, 1, frames, S, S)`` at 10 fps,
    labelled with the class of their first digit (class names ``"0"``..``"9"``)."""
    if split not in SPLITS:
        raise ValueError(f"moving_mnist has splits {', '.join(SPLITS)} (those of MNIST), got split {split!r}")
    if num_digits < 1 or frames < 1 or image_size < 1 or count < 1:
        raise ValueError(
            f"moving_mnist needs at least one digit, frame, pixel and clip: got num_digits={num_digits}, "
            f"frames={frames}, image_size={image_size}, count={count}"
        )
    pool, classes = digit_pool(split, image_size, cache_dir)
    clips = np.empty((count, 1, frames, image_size, image_size), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        plan = clip_plan(seed, split, i, len(pool), frames, image_size, num_digits)
        clips[i, 0] = render(plan, pool, image_size)
        labels[i] = classes[plan.digits[0]]
    items = SignalItems(
        torch.from_numpy(clips), VIDEO, source="moving_mnist", split=split, rate=RATE, labels=torch.from_numpy(labels)
    )
    items.class_names = list(CLASS_NAMES["mnist"])
    return items
