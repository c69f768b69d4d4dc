"""The ``photos`` source: real colour photos shipped inside installed packages, and random crops of them.

Where the photos come from (found on disk, no package is imported):

- scikit-image's bundled colour photos: astronaut, chelsea (the cat), coffee, hubble_deep_field, ihc
  (immunohistochemistry), motorcycle_left (the right view of the stereo pair is left out: it is nearly the same
  picture), retina, rocket. Synthetic images (colorwheel, logo, ...) and grey textures are left out.
- scikit-learn's ``china.jpg`` and ``flower.jpg``.
- foolbox's 20 ImageNet samples ``imagenet_*.jpg`` (``pip install --no-deps foolbox``).
- optionally Debian's ``mate-backgrounds`` nature photos, ``/usr/share/backgrounds/mate/nature/*.jpg``.

Split, fixed and independent of which other packages are installed: within each group, in sorted name order,
every 5th photo (positions 0, 5, 10, ...) is ``test``, the rest ``train``. Crops never mix the two. The ``val``
split, for tuning, is other random crops of the ``train`` photos (its own seed, ``split_seed(seed, "val")``): it
never sees a test photo, but shares photos with training, so it measures fit to new crops, not to new photos
(there are too few photos to hold out a third set).

Crops: each photo is first reduced to a small pyramid whose short sides are ``4, 6, 8`` times the crop size
(area averaging with PIL's box filter; a photo is never enlarged beyond its own short side, nor below the crop
size). A crop picks a pyramid level of a photo uniformly at random (so every photo and scale is equally likely),
then a position uniformly at random. A crop thus covers between 1/8 and 1/4 of a photo's short side: real
structure, not single-colour patches. Randomness comes from a ``torch.Generator`` seeded by
``split_seed(seed, split)``, so the same seed gives the same crops on every machine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
MATE_DIR = Path("/usr/share/backgrounds/mate/nature")
VAL_FROM = "train"  # the photos the val crops are cut from
TEST_EVERY = 5  # within each group, sorted positions 0, 5, 10, ... are the test split
SCALES = (4, 6, 8)  # pyramid short sides, in multiples of the crop size


@dataclass(frozen=True)
class PhotoFile:
    """One installed photo: ``name`` in the cache (``<group>_<file name>``), its ``group`` and ``origin``."""

    name: str
    group: str
    origin: str
    path: Path


def _package_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def find_photos(mate_dir: Path | None = None) -> list[PhotoFile]:
    """Every photo of the module docstring that is installed on this machine, sorted by cache name."""
    mate_dir = MATE_DIR if mate_dir is None else Path(mate_dir)
    found: list[PhotoFile] = []

    def add(group: str, folder: Path | None, names: tuple[str, ...] | list[str], origin: str) -> None:
        for file_name in names:
            path = folder / file_name if folder is not None else None
            if path is not None and path.is_file():
                found.append(PhotoFile(f"{group}_{file_name}", group, f"{origin}: {path}", path))

    skimage = _package_dir("skimage")
    add("skimage", skimage and skimage / "data", SKIMAGE_PHOTOS, f"scikit-image {_version('scikit-image')}")
    sklearn = _package_dir("sklearn")
    add(
        "sklearn",
        sklearn and sklearn / "datasets" / "images",
        SKLEARN_PHOTOS,
        f"scikit-learn {_version('scikit-learn')}",
    )
    foolbox = _package_dir("foolbox")
    if foolbox is not None and (foolbox / "data").is_dir():
        names = sorted(p.name for p in (foolbox / "data").glob("imagenet_*.jpg"))
        add("foolbox", foolbox / "data", names, f"foolbox {_version('foolbox')}")
    if mate_dir.is_dir():
        names = sorted(p.name for p in mate_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        add("mate", mate_dir, names, "Debian mate-backgrounds")
    return sorted(found, key=lambda photo: photo.name)


def assign_splits(names_and_groups: list[tuple[str, str]]) -> dict[str, str]:
    """``{name: "train" | "test"}``: within each group, sorted positions 0, 5, 10, ... are ``test``."""
    groups: dict[str, list[str]] = {}
    for name, group in names_and_groups:
        groups.setdefault(group, []).append(name)
    splits = {}
    for names in groups.values():
        for position, name in enumerate(sorted(names)):
            splits[name] = "test" if position % TEST_EVERY == 0 else "train"
    return splits


def split_seed(seed: int, split: str) -> int:
    """A seed for ``split`` derived from ``seed`` and the split's name (stable across processes and machines)."""
    return zlib.crc32(f"fsq.photos:{split}:{int(seed)}".encode())


def decode_photo(path: Path, crop_size: int) -> Image.Image:
    """Open a photo as an RGB PIL image; large JPEGs are decoded at a reduced scale (DCT scaling) that still
    leaves the short side at least ``max(SCALES) * crop_size``."""
    with Image.open(path) as img:
        ratio = max(SCALES) * crop_size / min(img.size)
        if ratio < 1:
            img.draft("RGB", (math.ceil(img.size[0] * ratio), math.ceil(img.size[1] * ratio)))
        return img.convert("RGB")


def pyramid(photo: Image.Image, crop_size: int) -> list[np.ndarray]:
    """The photo resized so its short side is ``k * crop_size`` for each ``k`` in ``SCALES`` (never enlarged
    beyond the original short side, never below ``crop_size``), as uint8 ``(h, w, 3)`` arrays.

    Shrinking uses PIL's box filter (exact area averaging, uint8 SIMD: ~10x faster than torch on a busy CPU).
    """
    width, height = photo.size
    short = min(width, height)
    levels = []
    for k in SCALES:
        target = max(min(k * crop_size, short), crop_size)
        size = (max(crop_size, round(width * target / short)), max(crop_size, round(height * target / short)))
        resample = Image.Resampling.BOX if target <= short else Image.Resampling.BILINEAR
        level = photo if size == photo.size else photo.resize(size, resample)
        levels.append(np.asarray(level, dtype=np.uint8))
    return levels


def random_crops(
    pyramids: list[list[np.ndarray]], num: int, crop_size: int, generator: torch.Generator, keep: int | None = None
) -> torch.Tensor:
    """``num`` random ``crop_size`` crops, uint8 ``(num, 3, s, s)``; with ``keep``, only the first ``keep`` of
    them are cut (the same ones as without ``keep``).

    Cutting is done in numpy: many small torch ops are slow when other processes keep the CPU busy.
    """
    levels = [level for levels in pyramids for level in levels]
    if not levels:
        raise ValueError("no photos to crop from")
    which = torch.randint(len(levels), (num,), generator=generator).numpy()
    where = torch.rand((num, 2), generator=generator, dtype=torch.float64).numpy()
    if keep is not None:
        which, where = which[:keep], where[:keep]
    out = np.empty((which.shape[0], 3, crop_size, crop_size), dtype=np.uint8)
    for k, level in enumerate(levels):
        index = np.flatnonzero(which == k)
        if index.size == 0:
            continue
        height, width = level.shape[:2]
        top = np.minimum((where[index, 0] * (height - crop_size + 1)).astype(np.int64), height - crop_size)
        left = np.minimum((where[index, 1] * (width - crop_size + 1)).astype(np.int64), width - crop_size)
        windows = np.lib.stride_tricks.sliding_window_view(level, (crop_size, crop_size), axis=(0, 1))
        out[index] = windows[top, left]  # windows: (H - s + 1, W - s + 1, 3, s, s), a view
    return torch.from_numpy(out)
