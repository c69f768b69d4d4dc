"""User image folders: classes from sub-folders, bad files counted and reported, errors that name the file."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from fsq.data import ImageSet, load_images
from fsq.data.images import convert_channels, load_folder, resize_uint8


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    _png(root / "cat" / "a.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    _png(root / "cat" / "b.PNG", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / "cat" / "c.JPG", format="JPEG")
    _png(root / "dog" / "deep" / "d.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    _png(root / "dog" / "wide.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))  # the wrong size
    (root / "dog" / "broken.jpg").write_bytes(os.urandom(300))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored silently")
    return root


def test_classes_and_bad_files_are_counted(folder, caplog):
    with caplog.at_level(logging.WARNING, logger="fsq.data.images"):
        ds = load_images(folder, "all")
    assert isinstance(ds, ImageSet) and ds.images.shape == (4, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 0, 1]
    assert ds.skipped == ["dog/broken.jpg", "dog/wide.png", "notes.txt"]
    text = caplog.text
    assert "skipped 1 undecodable image files: dog/broken.jpg" in text
    assert "skipped 1 images of another size: dog/wide.png" in text and "ignored 1 non-image files" in text
    expected = np.array(Image.open(folder / "cat" / "a.png"))
    assert torch.equal(ds.images[0], torch.from_numpy(expected).permute(2, 0, 1))  # PNG pixels unchanged


def test_on_error_raise_names_the_file(folder):
    with pytest.raises(ValueError, match="broken.jpg"):
        load_images(folder, "all", on_error="raise")
    (folder / "dog" / "broken.jpg").unlink()
    with pytest.raises(ValueError, match="wide.png.*image_size"):
        load_folder(folder, on_error="raise")


def test_image_size_crops_and_resizes_everything(folder):
    ds = load_images(folder, "all", image_size=6, channels=1)
    assert ds.images.shape == (5, 1, 6, 6) and ds.skipped == ["dog/broken.jpg", "notes.txt"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]


def test_center_crop_keeps_the_middle(tmp_path):
    array = np.zeros((4, 8, 3), dtype=np.uint8)
    array[:, 2:6] = 200  # the centred 4x4 square
    _png(tmp_path / "x.png", array)
    ds = load_folder(tmp_path, image_size=4)
    assert ds.labels is None and ds.class_names is None
    assert bool((ds.images == 200).all())


def test_flat_folder_has_no_labels_and_limit_keeps_the_first(folder):
    _png(folder / "top.png", np.zeros((8, 8, 3), dtype=np.uint8))
    ds = load_images(folder, "all", limit=2)
    assert ds.labels is None and ds.class_names is None and len(ds) == 2


def test_split_sub_folder(folder, tmp_path):
    ds = load_images(folder, "cat")
    assert len(ds) == 3 and ds.split == "cat" and ds.labels is None
    with pytest.raises(ValueError, match="no 'train' sub-folder.*split='all'"):
        load_images(folder, "train")


def test_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no decodable images"):
        load_images(tmp_path, "all")
    (tmp_path / "readme.txt").write_text("hi")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"no decodable images.*1 undecodable.*1 other"):
        load_folder(tmp_path)


def test_resize_uint8_and_channels():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) * 10
    down = resize_uint8(x, (2, 2))
    assert down.tolist() == [[[[25, 45], [105, 125]]]]  # means of 2x2 blocks
    assert resize_uint8(x, (9, 7)).shape == (1, 1, 9, 7) and resize_uint8(x, (4, 4)) is x
    rgb = convert_channels(x, 3)
    assert rgb.shape == (1, 3, 4, 4) and torch.equal(convert_channels(rgb, 1), x)
    with pytest.raises(ValueError, match="uint8"):
        resize_uint8(x.float(), (2, 2))
