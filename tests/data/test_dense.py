"""Data of the UViM tasks: shapes, dtypes, value ranges, determinism, splits, options and errors."""

from __future__ import annotations

import pytest
import torch

from fsq.data import SourceUnavailable
from fsq.data.dense import colorization_reference, load_task_data, task_splits


@pytest.mark.parametrize("task", ["depth", "panoptic"])
def test_scene_tasks_give_images_and_labels(task):
    data = load_task_data(task, "train", 8, image_size=16)
    assert {k: (tuple(v.shape), v.dtype) for k, v in data.items()} == {
        "image": ((8, 3, 16, 16), torch.float32),
        "depth": ((8, 1, 16, 16), torch.float32),
        "semantic": ((8, 16, 16), torch.int64),
        "instance": ((8, 16, 16), torch.int64),
    }
    assert 0 <= data["image"].min() and data["image"].max() <= 1 and data["image"].std() > 0.01
    assert (data["depth"] > 0).all() and data["semantic"].max() <= 5 and data["instance"].min() == 0


def test_scene_data_is_deterministic_and_splits_differ():
    a = load_task_data("depth", "val", 8, image_size=16, seed=1)
    b = load_task_data("depth", "val", 8, image_size=16, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["image"], load_task_data("depth", "test", 8, image_size=16, seed=1)["image"])
    assert not torch.equal(a["image"], load_task_data("depth", "val", 8, image_size=16, seed=2)["image"])


def test_scene_config_overrides_apply():
    empty = load_task_data(
        "panoptic", "train", 4, image_size=16, scene_config_overrides={"max_objects": 0, "min_objects": 0}
    )
    assert (empty["instance"] == 0).all() and set(empty["semantic"].unique().tolist()) <= {0, 5}
    with pytest.raises(ValueError, match="scene_config_overrides.*unexpected keyword"):
        load_task_data("depth", "train", 4, image_size=16, scene_config_overrides={"objects": 3})
    with pytest.raises(ValueError, match="image_size as its own argument"):
        load_task_data("depth", "train", 4, image_size=16, scene_config_overrides={"image_size": 8})


def test_errors_name_the_valid_choices():
    assert task_splits("depth") == ("train", "val", "test") == task_splits("colorization")
    with pytest.raises(ValueError, match="unknown task 'normals'.*depth"):
        load_task_data("normals", "train", 4, image_size=16)
    with pytest.raises(ValueError, match=r"colorization data has splits \['train', 'val', 'test'\], got 'dev'"):
        load_task_data("colorization", "dev", 4, image_size=16)
    with pytest.raises(ValueError, match="num must be a positive int"):
        colorization_reference(0, image_size=16)
    with pytest.raises(ValueError, match="num must be a positive int"):
        load_task_data("depth", "train", 0, image_size=16)
    with pytest.raises(ValueError, match="scene_config_overrides apply to"):
        load_task_data("colorization", "train", 4, image_size=16, scene_config_overrides={"max_objects": 2})


def test_colorization_gives_photo_crops():
    try:
        train = load_task_data("colorization", "train", 6, image_size=16)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    assert train["image"].shape == (6, 3, 16, 16) and train["image"].dtype == torch.float32 and list(train) == ["image"]
    assert 0 <= train["image"].min() and train["image"].max() <= 1
    assert torch.equal(train["image"], load_task_data("colorization", "train", 6, image_size=16)["image"])
    test = load_task_data("colorization", "test", 6, image_size=16)
    assert not torch.equal(train["image"], test["image"])


def _shared_crops(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many crops of ``a`` equal some crop of ``b``."""
    return int((a.flatten(1)[:, None] == b.flatten(1)[None]).all(-1).any(1).sum())


def test_colorization_val_and_fid_reference_are_disjoint_from_the_ground_truths():
    try:
        train = load_task_data("colorization", "train", 200, image_size=16)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    val = load_task_data("colorization", "val", 200, image_size=16)["image"]
    test = load_task_data("colorization", "test", 200, image_size=16)["image"]
    reference = colorization_reference(200, image_size=16, exclude=test)  # for test: other crops of the test photos
    assert reference.shape == (200, 3, 16, 16)
    assert torch.equal(reference, colorization_reference(200, image_size=16, exclude=test))
    drawn = colorization_reference(200, image_size=16)  # without exclusion a crop can coincide by chance
    assert _shared_crops(drawn, test) <= 2
    tuning = colorization_reference(200, image_size=16, split="val", exclude=val)  # for val: the training photos
    # the FID references hold none of their split's ground truths (ColTran's protocol), val none of test's
    assert _shared_crops(reference, test) == 0 and _shared_crops(tuning, val) == 0
    assert _shared_crops(val, test) == 0 and _shared_crops(val, train["image"]) < 5  # own seed: other crops
    assert not torch.equal(reference, colorization_reference(200, image_size=16, seed=1, exclude=test))
    # from the split's own photos: the test reference's colours are the test crops', not the training ones'
    colours = lambda x: x.mean((0, 2, 3))  # noqa: E731
    assert (colours(reference) - colours(test)).abs().sum() < (colours(tuning) - colours(test)).abs().sum()
    with pytest.raises(ValueError, match="split must be one of"):
        colorization_reference(4, image_size=16, split="heldout")
