"""Map-style image collections: index -> uint8 ``(C, H, W)`` image and label, for every kind of source.

An :class:`ImageItems` is what the streaming loader (:mod:`fsq.data.loader`) reads: ``len(items)``,
``items.read(i)`` (the decoded image, any size), ``items.label(i)`` (``-1`` without labels), ``items.name(i)``
(for messages) and ``items.fingerprint(n)`` (identifies the first ``n`` items: the key of cached FID features).
The kinds, chosen by the ``source`` string (:func:`source_kind`):

- ``mnist``, ``fashion``, ``photos``: the built-in sources, small enough to stay in memory (:class:`MemoryItems`
  around an :class:`~fsq.data.images.ImageSet`, already at the configured size);
- a folder path: :class:`FolderItems`, files listed once at start (:func:`fsq.data.scan.scan_folder`, the rules of
  :mod:`fsq.data.images`: recursive, class sub-folders, ``split`` = a sub-folder such as ``train`` or ``all``),
  each file decoded only when read;
- ``wds:PATH`` (a ``.tar`` file, a folder of them, a glob, a brace pattern or remote URLs; a path ending in
  ``.tar`` or a URL needs no prefix): WebDataset shards read by random access (:mod:`fsq.data.shards`);
- ``hf:PATH``: a local Hugging Face ``datasets`` directory (:mod:`fsq.data.hf`), never the network.

Files that cannot be decoded raise :class:`UnreadableItem` from ``read``; the loader skips and reports them, or
raises, as ``on_error`` says. Files that are not images are counted when the collection is opened.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import torch

from fsq.counts import check_optional_count
from fsq.data.hf import HFItems
from fsq.data.images import _DECODE_ERRORS, IMAGE_EXTENSIONS, ImageSet, _classes, _report, decode_image
from fsq.data.items import FolderFiles, ImageItems, UnreadableItem
from fsq.data.scan import scan_folder
from fsq.data.shard_urls import is_remote
from fsq.data.shards import TarShardItems

__all__ = ["FolderItems", "ImageItems", "MemoryItems", "UnreadableItem", "open_items", "source_kind"]
SourceKind = Literal["builtin", "folder", "wds", "hf"]
BUILTIN_SOURCES = ("mnist", "fashion", "photos")


def source_kind(source: str) -> tuple[SourceKind, str]:
    """``(kind, path)`` of a ``data.source`` string (see the module docstring)."""
    if source in BUILTIN_SOURCES:
        return "builtin", source
    if source.startswith("wds:"):
        return "wds", source[4:]
    if source.startswith("hf:"):
        return "hf", source[3:]
    if source.endswith(".tar") or is_remote(source):  # remote data is WebDataset shards (https://, s3://, pipe:)
        return "wds", source
    return "folder", source


class MemoryItems(ImageItems):
    """An in-memory :class:`ImageSet` (the built-in sources) behind the :class:`ImageItems` interface."""

    in_memory = True

    def __init__(self, images: ImageSet) -> None:
        self.images = images
        self.source, self.split = images.source, images.split
        self.class_names = images.class_names
        self.has_labels = images.labels is not None
        self.skipped = list(images.skip_reasons)
        self.channels = int(images.images.shape[1])

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> torch.Tensor:
        return self.images.images[index]

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """A batch by fancy indexing, uint8 ``(B, C, H, W)`` (the fast path: no copies per item, no workers)."""
        return self.images.images[indices]

    def take_labels(self, indices: torch.Tensor) -> torch.Tensor:
        """The labels of a batch, int64 ``(B,)`` (``-1`` each without labels)."""
        labels = self.images.labels
        return labels[indices] if labels is not None else torch.full_like(indices, -1)

    def label(self, index: int) -> int:
        return -1 if self.images.labels is None else int(self.images.labels[index])

    def fingerprint(self, count: int) -> str:
        return hashlib.sha256(self.images.images[:count].numpy().tobytes()).hexdigest()[:24]


class FolderItems(FolderFiles):
    """Image files under a folder (or its ``split`` sub-folder), decoded one by one when read.

    ``limit`` keeps the first ``limit`` image files in sorted path order. ``draft_size`` lets JPEGs decode at a
    reduced scale that keeps both sides at least that many pixels.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "all",
        *,
        channels: int = 3,
        on_error: str = "skip",
        limit: int | None = None,
        draft_size: int | None = None,
    ) -> None:
        base = Path(root)
        if not base.is_dir():
            raise ValueError(
                f"unknown source {os.fspath(root)!r}: expected one of {', '.join(BUILTIN_SOURCES)}, the path of an "
                "image folder, wds:SHARDS or hf:DATASET_DIR"
            )
        folder = base if split == "all" else base / split
        if not folder.is_dir():
            raise ValueError(
                f"image folder {base} has no {split!r} sub-folder: pass split 'all' to use the whole folder"
            )
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
        scan = scan_folder(folder)
        if scan.unreadable and on_error == "raise":
            name, reason = scan.unreadable[0]
            raise ValueError(f"{reason}: {folder / name}")
        files = [p for p in scan.files if p.suffix.lower() in IMAGE_EXTENSIONS]
        others = [p for p in scan.files if p.suffix.lower() not in IMAGE_EXTENSIONS]
        class_names = _classes(folder, files)
        if limit is not None:
            files = files[:limit]
        if not files:
            raise ValueError(
                f"no image files in {folder}: expected {', '.join(IMAGE_EXTENSIONS)} files, optionally in class "
                f"sub-folders (hidden names are ignored); found {len(others)} other files in {scan.folders} folders"
            )
        self._set_files(folder, files, class_names)
        self.source, self.split = os.fspath(root), split
        self.channels, self.draft_size = channels, draft_size
        groups = {
            "non-image files": [
                (p.relative_to(folder).as_posix(), f"not an image file ({p.suffix or 'none'})") for p in others
            ],
            "duplicate paths (links to folders or files already loaded)": scan.duplicates,
            "unreadable folders": scan.unreadable,
        }
        _report(folder, groups)
        self.skipped = [item for group in groups.values() for item in group]

    def read(self, index: int) -> torch.Tensor:
        path = self.root / self.relative[index]
        try:
            return decode_image(path, channels=self.channels, draft_size=self.draft_size)
        except _DECODE_ERRORS as error:
            raise UnreadableItem(self.relative[index], str(error)) from error


def open_items(
    source: str,
    split: str,
    *,
    channels: int | None = None,
    on_error: str = "skip",
    limit: int | None = None,
    draft_size: int | None = None,
    cache_dir: str | None = None,
) -> ImageItems:
    """The streamed collection a ``source`` string names (folder, ``wds:``, ``hf:``); built-ins are refused here
    (load them with :func:`fsq.data.load_images` and wrap them in :class:`MemoryItems`). ``cache_dir``: where
    ``hf:`` builds its caches and remote ``wds:`` shards are fetched to."""
    check_optional_count("limit", limit)
    check_optional_count("draft_size", draft_size)
    kind, path = source_kind(source)
    if kind == "builtin":
        raise ValueError(f"{source!r} is a built-in source: load it with fsq.data.load_images and MemoryItems")
    if not path:
        raise ValueError(f"data source {source!r} names no path after the {kind}: prefix")
    if kind == "wds":
        return TarShardItems(path, split, channels=channels or 3, limit=limit, on_error=on_error, cache_dir=cache_dir)
    if kind == "hf":
        return HFItems(path, split, channels=channels or 3, limit=limit, cache_dir=cache_dir)
    return FolderItems(path, split, channels=channels or 3, on_error=on_error, limit=limit, draft_size=draft_size)
