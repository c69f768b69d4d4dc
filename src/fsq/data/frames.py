"""The frames of a generated video source as an image source: ``frames:blobs`` gives every frame of the ``blobs``
clips of a split as a grey (or colour) image, so an image (2-D) tokenizer can be trained on the frames of the same
data a video tokenizer sees, and compared with it frame by frame at equal bits (:mod:`fsq.models.baselines`).

Clip ``i`` of a split is the generated source's clip ``i`` for the same seed (``train.seed``), so with equal seeds
the frames are those of the video tokenizer's clips; images are clip-major (clip 0's frames first). ``count``
counts images: the first ``count`` frames, from the fewest clips that hold them.
"""

from __future__ import annotations

import math

from fsq.data.images import ImageSet
from fsq.data.signals import VIDEO
from fsq.data.synthetic_signals import CLIP_LENGTHS, SOURCES, generated_items

FRAMES_PREFIX = "frames:"


def is_frames_source(source: str) -> bool:
    """Whether ``data.source`` names the frames of a generated video source (``frames:NAME``)."""
    return source.startswith(FRAMES_PREFIX)


def frame_images(
    source: str, split: str, *, seed: int, count: int | None = None, image_size: int = 16, channels: int | None = None
) -> ImageSet:
    """Every frame of the clips of ``split`` of the video source ``source`` names (``frames:NAME``), uint8
    ``(N T, C, H, W)`` in memory, without labels. Raises ``ValueError`` naming the video sources for another name."""
    name = source[len(FRAMES_PREFIX) :] if is_frames_source(source) else source
    videos = [k for k, kind in SOURCES.items() if kind is VIDEO]
    if SOURCES.get(name) is not VIDEO:
        raise ValueError(
            f"data.source={source!r}: frames come from a generated video source; use one of "
            + ", ".join(f"{FRAMES_PREFIX}{k}" for k in videos)
        )
    clips = None if count is None else math.ceil(count / CLIP_LENGTHS[name])
    items = generated_items(name, split, seed=seed, count=clips, image_size=image_size, channels=channels)
    images = items.clips.transpose(1, 2).flatten(0, 1)  # (N T, C, H, W), clip-major
    if count is not None:
        images = images[:count]
    return ImageSet(images.contiguous(), None, None, f"{FRAMES_PREFIX}{name}", split)
