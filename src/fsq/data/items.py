"""The interface of a map-style collection of signals: index -> item and label. Images are uint8 ``(C, H, W)``;
audio ``(C, T)`` and video ``(C, T, H, W)`` clips (:mod:`fsq.data.signals`) use the same interface.

Implemented by :class:`fsq.data.datasets.MemoryItems` (built-in sources in memory),
:class:`fsq.data.datasets.FolderItems` (image folders), :class:`fsq.data.shards.TarShardItems` (WebDataset
shards), :class:`fsq.data.hf.HFItems` (local Hugging Face datasets), :class:`fsq.data.signals.SignalItems`
(generated audio and video in memory) and :mod:`fsq.data.signal_files` (audio and video folders and shards); read
by :mod:`fsq.data.loader`.
"""

from __future__ import annotations

import torch


class UnreadableItem(ValueError):
    """An item that cannot be decoded; ``name`` says which (a path relative to the source, or a shard member)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"cannot decode image {name}: {reason}")
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
