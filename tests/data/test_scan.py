"""Folder scanning: symbolic links followed once per real folder and file, unreadable folders counted and named."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fsq.data.images import load_folder
from fsq.data.scan import scan_folder


def _png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(path)


def _names(scan, root):
    return [p.relative_to(root).as_posix() for p in scan.files]


def test_link_cycles_end_and_each_folder_is_read_once(tmp_path):
    root = tmp_path / "r"
    _png(root / "a" / "x.png")
    _png(root / "b" / "y.png")
    (root / "a" / "loop").symlink_to(root / "a")  # a cycle
    (root / "b" / "up").symlink_to(root)  # back to the top: every image again, forever, before
    (root / "self").symlink_to(".")
    scan = scan_folder(root)
    assert _names(scan, root) == ["a/x.png", "b/y.png"] and scan.folders == 3
    assert sorted(name for name, _ in scan.duplicates) == ["a/loop/", "b/up/", "self/"]
    assert dict(scan.duplicates)["self/"] == "same folder as ./ (already scanned)"


def test_plain_path_wins_over_a_link_and_outside_folders_load_once(tmp_path):
    root, outside = tmp_path / "r", tmp_path / "outside"
    _png(root / "z_real" / "a.png")
    (root / "a_link").symlink_to(root / "z_real")  # sorts first, but the plain path wins
    _png(outside / "o.png")
    (root / "ext").symlink_to(outside)
    (root / "ext2").symlink_to(outside)
    scan = scan_folder(root)
    assert _names(scan, root) == ["ext/o.png", "z_real/a.png"]
    assert dict(scan.duplicates) == {
        "a_link/": "same folder as z_real/ (already scanned)",
        "ext2/": "same folder as ext/ (already scanned)",
    }


def test_linked_files_count_once_hard_links_twice(tmp_path):
    root = tmp_path / "r"
    _png(root / "x.png", 10)
    (root / "b_link.png").symlink_to(root / "x.png")
    _png(tmp_path / "far.png", 20)
    (root / "c.png").symlink_to(tmp_path / "far.png")
    (root / "d.png").symlink_to(tmp_path / "far.png")
    os.link(root / "x.png", root / "hard.png")
    ds = load_folder(root)
    assert [int(image[0, 0, 0]) for image in ds.images] == [20, 10, 10]  # c.png (first link to far.png), hard, x
    assert sorted(ds.skip_reasons) == [("b_link.png", "same file as x.png"), ("d.png", "same file as c.png")]


def test_self_link_loads_every_image_once_with_classes(tmp_path):
    root = tmp_path / "r"
    _png(root / "cat" / "a.png", 1)
    _png(root / "dog" / "b.png", 2)
    (root / "dog" / "cats").symlink_to(root / "cat")
    (root / "dog" / "again").symlink_to(root)
    ds = load_folder(root, on_error="raise")  # duplicates are not errors
    assert len(ds) == 2 and ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 1]
    assert sorted(ds.skipped) == ["dog/again/", "dog/cats/"]


def _deny(monkeypatch, denied):
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(denied):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folder_is_counted_reported_and_raised(tmp_path, monkeypatch, caplog):
    root = tmp_path / "r"
    _png(root / "ok" / "a.png")
    _png(root / "secret" / "b.png")
    _deny(monkeypatch, root / "secret")  # works as root too, where chmod 000 denies nothing
    with caplog.at_level(logging.WARNING, logger="fsq.data.images"):
        ds = load_folder(root)
    assert len(ds) == 1 and ds.skip_reasons == [("secret/", "cannot read folder: Permission denied")]
    assert "skipped 1 unreadable folders: secret/" in caplog.text
    with pytest.raises(ValueError, match=r"cannot read folder: Permission denied: .*secret"):
        load_folder(root, on_error="raise")


def test_unreadable_root_is_a_clear_error(tmp_path, monkeypatch):
    _png(tmp_path / "a.png")
    _deny(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match=r"no decodable images.*1 unreadable"):
        load_folder(tmp_path)


def test_chmod_000_folder_is_counted():
    """A real permission denial (as root, the check runs with the effective uid of ``nobody``: root reads any mode)."""
    root = Path(tempfile.mkdtemp(prefix="fsq-scan-"))  # outside pytest's 0700 tmp tree: nobody must traverse it
    try:
        root.chmod(0o755)
        _png(root / "ok" / "a.png")
        _png(root / "locked" / "b.png")
        (root / "locked").chmod(0)
        as_root = os.geteuid() == 0
        if as_root:
            os.seteuid(65534)
        try:
            assert load_folder(root).skipped == ["locked/"]
        finally:
            if as_root:
                os.seteuid(0)
    finally:
        (root / "locked").chmod(0o755)
        shutil.rmtree(root)
