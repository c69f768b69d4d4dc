"""WebDataset tar shards read by random access: a member index built once, then one seek and read per image.

WebDataset stores a sample as consecutive tar members sharing a key (``000123.png``, ``000123.cls``: the key is
the member's path up to the first ``.`` of its file name). WebDataset's own pipeline reads shards sequentially
and has no resumable position; indexing the members instead (python's ``tarfile``, headers only) turns the shards
into a map-style collection, so the step-addressed sampler gives exact resume, disjoint ranks and any number of
workers, as for folders. Shards must be uncompressed ``.tar`` files (compressed tars have no random access).

A sample's image is its first member with an image extension (``png``, ``jpg``, ``jpeg``, ``webp``, ...); its label
is an integer in a ``cls``, ``cls.txt``, ``label`` or ``class`` member (WebDataset's ``ShardWriter`` writes an int
``cls`` as text). Samples without an image member are counted in ``skipped``.

Which shards (``wds:PATH``): a ``.tar`` file; a folder (``split="all"``: every ``*.tar`` in it; otherwise the
``{split}*.tar`` files in it or every ``*.tar`` in its ``{split}/`` sub-folder); or a glob, where ``{split}`` is
replaced by the split name (``wds:/data/shards/{split}-*.tar``). Shards are used in sorted path order.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from fsq.data.images import _DECODE_ERRORS, IMAGE_EXTENSIONS, decode_image
from fsq.data.items import ImageItems, UnreadableItem

LABEL_EXTENSIONS = ("cls", "cls.txt", "label", "class")
_IMAGE_EXTENSIONS = tuple(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)


def find_shards(path: str, split: str) -> list[Path]:
    """The shard files ``wds:PATH`` names for ``split`` (see the module docstring), sorted; raises if none."""
    pattern = path.replace("{split}", split)
    if any(ch in pattern for ch in "*?["):
        found = [Path(p) for p in glob.glob(pattern)]
    elif Path(pattern).is_dir():
        folder = Path(pattern)
        if split == "all":
            found = list(folder.glob("*.tar"))
        else:
            found = list(folder.glob(f"{split}*.tar")) + list((folder / split).glob("*.tar"))
    else:
        found = [Path(pattern)] if Path(pattern).is_file() else []
    found = sorted(p for p in found if p.is_file())
    if not found:
        raise ValueError(f"no WebDataset shards (.tar files) for split {split!r} at {path!r}")
    compressed = [p for p in found if not p.name.endswith(".tar")]
    if compressed:
        raise ValueError(f"{compressed[0]}: only uncompressed .tar shards can be read by random access")
    return found


def _split_name(member: str) -> tuple[str, str]:
    folder, _, base = member.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def index_shard(
    path: Path, extensions: tuple[str, ...] = _IMAGE_EXTENSIONS
) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, str]]]:
    """``([(key, data offset, size, label or -1)], skipped)`` for one shard, reading member headers only; a
    sample's data is its first member with one of ``extensions`` (images by default)."""
    samples: dict[str, dict[str, Any]] = {}
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, ext = _split_name(member.name)
            sample = samples.setdefault(key, {})
            if ext in extensions and "image" not in sample:
                sample["image"] = (member.offset_data, member.size)
            elif ext in LABEL_EXTENSIONS and "label" not in sample:
                handle = tar.extractfile(member)
                text = handle.read().decode("utf-8", "replace").strip() if handle is not None else ""
                sample["label"] = int(text) if text.lstrip("-").isdigit() else -1
    rows, skipped = [], []
    for key, sample in samples.items():
        if "image" in sample:
            rows.append((key, sample["image"][0], sample["image"][1], sample.get("label", -1)))
        else:
            skipped.append((f"{path.name}:{key}", "sample has no image member"))
    return rows, skipped


class TarShardItems(ImageItems):
    """WebDataset shards as a map-style collection (see the module docstring); ``limit`` keeps the first samples.

    Subclasses read other members by ``member_extensions`` and :meth:`decode` (audio and video:
    :class:`fsq.data.signal_files.SignalShardItems`)."""

    member_extensions = _IMAGE_EXTENSIONS

    def __init__(self, path: str, split: str = "all", *, channels: int = 3, limit: int | None = None) -> None:
        self.shards = find_shards(path, split)
        self.source, self.split, self.channels = path, split, channels
        keys: list[str] = []
        shard_ids, offsets, sizes, labels = [], [], [], []
        self.skipped = []
        for shard_id, shard in enumerate(self.shards):
            rows, skipped = index_shard(shard, self.member_extensions)
            self.skipped += skipped
            for key, offset, size, label in rows:
                keys.append(f"{shard.name}:{key}")
                shard_ids.append(shard_id)
                offsets.append(offset)
                sizes.append(size)
                labels.append(label)
        if limit is not None:
            keys = keys[:limit]
            shard_ids, offsets, sizes, labels = (a[:limit] for a in (shard_ids, offsets, sizes, labels))
        if not keys:
            raise ValueError(f"the WebDataset shards at {path!r} hold no samples with an image member")
        self.keys = keys
        self.shard_ids = np.asarray(shard_ids, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.has_labels = bool((self.labels >= 0).all())
        self._files: dict[int, BinaryIO] = {}

    def __getstate__(self) -> dict[str, Any]:  # open files stay in the process that opened them
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def close(self) -> None:
        """Close the shard files this process opened (reads reopen them)."""
        for handle in getattr(self, "_files", {}).values():
            handle.close()
        self.__dict__.get("_files", {}).clear()

    def __del__(self) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.keys)

    def read(self, index: int) -> torch.Tensor:
        shard = int(self.shard_ids[index])
        handle = self._files.get(shard)
        if handle is None:
            handle = self._files[shard] = open(self.shards[shard], "rb")  # noqa: SIM115 (kept open for reuse)
        handle.seek(int(self.offsets[index]))
        data = handle.read(int(self.sizes[index]))
        return self.decode(data, index)

    def decode(self, data: bytes, index: int) -> torch.Tensor:
        """The image in member bytes ``data`` of sample ``index``; raises :class:`UnreadableItem`."""
        try:
            return decode_image(io.BytesIO(data), channels=self.channels)
        except _DECODE_ERRORS as error:
            raise UnreadableItem(self.keys[index], str(error)) from error

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def name(self, index: int) -> str:
        return self.keys[index]

    def fingerprint(self, count: int) -> str:
        digest = hashlib.sha256()
        for shard in self.shards:
            stat = shard.stat()
            digest.update(f"{os.fspath(shard.resolve())}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        digest.update(f"{count}".encode())
        return digest.hexdigest()[:24]
