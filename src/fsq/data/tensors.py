"""Rows of in-memory tensors of any shape and dtype behind the :class:`~fsq.data.items.ImageItems` interface.

:class:`TensorItems` lets the stages that train on tensors already in memory (MaskGIT's token grids, UViM's
images and targets and the oracle's codes) take their batches from the same
:class:`~fsq.data.loader.StepLoader` as the tokenizer: item ``i`` is row ``i`` of one tensor ``(N, ...)`` or of
every tensor of a dict of them, and a batch is one fancy index per tensor (the loader's in-memory fast path: no
copies per item, no workers, no transform), so the batch of a step is exactly ``data[sampler.indices(step)]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch

from fsq.data.items import ImageItems

Rows = torch.Tensor | dict[str, torch.Tensor]


class TensorItems(ImageItems):
    """Row ``i`` of ``data`` (a tensor ``(N, ...)`` or a dict of tensors with ``N`` rows each) is item ``i``;
    ``labels``: int ``(N,)`` or None. ``source`` names the collection in messages."""

    in_memory = True

    def __init__(
        self, data: torch.Tensor | Mapping[str, torch.Tensor], labels: torch.Tensor | None = None, *, source: str
    ) -> None:
        tensors = {"": data} if isinstance(data, torch.Tensor) else dict(data)
        if not tensors:
            raise ValueError(f"{source}: no tensors to take rows from")
        shapes = {name or "data": tuple(t.shape) for name, t in tensors.items()}
        rows = {shape[0] if shape else -1 for shape in shapes.values()}
        if len(rows) != 1 or -1 in rows:
            raise ValueError(f"{source}: every tensor needs the same number of rows (dim 0), got shapes {shapes}")
        count = int(rows.pop())
        if labels is not None and tuple(labels.shape) != (count,):
            raise ValueError(f"{source}: labels must be ({count},), one per row, got {tuple(labels.shape)}")
        self.data, self.labels, self.count = data if isinstance(data, torch.Tensor) else tensors, labels, count
        self.source, self.split = source, "train"
        self.has_labels = labels is not None
        self.skipped = []
        self.channels = 0  # not images: the loader's zero-image fallback is for streamed sources only

    def __len__(self) -> int:
        return self.count

    def take(self, indices: torch.Tensor) -> Rows:
        """The rows ``indices`` of the tensor, or of every tensor of the dict (same keys, same order)."""
        if isinstance(self.data, torch.Tensor):
            return self.data[indices]
        return {name: tensor[indices] for name, tensor in self.data.items()}

    def take_labels(self, indices: torch.Tensor) -> torch.Tensor:
        """The labels of ``indices`` (``-1`` each without labels)."""
        return self.labels[indices] if self.labels is not None else torch.full_like(indices, -1)

    def read(self, index: int) -> torch.Tensor:
        if not isinstance(self.data, torch.Tensor):
            raise TypeError(f"{self.source}: a dict of tensors is read by batches (take), not item by item")
        return self.data[index]

    def label(self, index: int) -> int:
        return -1 if self.labels is None else int(self.labels[index])

    def fingerprint(self, count: int) -> str:
        digest = hashlib.sha256()
        for tensor in [self.data] if isinstance(self.data, torch.Tensor) else list(self.data.values()):
            digest.update(tensor[:count].contiguous().cpu().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:24]
