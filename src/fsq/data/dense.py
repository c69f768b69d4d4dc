"""Data of the UViM tasks as batches: ``load_task_data("depth", "train", 512, image_size=32)``.

depth, panoptic   synthetic scenes (``fsq.data.scenes``) rendered with ``SceneConfig(image_size=image_size,
                  **scene_config_overrides)``; splits train / val / test draw from disjoint scene seeds.
                  Keys: ``image`` (N, 3, H, W) float32 in [0, 1], ``depth`` (N, 1, H, W) float32 z-depth in metres,
                  ``semantic`` and ``instance`` (N, H, W) int64 (both tasks get all four).
colorization      ``num`` random crops of the real ``"photos"`` source (``fsq.data.sources``); splits train / test
                  come from disjoint source photos (the test crops are drawn with ``seed + 1``); val crops come from
                  the training photos with their own seed (``seed + 2``): the source has train and test photos only,
                  so a val of other photos would have to take from test. Key: ``image`` (N, 3, H, W) float32 in
                  [0, 1], the colour photo (the task derives the grey input from it).
                  ``colorization_reference``: crops of the training photos (seed ``seed + 3``), a reference set for
                  FID that holds none of the val or test ground truths (ColTran's protocol).
The same arguments always give the same tensors.
"""

from __future__ import annotations

import os

import torch

from fsq.data.scenes import SPLITS as SCENE_SPLITS
from fsq.data.scenes import SceneConfig, render_dataset
from fsq.data.sources import SPLITS as SOURCE_SPLITS
from fsq.data.sources import load_images

SCENE_TASKS = ("depth", "panoptic")
PHOTO_TASKS = ("colorization",)
# photo splits beyond the source's own: name -> (source split the crops come from, seed offset)
PHOTO_EXTRA_SPLITS = {"val": ("train", 2)}
PHOTO_SPLITS = ("train", "val", "test")
assert set(PHOTO_SPLITS) == set(SOURCE_SPLITS["photos"])  # val is the colorization's own (PHOTO_EXTRA_SPLITS)
REFERENCE_SEED_OFFSET = 3  # colorization_reference: crops of the training photos with seed + 3


def task_splits(task_name: str) -> tuple[str, ...]:
    """The splits ``load_task_data`` accepts for a task."""
    if task_name in SCENE_TASKS:
        return tuple(SCENE_SPLITS)
    if task_name in PHOTO_TASKS:
        return PHOTO_SPLITS
    raise ValueError(f"unknown task {task_name!r}; the tasks with data are {[*SCENE_TASKS, *PHOTO_TASKS]}")


def load_task_data(
    task_name: str,
    split: str,
    num: int,
    *,
    image_size: int,
    seed: int = 0,
    scene_config_overrides: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, torch.Tensor]:
    """``num`` examples of ``split`` for the task, as a dict of tensors (see the module docstring).

    Args:
        task_name: ``"depth"``, ``"panoptic"`` or ``"colorization"``.
        split: one of ``task_splits(task_name)``.
        num: number of examples (>= 1).
        image_size: square side in pixels.
        seed: scene seed offset (scenes) or crop seed (photos).
        scene_config_overrides: further ``SceneConfig`` fields (scenes only), e.g. ``{"max_objects": 3}``.
        cache_dir: the data cache (photos only; default ``fsq.data.cache_dir()``).

    Raises:
        ValueError: an unknown task or split, ``num < 1``, or options that do not apply to the task.
        fsq.data.SourceUnavailable: colorization when the photos source is not prepared.
    """
    splits = task_splits(task_name)
    if split not in splits:
        raise ValueError(f"{task_name} data has splits {list(splits)}, got {split!r}")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    if task_name in PHOTO_TASKS:
        if scene_config_overrides:
            raise ValueError(f"scene_config_overrides apply to {list(SCENE_TASKS)} only, not {task_name!r}")
        source_split, offset = PHOTO_EXTRA_SPLITS.get(split, (split, 0 if split == "train" else 1))
        return _photo_crops(source_split, num, image_size, seed + offset, cache_dir)
    overrides = dict(scene_config_overrides or {})
    if "image_size" in overrides:
        raise ValueError("give image_size as its own argument, not in scene_config_overrides")
    try:
        config = SceneConfig(image_size=image_size, **overrides)
    except TypeError as error:
        raise ValueError(f"scene_config_overrides: {error}") from None
    data = render_dataset(split, num, config, seed=seed)
    return {
        "image": data["images"].float() / 255,
        "depth": data["depth"],
        "semantic": data["semantic"],
        "instance": data["instance"],
    }


def _photo_crops(
    source_split: str, num: int, image_size: int, seed: int, cache_dir: str | os.PathLike | None
) -> dict[str, torch.Tensor]:
    crops = load_images(
        "photos", source_split, image_size=image_size, num_crops=num, seed=seed, channels=3, cache_dir=cache_dir
    )
    return {"image": crops.images.float() / 255}


def colorization_reference(
    num: int, *, image_size: int, seed: int = 0, cache_dir: str | os.PathLike | None = None
) -> torch.Tensor:
    """``num`` colour crops (N, 3, H, W) float32 in [0, 1] to compare colorizations with (FID, ColTran's protocol).

    They are crops of the training photos drawn with ``seed + 3``, so none is the ground truth of a val or test
    prediction (test crops come from other photos; val crops use ``seed + 2``).
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    return _photo_crops("train", num, image_size, seed + REFERENCE_SEED_OFFSET, cache_dir)["image"]
