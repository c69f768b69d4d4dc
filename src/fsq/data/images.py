"""In-memory image sets, uint8 resizing, and image folders decoded up front.

``ImageSet`` is what training code consumes: a uint8 tensor ``(N, C, H, W)`` plus optional int64 labels. Folders
of image files (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff``, ``.webp``, any case,
searched recursively; multi-frame files give their first frame) load into one with ``load_folder``. Every file
is decoded here, before any training starts, so a bad file is reported at load time instead of crashing a
data-loader worker later:

- files that cannot be decoded (corrupt, truncated, empty, not an image, pixel values with no 8-bit scale, or
  larger than Pillow's decompression-bomb limit ``PIL.Image.MAX_IMAGE_PIXELS``), and images whose size differs
  from the rest when no ``image_size`` is given, are skipped with a ``logging`` warning (``on_error="skip"``)
  or raise a ``ValueError`` naming the file (``on_error="raise"``);
- folders that cannot be read (permission denied) are skipped and warned about the same way, or raise;
- files without an image extension are never decoded; they are counted and logged;
- hidden files and folders (names starting with ``.``) are ignored;
- symbolic links are followed once per real folder and file (``fsq.data.scan``): a link cycle or a link to a
  folder already read ends there, and an image reached by several paths is loaded once.

Everything passed over is listed in ``ImageSet.skipped`` (relative paths, folders ending in ``/``) and, with the
reason for each, in ``ImageSet.skip_reasons``. Pixels are scaled to 8 bits by ``fsq.data.pixels`` (16-bit,
float, palette, CMYK, LAB and other modes; transparency composited on white), after the EXIF orientation is
applied (``ImageOps.exif_transpose``), so photos appear upright as viewers show them.

If every image sits in a first-level sub-folder, the sub-folder names (sorted) are the classes; otherwise
``labels`` is ``None``. With ``image_size``, each image is centre-cropped to a square and resized to
``image_size`` px (area averaging when shrinking, antialiased bilinear when enlarging).
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from fsq.data.pixels import low_bytes, to_uint8
from fsq.data.scan import scan_folder

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
OnError = Literal["skip", "raise"]
# what decoding a bad file raises (Pillow's own errors, and struct/zlib/EOF errors some of its plugins let through)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)
_LOG_NAMES = 5  # how many file names a warning lists


@dataclass
class ImageSet:
    """Images held in memory: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)`` or ``None``.

    ``class_names[k]`` names label ``k``; ``source`` and ``split`` say where the images came from. For an image
    folder, ``skipped`` lists the files and folders that were not loaded (paths relative to ``source``, folders
    ending in ``/``), and ``skip_reasons`` the same paths with the reason for each, ``(path, reason)`` in the same
    order (undecodable files, images of another size, non-image files, duplicate links, unreadable folders), for
    a caller to save or show.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: list[str] | None
    source: str
    split: str
    skipped: list[str] = field(default_factory=list)
    skip_reasons: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, H, W), got {self.images.dtype} of shape "
                f"{tuple(self.images.shape)}"
            )
        if self.labels is not None:
            if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
                raise ValueError(
                    f"labels must be int64 of shape ({self.images.shape[0]},), got {self.labels.dtype} of shape "
                    f"{tuple(self.labels.shape)}"
                )
            if self.class_names is not None and len(self.labels) and int(self.labels.max()) >= len(self.class_names):
                raise ValueError(
                    f"label {int(self.labels.max())} has no entry in class_names ({len(self.class_names)})"
                )

    def __len__(self) -> int:
        return self.images.shape[0]


