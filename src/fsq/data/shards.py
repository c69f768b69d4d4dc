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
``{split}*.tar`` files in it or every ``*.tar`` in its ``{split}/`` sub-folder); a glob, where ``{split}`` is
replaced by the split name (``wds:/data/shards/{split}-*.tar``); a brace pattern (``train-{0000..0099}.tar``); or
remote URLs (``https://``, ``pipe:``, ``s3://``, ... fetched into a local cache): :mod:`fsq.data.shard_urls`.
Local shards are used in sorted path order, remote ones in the pattern's order.

Nothing is dropped without a word: a shard that is not a tar file, a shard cut short (python's ``tarfile`` stops
silently at a truncated member or header), a dangling shard link or a shard that cannot be fetched is listed in
``skipped`` with its reason and logged, or raises with ``on_error="raise"``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from fsq.data.images import _DECODE_ERRORS, IMAGE_EXTENSIONS, decode_image
from fsq.data.items import ImageItems, UnreadableItem
from fsq.data.shard_urls import is_remote, resolve_shards

logger = logging.getLogger(__name__)

LABEL_EXTENSIONS = ("cls", "cls.txt", "label", "class")
_IMAGE_EXTENSIONS = tuple(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)


def find_shards(
    path: str, split: str, cache: Path | None = None
) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """``([(name, local file)], problems)``: the shards ``wds:PATH`` names for ``split``, sorted (see
    :mod:`fsq.data.shard_urls`); raises if there are none, naming what was passed over."""
    found, problems = resolve_shards(path, split, cache, check=_damage)
    if not found:
        passed = f"; passed over: {_summary(problems)}" if problems else ""
        raise ValueError(f"no WebDataset shards (.tar files) for split {split!r} at {path!r}{passed}")
    compressed = [name for name, p in found if not p.name.endswith(".tar") and not is_remote(name)]
    if compressed:
        raise ValueError(f"{compressed[0]}: only uncompressed .tar shards can be read by random access")
    return found, problems


def _summary(problems: list[tuple[str, str]], count: int = 3) -> str:
    more = f" (+{len(problems) - count} more)" if len(problems) > count else ""
    return "; ".join(f"{name}: {reason}" for name, reason in problems[:count]) + more


def _split_name(member: str) -> tuple[str, str]:
    folder, _, base = member.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def index_shard(
    path: Path, name: str | None = None, extensions: tuple[str, ...] = _IMAGE_EXTENSIONS
) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, str]]]:
    """``([(key, data offset, size, label or -1)], skipped)`` for one shard, reading member headers only; a
    sample's data is its first member with one of ``extensions`` (images by default).

    ``skipped`` holds ``(name, reason)`` of samples without an image and of the shard itself when it is not a
    tar file or is cut short (mid-member, mid-header, or without tar's end-of-archive marker): python's
    ``tarfile`` stops silently there, so the members it did not reach are named lost here. The samples before the
    damage are kept; the sample at the cut (perhaps incomplete) is not.
    """
    name = name or path.name
    samples: dict[str, dict[str, Any]] = {}
    damage, last_key = None, None
    try:
        size = path.stat().st_size
        tar = tarfile.open(path, "r:")
    except tarfile.TarError as error:
        return [], [(name, f"not a readable tar file ({error})")]
    except OSError as error:
        return [], [(name, f"cannot read shard: {error.strerror or error}")]
    try:
        with tar:
            for member in tar:
                last_key = _split_name(member.name)[0]
                if member.offset_data + member.size > size:
                    damage = (
                        f"cut short inside member {member.name!r} (it needs {member.offset_data + member.size} "
                        f"bytes, the file has {size}): it and any members after it are lost"
                    )
                    break
                if not member.isfile():
                    continue
                key, ext = _split_name(member.name)
                sample = samples.setdefault(key, {"members": set()})
                sample["members"].add(ext)
                if ext in extensions and "image" not in sample:
                    sample["image"] = (member.offset_data, member.size)
                elif ext in LABEL_EXTENSIONS and "label" not in sample:
                    handle = tar.extractfile(member)
                    text = handle.read().decode("utf-8", "replace").strip() if handle is not None else ""
                    sample["label"] = int(text) if text.lstrip("-").isdigit() else -1
            else:
                damage = _tail_damage(path, tar.offset, size)
                last_key = _incomplete(samples)
    except (tarfile.TarError, OSError) as error:
        damage = f"unreadable after byte {tar.offset} ({error}): the members from there on are lost"
        last_key = _incomplete(samples)
    if damage is not None and last_key is not None:  # the sample at the cut: incomplete, not used
        samples.pop(last_key, None)
        damage += f" (sample {last_key!r} at the cut is left out)"
    rows, skipped = [], []
    for key, sample in samples.items():
        if "image" in sample:
            rows.append((key, sample["image"][0], sample["image"][1], sample.get("label", -1)))
        else:
            skipped.append((f"{Path(name).name}:{key}", "sample has no image member"))
    if damage is not None:
        skipped.append((name, f"{damage}; {len(rows)} samples before it are used"))
    return rows, skipped


