"""Batches addressed by step from any :class:`~fsq.data.datasets.ImageItems`, decoded in DataLoader workers.

:class:`StepLoader` serves training: ``loader.batch(step)`` is this rank's part of the global batch of ``step``,
a pure function of ``(seed, step)`` (:class:`~fsq.data.sampler.StepBatchSampler`: epoch permutations, rank ``r``
of ``W`` takes every W-th item, no overlap). Each item's transform draws its random numbers from
``(seed, step, position)`` (:func:`fsq.data.transforms.item_generator`), so batches are the same with 0 or N
workers, on 1 or W ranks, and after a resume: the loader starts its worker pipeline at whichever step is asked
for first, and restarts it if a step is skipped. In-memory sources with no transform take the fast path (one
fancy index of the uint8 tensor, no workers): exactly the batches of the in-memory code before streaming. MaskGIT's
tokens and UViM's images and targets come the same way (:class:`~fsq.data.tensors.TensorItems`).

:func:`iterate_batches` serves evaluation and token export: a list of item indices (this rank's share) in order,
in batches, so memory stays bounded by the batch size whatever the split's size.

Unreadable items: with ``on_error="raise"`` the error names the file; with ``"skip"`` training uses the next
readable item instead (deterministically: index + 1, + 2, ...), evaluation leaves the item out (``valid`` is
False), and each skipped file is kept in ``skipped`` and logged once per process (``logging`` warning), however
many loaders (training, evaluation, histograms) meet it. Names travel from the workers as JSON, so any file name
(tabs, newlines) comes back whole.

A data error raised in a worker (a ``ValueError`` such as a file's wrong sample rate, or an unreadable file under
``on_error="raise"``) comes back as a ``ValueError`` with the worker's message alone: torch wraps it in the
worker's traceback text, which the command line would otherwise print.

Workers die with the process that started them: on Linux each asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), and every worker also exits when it finds its parent gone, so a ``kill -9`` of a trainer
leaves no orphan decoding (or holding the run dir's open files).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fsq.counts import check_count
from fsq.data.items import ImageItems, UnreadableItem
from fsq.data.sampler import StepBatchSampler
from fsq.data.transforms import ItemTransform, item_generator

logger = logging.getLogger(__name__)
Key = tuple[int, int, int]  # (item index, step, position in the stream of global batches)


class StepItems(Dataset):
    """``items`` with a transform: ``dataset[(index, step, position)] -> (image, label, valid, skipped names)``.

    ``fallback``: replace an unreadable item by the next readable one (training) instead of returning a zero
    image with ``valid=False`` (evaluation). ``skipped`` is the JSON list of ``[name, reason]`` of the items
    passed over (a string: it survives the DataLoader's collation, and JSON round-trips any name).
    """

    def __init__(
        self, items: ImageItems, transform: ItemTransform, seed: int, *, on_error: str = "skip", fallback: bool = True
    ) -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.items, self.transform, self.seed = items, transform, seed
        self.on_error, self.fallback = on_error, fallback

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int, bool, str]:
        index, step, position = key
        n, skipped = len(self.items), []
        for attempt in range(n):
            i = (index + attempt) % n
            try:
                image = self.items.read(i)
            except UnreadableItem as error:
                if self.on_error == "raise":
                    raise
                skipped.append([error.name, error.reason])
                if not self.fallback:
                    size = self.transform.size or 1
                    empty = getattr(self.transform, "empty", None)  # signals: a zero clip of their shape
                    return (
                        empty(self.items.channels)
                        if empty
                        else torch.zeros(self.items.channels, size, size, dtype=torch.uint8),
                        -1,
                        False,
                        json.dumps(skipped),
                    )
                continue
            generator = item_generator(self.seed, step, position) if self.transform.random else None
            return self.transform(image, generator), self.items.label(i), True, json.dumps(skipped)
        raise ValueError(f"no decodable image in {self.items.source!r} (all {n} items failed)")


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode; the main process's threads run the model
    die_with_parent()


def die_with_parent() -> None:
    """Make this (worker) process die when its parent does: ``PR_SET_PDEATHSIG`` on Linux, then a check that the
    parent did not die before the request took effect; elsewhere a thread that polls the parent's pid.

    The kernel sends the signal when the *thread* that started the worker ends, so loaders are iterated from a
    thread that outlives them (``fsq`` iterates them from the main thread)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent or parent == 1:  # orphaned already, before the request
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="fsq-parent-watch").start()


PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def usable_workers(workers: int) -> int:
    """``workers`` bounded by the CPU cores this process may use, shared among the ranks on this machine
    (``LOCAL_WORLD_SIZE`` under torchrun): a config written for a big machine (``data.workers: 8``) starts no more
    decoding processes than a small one can run (DataLoader warns past that). 0 stays 0."""
    if workers <= 0:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(workers, cores // ranks))


def _data_loader(dataset: StepItems, keys: Any, workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_sampler=keys,
        num_workers=usable_workers(workers),
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers else None,
    )


def _value_error_names() -> set[str]:
    names, stack = set(), [ValueError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return names


def worker_error_message(error: BaseException) -> str | None:
    """The message of the ``ValueError`` (or subclass) a DataLoader worker raised, from torch's wrapped error
    (``Caught ValueError in DataLoader worker process 0. Original Traceback ...``); None for any other error."""
    text = str(error)
    if not text.startswith("Caught ") or "DataLoader worker" not in text.split("\n", 1)[0]:
        return None
    last = text[text.rfind("Traceback (most recent call last):") :].splitlines()[1:]
    start = next((i for i, line in enumerate(last) if line and not line.startswith(" ")), None)
    if start is None:
        return None
    kind, _, message = "\n".join(last[start:]).partition(": ")
    return message.strip() if kind.rsplit(".", 1)[-1] in _value_error_names() else None


def _worker_errors(batches: Iterator[Any]) -> Iterator[Any]:
    """``batches``, with a worker's data error re-raised as a plain ``ValueError`` (see the module docstring)."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (ValueError, RuntimeError) as error:
            message = worker_error_message(error)
            if message is None:
                raise
            raise ValueError(message) from None
        yield batch


class _StepKeys:
    """The batch sampler of a training pipeline: the keys of steps ``start, start + 1, ..., stop - 1``."""

    def __init__(self, loader: StepLoader, start: int, stop: int) -> None:
        self.loader, self.start, self.stop = loader, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[Key]]:
        for step in range(self.start, self.stop):
            yield self.loader.keys(step)


_WARNED: set[tuple[str, str]] = set()  # (source, name) of the skips this process has logged


class SkipLog:
    """Unreadable items seen so far (``name -> reason``); each logged once per process (see the module docstring).

    ``note`` takes the JSON strings :class:`StepItems` returns (one per item of a batch).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.skipped: dict[str, str] = {}

    def note(self, batch: Sequence[str]) -> None:
        for text in batch:
            for name, reason in json.loads(text) if text else ():
                if name in self.skipped:
                    continue
                self.skipped[name] = reason
                if (self.source, name) not in _WARNED:
                    _WARNED.add((self.source, name))
                    logger.warning("%s: skipped undecodable image %r: %s", self.source, name, reason)


class StepLoader:
    """This rank's batch of any step (see the module docstring); ``stop``: the step after the last one served."""

    def __init__(
        self,
        items: ImageItems,
        transform: ItemTransform,
        *,
        global_batch: int,
        seed: int,
        stop: int,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        on_error: str = "skip",
        pin_memory: bool = False,
    ) -> None:
        self.items, self.transform, self.stop = items, transform, stop
        workers = check_count("data.workers", workers, 0)
        self.sampler = StepBatchSampler(len(items), global_batch, seed=seed, rank=rank, world_size=world_size)
        self.dataset = StepItems(items, transform, seed, on_error=on_error, fallback=True)
        self.workers, self.pin_memory = workers, pin_memory
        self.fast = items.in_memory and transform.mode == "none"
        self.log = SkipLog(items.source)
        self._iterator: Iterator[Any] | None = None
        self._next = -1
        self._cached: tuple[int, tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def skipped(self) -> dict[str, str]:
        return self.log.skipped

    def keys(self, step: int) -> list[Key]:
        """This rank's ``(index, step, position)`` keys of ``step``."""
        s = self.sampler
        positions = range(step * s.global_batch + s.rank, (step + 1) * s.global_batch, s.world_size)
        return [(int(i), step, p) for i, p in zip(s.indices(step).tolist(), positions)]

    def batch(self, step: int) -> tuple[Any, torch.Tensor]:
        """``(images uint8 (B, C, H, W), labels int64 (B,), -1 where unlabelled)`` of this rank at ``step``; from
        :class:`~fsq.data.tensors.TensorItems`, its rows instead of images (a tensor, or a dict of tensors)."""
        if self._cached is not None and self._cached[0] == step:  # micro-batches of one step: decoded once
            return self._cached[1]
        if self.fast:  # MemoryItems, TensorItems: one fancy index per tensor
            indices = self.sampler.indices(step)
            return self.items.take(indices), self.items.take_labels(indices)  # type: ignore[attr-defined]
        if self._iterator is None or step != self._next:
            self.close()
            keys = _StepKeys(self, step, max(self.stop, step + 1))
            self._iterator = _worker_errors(iter(_data_loader(self.dataset, keys, self.workers, self.pin_memory)))
        images, labels, _, skipped = next(self._iterator)
        self._next = step + 1
        self.log.note(skipped)
        self._cached = (step, (images, labels))
        return images, labels

    def close(self) -> None:
        """Stop the worker processes (a new pipeline starts at the next ``batch``)."""
        self._iterator = None
        self._next = -1


def iterate_batches(
    items: ImageItems,
    transform: ItemTransform,
    indices: Sequence[int],
    batch_size: int,
    *,
    workers: int = 0,
    on_error: str = "skip",
    log: SkipLog | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(indices, images uint8, labels, valid)`` for ``indices`` in order, ``batch_size`` at a time.

    Unreadable items come back with ``valid=False`` (a zero image) and are logged once, unless ``on_error="raise"``.
    """
    batch_size, workers = check_count("batch_size", batch_size), check_count("workers", workers, 0)
    index_tensor = torch.as_tensor(list(indices), dtype=torch.long)
    chunks = index_tensor.split(batch_size)
    if items.in_memory and transform.mode == "none":
        labels = items.images.labels  # type: ignore[attr-defined]
        for chunk in chunks:
            batch_labels = labels[chunk] if labels is not None else torch.full_like(chunk, -1)
            yield chunk, items.take(chunk), batch_labels, torch.ones(len(chunk), dtype=torch.bool)  # type: ignore[attr-defined]
        return
    log = log or SkipLog(items.source)
    keys = [[(int(i), 0, int(i)) for i in chunk.tolist()] for chunk in chunks]
    dataset = StepItems(items, transform, 0, on_error=on_error, fallback=False)
    batches = _worker_errors(iter(_data_loader(dataset, keys, workers, False)))
    for chunk, (images, labels, valid, skipped) in zip(chunks, batches):
        log.note(skipped)
        yield chunk, images, labels, valid
