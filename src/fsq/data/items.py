"""The interface of a map-style collection of signals: index -> item and label. Images are uint8 ``(C, H, W)``;
audio ``(C, T)`` and video ``(C, T, H, W)`` clips (:mod:`fsq.data.signals`) use the same interface.

Implemented by :class:`fsq.data.datasets.MemoryItems` (built-in sources in memory),
:class:`fsq.data.datasets.FolderItems` (image folders), :class:`fsq.data.shards.TarShardItems` (WebDataset
shards), :class:`fsq.data.hf.HFItems` (local Hugging Face datasets), :class:`fsq.data.signals.SignalItems`
(generated audio and video in memory) and :mod:`fsq.data.signal_files` (audio and video folders and shards); read
by :mod:`fsq.data.loader`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch


class UnreadableItem(ValueError):
    """An item that cannot be decoded; ``name`` says which (a path relative to the source, or a shard member),
    ``what`` what it is (an image, an audio file)."""

    def __init__(self, name: str, reason: str, what: str = "image") -> None:
        super().__init__(f"cannot decode {what} {name}: {reason}")
        self.name, self.reason = name, reason


class ImageItems:
    """The interface of a map-style image collection (see the module docstring); subclasses fill it in."""

    in_memory = False
    source = ""
    split = ""
    class_names: list[str] | None = None
    has_labels = False
    channels = 3  # of the decoded items: 1 (grey) or 3 (RGB) for images
    # what was passed over when the collection was listed: (name, reason)
    skipped: list[tuple[str, str]]

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, index: int) -> torch.Tensor:
        """The decoded item ``index`` (an image: uint8 ``(C, H, W)``); raises :class:`UnreadableItem`."""
        raise NotImplementedError

    def label(self, index: int) -> int:
        return -1

    def name(self, index: int) -> str:
        return f"{self.source}[{index}]"

    def fingerprint(self, count: int) -> str:
        """A hash that changes when any of the first ``count`` items could have changed."""
        raise NotImplementedError


class FolderFiles(ImageItems):
    """Items that are files under a folder, one each (images, audio or video files): their paths relative to
    ``root`` in sorted order, labels from class sub-folders, and a fingerprint of names, sizes and times.

    A subclass sets ``root`` and calls :meth:`_set_files` with the files it keeps and the class names it found
    (``None``: unlabelled); it defines ``read``.
    """

    root: Path
    relative: list[str]
    _labels: torch.Tensor | None

    def _set_files(self, folder: Path, files: list[Path], class_names: list[str] | None) -> None:
        self.root = folder
        self.class_names = class_names
        self.relative = [p.relative_to(folder).as_posix() for p in files]
        self.has_labels = class_names is not None
        self._labels = None
        if class_names is not None:
            index = {name: k for k, name in enumerate(class_names)}
            self._labels = torch.tensor([index[r.split("/")[0]] for r in self.relative], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.relative)

    def label(self, index: int) -> int:
        return -1 if self._labels is None else int(self._labels[index])

    def name(self, index: int) -> str:
        return self.relative[index]

    def fingerprint(self, count: int) -> str:
        digest = hashlib.sha256(os.fspath(self.root.resolve()).encode())
        for rel in self.relative[:count]:
            stat = (self.root / rel).stat()
            digest.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:24]
