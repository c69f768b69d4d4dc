"""A Hugging Face imagefolder names a ``val/`` folder's split ``validation``; fsq's default eval split is ``val``:
either name finds it (issue 24, item 11)."""

from __future__ import annotations

import pytest
from PIL import Image

from fsq.data.hf import _split_name, load_local


def test_split_aliases():
    assert _split_name("val", ["train", "validation"]) == "validation"
    assert _split_name("validation", ["train", "val"]) == "val"
    assert _split_name("val", ["train", "val", "validation"]) == "val"  # its own name first
    assert _split_name("test", ["train", "validation"]) == "test"  # no alias: the error lists the splits


def test_an_imagefolder_val_split_is_found_as_val(tmp_path):
    pytest.importorskip("datasets")
    for split, n in (("train", 3), ("val", 2)):
        (tmp_path / split).mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / split / f"{i}.png")
    assert len(load_local(str(tmp_path), "val", cache_dir=str(tmp_path / "cache"))) == 2
    assert len(load_local(str(tmp_path), "validation", cache_dir=str(tmp_path / "cache"))) == 2