def _damage(path: Path) -> str | None:
    """What is wrong with a shard as a whole (not a tar file, cut short), or ``None``."""
    _, skipped = index_shard(path, "<shard>")
    return next((reason for name, reason in skipped if name == "<shard>"), None)


def _incomplete(samples: dict[str, dict[str, Any]]) -> str | None:
    """The last sample's key when it lacks members the one before it has (cut between its members)."""
    keys = list(samples)
    if len(keys) >= 2 and samples[keys[-1]]["members"] < samples[keys[-2]]["members"]:
        return keys[-1]
    return None


def _tail_damage(path: Path, end: int, size: int) -> str | None:
    """Why the bytes after the last member ``tarfile`` read are not tar's end-of-archive marker (zero blocks)."""
    with open(path, "rb") as handle:
        handle.seek(end)
        tail = handle.read(1024)
    if len(tail) >= 512 and not tail.strip(b"\0"):
        return None
    if not tail:
        return f"cut short at byte {size} (no end-of-archive marker): the members after it are lost"
    if len(tail) < 512:
        return f"cut short inside a member header at byte {end}: the members from there on are lost"
    return f"unreadable member header at byte {end}: the remaining {size - end} bytes are lost"


class TarShardItems(ImageItems):
    """WebDataset shards as a map-style collection (see the module docstring); ``limit`` keeps the first samples.

    Subclasses read other members by ``member_extensions`` and :meth:`decode` (audio and video:
    :class:`fsq.data.signal_files.SignalShardItems`)."""

    member_extensions = _IMAGE_EXTENSIONS

    def __init__(
        self,
        path: str,
        split: str = "all",
        *,
        channels: int = 3,
        limit: int | None = None,
        on_error: str = "skip",
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        found, problems = find_shards(path, split, Path(cache_dir) if cache_dir is not None else None)
        self.shard_names = [name for name, _ in found]
        self.shards = [local for _, local in found]
        self.source, self.split, self.channels = path, split, channels
        keys: list[str] = []
        shard_ids, offsets, sizes, labels = [], [], [], []
        samples: list[tuple[str, str]] = []
        for shard_id, (name, shard) in enumerate(found):
            rows, skipped = index_shard(shard, name, self.member_extensions)
            problems += [item for item in skipped if item[0] == name]  # the shard itself: damaged or unreadable
            samples += [item for item in skipped if item[0] != name]
            for key, offset, size, label in rows:
                keys.append(f"{Path(name).name}:{key}")
                shard_ids.append(shard_id)
                offsets.append(offset)
                sizes.append(size)
                labels.append(label)
        if problems and on_error == "raise":
            name, reason = problems[0]
            raise ValueError(f"WebDataset shard {name}: {reason} (data.on_error=raise; 'skip' uses the rest)")
        self.skipped = problems + samples
        if limit is not None:
            keys = keys[:limit]
            shard_ids, offsets, sizes, labels = (a[:limit] for a in (shard_ids, offsets, sizes, labels))
        if not keys:
            passed = f"; passed over: {_summary(self.skipped)}" if self.skipped else ""
            raise ValueError(f"the WebDataset shards at {path!r} hold no samples with an image member{passed}")
        for what, group in (("shards or parts of shards", problems), ("samples without an image", samples)):
            if group:
                logger.warning("%s: skipped %d %s: %s", path, len(group), what, _summary(group))
        self.keys = keys
        self.shard_ids = np.asarray(shard_ids, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.has_labels = bool((self.labels >= 0).all())
        self._files: dict[int, BinaryIO] = {}
        self._pid = os.getpid()

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
        return self.decode(self.member(index), index)

    def member(self, index: int) -> bytes:
        """The bytes of sample ``index``'s member; raises :class:`UnreadableItem` when the shard changed."""
        shard = int(self.shard_ids[index])
        try:
            if self._pid != os.getpid():  # a forked worker: the parent's handles share its file offsets
                self._files, self._pid = {}, os.getpid()
            handle = self._files.get(shard)
            if handle is None:
                handle = self._files[shard] = open(self.shards[shard], "rb")  # noqa: SIM115 (kept open for reuse)
            handle.seek(int(self.offsets[index]))
            data = handle.read(int(self.sizes[index]))
        except OSError as error:  # the shard vanished or became unreadable since it was indexed
            raise UnreadableItem(self.keys[index], f"cannot read shard: {error.strerror or error}") from error
        if len(data) < int(self.sizes[index]):
            raise UnreadableItem(self.keys[index], "the shard is shorter than when it was indexed (it changed)")
        return data

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
