"""Every window of each clip as an item: a split of time signals whose clips are longer than the crop, cut into
consecutive crops of ``length`` samples (frames) every ``hop``, so that a clip of 2.3 s gives four 0.5 s items
instead of its one centred crop.

For Stage II data: a MaskGIT over 0.5 s token sequences of a speech split then trains on every half second of
speech the split holds, not one per clip (``data.windows`` of a MaskGIT config, ``fsq tokenize --windows``). The
collection needs each clip's length without reading it (``length(index)``, as the ``speech`` source has); a window
keeps its clip's label and is named after it and its start time.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from fsq.data.items import ImageItems


class WindowedItems(ImageItems):
    """The windows of ``items`` (see the module docstring): window ``j`` of clip ``k`` holds its samples
    ``[j * hop, j * hop + length)`` along the time axis (axis 1 of a ``(C, T, ...)`` item); a clip shorter than
    ``length`` gives none. ``hop`` defaults to ``length`` (windows side by side)."""

    def __init__(self, items: ImageItems, length: int, hop: int | None = None) -> None:
        if not callable(getattr(items, "length", None)):
            raise ValueError(
                f"{items.source or type(items).__name__}: its clips' lengths are not known before they are read, so "
                "it cannot be cut into windows (the speech source can); leave windows off"
            )
        hop = length if hop is None else hop
        if length < 1 or hop < 1:
            raise ValueError(f"windows need a positive length and hop, got length={length}, hop={hop}")
        self.items, self.window, self.hop = items, int(length), int(hop)  # `length(k)` is a clip's, on items
        lengths = np.asarray([items.length(k) for k in range(len(items))], dtype=np.int64)  # type: ignore[attr-defined]
        counts = np.where(lengths >= length, (lengths - length) // hop + 1, 0)
        self.clip = np.repeat(np.arange(len(items)), counts)
        self.offset = np.concatenate([np.arange(c) * hop for c in counts]) if len(counts) else np.zeros(0, np.int64)
        self.kind = items.kind  # type: ignore[attr-defined]
        self.rate = getattr(items, "rate", None)
        self.source, self.split = items.source, items.split
        self.class_names, self.has_labels, self.channels = items.class_names, items.has_labels, items.channels
        self.in_memory = items.in_memory
        short = [items.name(int(k)) for k in np.flatnonzero(counts == 0)]
        self.skipped = [*items.skipped, *((n, f"shorter than one window of {length} samples") for n in short)]

    def __len__(self) -> int:
        return len(self.clip)

    def read(self, index: int) -> torch.Tensor:
        start = int(self.offset[index])
        return self.items.read(int(self.clip[index]))[:, start : start + self.window]

    def label(self, index: int) -> int:
        return self.items.label(int(self.clip[index]))

    def name(self, index: int) -> str:
        start = int(self.offset[index])
        at = f"{start / self.rate:.2f} s" if self.rate else f"sample {start}"
        return f"{self.items.name(int(self.clip[index]))} @ {at}"

    def fingerprint(self, count: int) -> str:
        clips = int(self.clip[count - 1]) + 1 if count else 0
        digest = hashlib.sha256(f"{self.items.fingerprint(clips)}:{self.window}:{self.hop}:{count}".encode())
        return digest.hexdigest()[:24]
