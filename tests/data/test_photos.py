"""The photos source: preparing from pip packages alone, the fixed train/test split, reproducible crops."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from fsq.data import SourceUnavailable, load_images, photos, prepare
from fsq.data.sources import SourceCorrupt


def _load_or_skip(split: str, **kwargs):
    try:
        return load_images("photos", split, **kwargs)
    except SourceUnavailable as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def pip_only_cache(tmp_path_factory):
    """A cache prepared with the Debian wallpapers hidden: the pip packages alone must suffice."""
    root = tmp_path_factory.mktemp("cache")
    saved, photos.MATE_DIR = photos.MATE_DIR, root / "no-mate"
    try:
        folder = prepare("photos", root)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    finally:
        photos.MATE_DIR = saved
    return root, folder


def test_prepare_from_pip_packages_alone(pip_only_cache):
    root, folder = pip_only_cache
    files = json.loads((folder / "manifest.json").read_text())["files"]
    assert {f["group"] for f in files} <= {"skimage", "sklearn", "foolbox"}
    assert len(files) >= 20
    for f in files:
        assert set(f) >= {"name", "origin", "sha256", "width", "height", "split"}
        assert (folder / f["name"]).is_file() and min(f["width"], f["height"]) >= 256
    train = {f["name"] for f in files if f["split"] == "train"}
    test = {f["name"] for f in files if f["split"] == "test"}
    assert train and test and not train & test
    before = (folder / "manifest.json").stat().st_mtime_ns
    saved, photos.MATE_DIR = photos.MATE_DIR, root / "no-mate"
    try:
        assert prepare("photos", root) == folder  # idempotent: nothing rewritten
    finally:
        photos.MATE_DIR = saved
    assert (folder / "manifest.json").stat().st_mtime_ns == before


def test_split_is_per_group_and_stable_when_packages_are_added():
    base = [(f"foolbox_{k:02d}", "foolbox") for k in range(10)] + [("sklearn_a", "sklearn"), ("sklearn_b", "sklearn")]
    more = base + [(f"mate_{k}", "mate") for k in range(7)]
    splits, splits_more = photos.assign_splits(base), photos.assign_splits(more)
    assert all(splits_more[name] == split for name, split in splits.items())
    assert [n for n, s in splits.items() if s == "test"] == ["foolbox_00", "foolbox_05", "sklearn_a"]


def test_crops_are_deterministic_and_differ_across_seeds_and_splits():
    a = _load_or_skip("train", num_crops=300, seed=0)
    assert a.images.shape == (300, 3, 32, 32) and a.images.dtype == torch.uint8
    assert a.labels is None and a.source == "photos" and a.split == "train"
    assert torch.equal(a.images, load_images("photos", "train", num_crops=300, seed=0).images)
    assert not torch.equal(a.images, load_images("photos", "train", num_crops=300, seed=1).images)
    assert not torch.equal(a.images, load_images("photos", "test", num_crops=300, seed=0).images)
    first = load_images("photos", "train", num_crops=300, seed=0, limit=40)
    assert torch.equal(first.images, a.images[:40])
    assert a.images.float().std() > 20  # real content, not blank patches


def test_val_is_other_crops_of_the_training_photos(monkeypatch):
    """The val split (for tuning) never sees a test photo: its crops are cut from the training photos with its own
    seed; given the training seed instead it cuts exactly the training crops."""
    val = _load_or_skip("val", num_crops=200, seed=0)
    assert val.split == "val" and val.images.shape == (200, 3, 32, 32)
    assert torch.equal(val.images, load_images("photos", "val", num_crops=200, seed=0).images)
    train = load_images("photos", "train", num_crops=200, seed=0)
    assert not torch.equal(val.images, train.images)
    own = photos.split_seed
    monkeypatch.setattr(photos, "split_seed", lambda seed, split: own(seed, "train" if split == "val" else split))
    assert torch.equal(load_images("photos", "val", num_crops=200, seed=0).images, train.images)
    assert len(load_images("photos", "val", limit=3)) == 3


def test_crop_size_channels_and_default_count():
    big = _load_or_skip("test", image_size=48, num_crops=20, channels=1)
    assert big.images.shape == (20, 1, 48, 48)
    assert len(load_images("photos", "test")) == 5_000


def test_crops_come_only_from_the_given_photos():
    red = Image.new("RGB", (400, 300), (255, 0, 0))
    blue = Image.new("RGB", (300, 500), (0, 0, 255))
    levels = [photos.pyramid(red, 32), photos.pyramid(blue, 32)]
    assert [min(level.shape[:2]) for level in levels[1]] == [128, 192, 256]
    crops = photos.random_crops(levels, 500, 32, torch.Generator().manual_seed(0))
    is_red = (crops[:, 0] == 255).all((1, 2)) & (crops[:, 2] == 0).all((1, 2))
    is_blue = (crops[:, 2] == 255).all((1, 2)) & (crops[:, 0] == 0).all((1, 2))
    assert bool((is_red | is_blue).all()) and 150 < int(is_red.sum()) < 350


def test_corrupt_photo_is_detected(tmp_path, pip_only_cache):
    root, folder = pip_only_cache
    files = json.loads((folder / "manifest.json").read_text())["files"]
    name = next(f["name"] for f in files if f["split"] == "test")
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(SourceCorrupt, match=f"{name} has sha256") as info:
        load_images("photos", "test", cache_dir=root, num_crops=10)
    assert "Delete the folder" in str(info.value)