def resize_uint8(images: torch.Tensor, size: tuple[int, int], *, chunk: int = 8192) -> torch.Tensor:
    """Resize uint8 images ``(N, C, H, W)`` or ``(C, H, W)`` to ``size = (height, width)``, returning uint8.

    Shrinking (both sides no larger) averages areas (``mode="area"``); anything else is antialiased bilinear.
    Work is done in float32 in chunks of ``chunk`` images, then rounded and clamped back to uint8.
    """
    if images.dtype != torch.uint8 or images.ndim not in (3, 4):
        raise ValueError(f"expected uint8 images (N, C, H, W) or (C, H, W), got {images.dtype} {tuple(images.shape)}")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    if tuple(images.shape[-2:]) == (height, width):
        return images
    if images.ndim == 3:
        return resize_uint8(images[None], size, chunk=chunk)[0]
    shrink = height <= images.shape[-2] and width <= images.shape[-1]
    out = torch.empty((*images.shape[:2], height, width), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        x = images[start : start + chunk].float()
        if shrink:
            y = F.interpolate(x, size=(height, width), mode="area")
        else:
            y = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        out[start : start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def center_crop_square(image: torch.Tensor) -> torch.Tensor:
    """The largest centred square of an image ``(..., H, W)``."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[..., top : top + side, left : left + side]


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` with C in {1, 3} to ``channels``: grey is repeated, RGB becomes ITU-R 601 luma."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have != 3:
        raise ValueError(f"cannot convert {have} channels to {channels}")
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


def decode_image(
    path: Path | BinaryIO, *, channels: int = 3, image_size: int | None = None, draft_size: int | None = None
) -> torch.Tensor:
    """Decode one image file (a path or an open binary file) to uint8 ``(C, H, W)`` (EXIF rotation applied),
    centre-cropped to a square and resized to ``image_size`` px if asked.

    ``draft_size`` (without ``image_size``): let JPEGs decode at a reduced scale that keeps both sides at least
    ``draft_size`` px (Pillow's ``draft``), for transforms that crop and resize afterwards.

    Any Pillow mode is scaled to 8 bits by the rules of ``fsq.data.pixels``. Raises ``OSError``/``ValueError``
    (or another of Pillow's decoding errors) for files that are not decodable images, and ``ValueError`` for
    images above Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS`` pixels: raise it to allow
    larger images) and for pixel values with no defined 8-bit scale.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise ValueError(f"image too large to decode safely: {error}") from error
    with img:
        low = low_bytes(img)
        try:
            draft = image_size if image_size is not None else draft_size
            if draft is not None and low is None:
                img.draft("RGB" if channels == 3 else "L", (draft, draft))  # JPEG: decode at reduced scale
            low_upright = None if low is None else ImageOps.exif_transpose(low)
            array = to_uint8(ImageOps.exif_transpose(img), channels, low=low_upright)
        finally:
            if low is not None:
                low.close()
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)
    if image_size is not None:
        tensor = resize_uint8(center_crop_square(tensor), (image_size, image_size))
    return tensor.contiguous()


def _classes(root: Path, files: list[Path]) -> list[str] | None:
    """Sorted first-level sub-folder names if every image file sits inside one, else ``None``."""
    parts = [p.relative_to(root).parts for p in files]
    if not parts or any(len(part) < 2 for part in parts):
        return None
    return sorted({part[0] for part in parts})


def load_folder(
    root: str | os.PathLike,
    *,
    image_size: int | None = None,
    channels: int = 3,
    on_error: OnError = "skip",
    limit: int | None = None,
    split: str = "all",
) -> ImageSet:
    """Decode every image under ``root`` into an ``ImageSet`` (see the module docstring for the rules).

    ``limit`` keeps the first ``limit`` decodable images in sorted path order (decoding stops there).
    Without ``image_size`` all images must share one size: the most common size is kept, the others are skipped
    (or raise with ``on_error="raise"``). What was skipped, and why, is in the result's ``skipped`` and
    ``skip_reasons``.
    """
    root = Path(root)
    if not root.exists():
        raise ValueError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"image folder {root} is a file, not a folder: pass the folder that holds the images")
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size!r}")
    scan = scan_folder(root)
    if scan.unreadable and on_error == "raise":
        name, reason = scan.unreadable[0]
        raise ValueError(f"{reason}: {root / name}")
    files = [p for p in scan.files if p.suffix.lower() in IMAGE_EXTENSIONS]
    others = [p for p in scan.files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    class_names = _classes(root, files)
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    decoded: list[tuple[Path, torch.Tensor]] = []
    failed: list[tuple[str, str]] = []
    for path in files:
        if limit is not None and len(decoded) >= limit:
            break
        try:
            decoded.append((path, decode_image(path, channels=channels, image_size=image_size)))
        except _DECODE_ERRORS as error:
            if on_error == "raise":
                raise ValueError(f"cannot decode image {path}: {error}") from error
            failed.append((rel(path), f"cannot decode: {error}"))
    wrong_size: list[tuple[str, str]] = []
    if image_size is None and decoded:
        sizes = Counter(tuple(t.shape[-2:]) for _, t in decoded)
        common = sizes.most_common(1)[0][0]
        for path, tensor in decoded:
            if tuple(tensor.shape[-2:]) != common:
                if on_error == "raise":
                    raise ValueError(
                        f"image {path} is {tensor.shape[-1]}x{tensor.shape[-2]} px but most images in {root} are "
                        f"{common[1]}x{common[0]}: pass image_size to crop and resize them all"
                    )
                wrong_size.append(
                    (rel(path), f"{tensor.shape[-1]}x{tensor.shape[-2]} px, most images are {common[1]}x{common[0]}")
                )
        decoded = [(p, t) for p, t in decoded if tuple(t.shape[-2:]) == common]
    ignored = [(rel(p), f"not an image file (extension {p.suffix or 'none'!r})") for p in others]
    groups = {
        "undecodable image files": failed,
        "images of another size": wrong_size,
        "non-image files": ignored,
        "duplicate paths (links to folders or files already loaded)": scan.duplicates,
        "unreadable folders": scan.unreadable,
    }
    _report(root, groups)
    if not decoded:
        raise ValueError(
            f"no decodable images in {root}: found {len(files)} image files ({len(failed)} undecodable) and "
            f"{len(ignored)} other files in {scan.folders} folders ({len(scan.unreadable)} unreadable); expected "
            f"{', '.join(IMAGE_EXTENSIONS)} files, optionally in class sub-folders (hidden names are ignored)"
        )
    images = torch.stack([t for _, t in decoded])
    labels = None
    if class_names is not None:
        index = {name: k for k, name in enumerate(class_names)}
        labels = torch.tensor([index[p.relative_to(root).parts[0]] for p, _ in decoded], dtype=torch.int64)
    reasons = [item for group in groups.values() for item in group]
    return ImageSet(
        images, labels, class_names, str(root), split, skipped=[p for p, _ in reasons], skip_reasons=reasons
    )


def _report(root: Path, groups: dict[str, list[tuple[str, str]]]) -> None:
    for what, items in groups.items():
        if items:
            verb = "ignored" if what == "non-image files" else "skipped"
            logger.warning("%s: %s %d %s: %s", root, verb, len(items), what, _first([p for p, _ in items]))


def _first(names: list[str]) -> str:
    more = f", ... (+{len(names) - _LOG_NAMES} more)" if len(names) > _LOG_NAMES else ""
    return ", ".join(names[:_LOG_NAMES]) + more
