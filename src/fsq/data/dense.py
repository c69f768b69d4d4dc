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
                  ``colorization_reference``: other crops of the evaluated split's photos (seed ``seed + 3``: the
                  test photos for ``test``, the training photos for ``val``), a reference set for FID from the
                  predictions' distribution that holds none of their ground truths (ColTran's protocol: ImageNet
                  val predictions against ImageNet images, one distribution).
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
REFERENCE_SEED_OFFSET = 3  # colorization_reference: crops of the evaluated split's photos with seed + 3


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


def photo_source_split(split: str) -> str:
    """The photos source's split that ``split``'s crops are cut from (``val``: the training photos)."""
    return PHOTO_EXTRA_SPLITS.get(split, (split, 0))[0]


def colorization_reference(
    num: int,
    *,
    image_size: int,
    seed: int = 0,
    split: str = "test",
    exclude: torch.Tensor | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> torch.Tensor:
    """``num`` colour crops (N, 3, H, W) float32 in [0, 1] to compare the colorizations of ``split`` with (FID,
    ColTran's protocol: the reference comes from the predictions' own distribution).

    They are crops of the photos ``split``'s crops come from (``test``: the test photos; ``val`` and ``train``: the
    training photos) drawn with ``seed + 3``, a seed no split's crops use. The photos are few, so a crop can
    coincide with one of the split's by chance (1 in 200 at 16 px): crops equal to one of ``exclude`` (the ground
    truths the reference will judge) are skipped and others drawn in their place. A reference from the training
    photos for ``test`` scored the test ground truths themselves worse than the models (FID 207.8 vs 200.6 for the
    oracle): the test photos are other photos, with other colours.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    if split not in PHOTO_SPLITS:
        raise ValueError(f"split must be one of {PHOTO_SPLITS}, got {split!r}")
    photos = photo_source_split(split)
    spare = 0 if exclude is None else 8 + num // 10
    crops = _photo_crops(photos, num + spare, image_size, seed + REFERENCE_SEED_OFFSET, cache_dir)["image"]
    if exclude is not None:
        taken = {_crop_key(x) for x in exclude}
        crops = torch.stack([c for c in crops if _crop_key(c) not in taken])
        if len(crops) < num:
            raise ValueError(f"only {len(crops)} reference crops differ from the {len(exclude)} excluded; lower num")
    return crops[:num]


def _crop_key(crop: torch.Tensor) -> bytes:
    """A crop's identity: its pixels as 8-bit values (the photos' own resolution)."""
    return (crop.float() * 255).round().to(torch.uint8).numpy().tobytes()
