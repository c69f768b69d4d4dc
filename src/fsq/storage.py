"""One path for every failed write: the writers' errors recognised, temporary files removed, one clear message.

Each writer fails its own way when the disk is full (or a quota, a file-size limit or an I/O error stops it):
``open``/``write``, json, numpy and Pillow raise an ``OSError``; ``safetensors`` raises its ``SafetensorError``
("Error while serializing: I/O error: No space left on device (os error 28)"); ``torch.save`` raises a
``RuntimeError`` from its zip writer ("PytorchStreamWriter failed writing file ...", "unexpected pos ...").
:func:`writing` wraps a write: on any failure it removes the write's temporary files and folders, and a storage
failure becomes a :class:`StorageError` (an ``OSError``) that names what was written, where, why, and the space
left on that disk. This module imports no torch (it recognises the writers' errors by type and text).
"""

from __future__ import annotations

import errno as errnos
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_OS_ERROR = re.compile(r"os error (\d+)|code: (\d+)")
# torch.save's zip writer (caffe2's inline_container) reports a short write without an errno
_TORCH_WRITER = ("PytorchStreamWriter", "unexpected pos", "file write failed", "inline_container")


class StorageError(OSError):
    """A file could not be written (full disk, quota, file-size limit, I/O error); its temporary files are gone.

    ``reason`` is the writer's own reason in words (``No space left on device``).
    """

    def __init__(self, code: int | None, message: str, reason: str) -> None:
        super().__init__(code, message)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.strerror)


def storage_reason(error: BaseException) -> str | None:
    """Why a writer failed, in words, when ``error`` is a storage failure of any writer; else ``None``."""
    if isinstance(error, StorageError):
        return error.reason
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    text = str(error)
    if type(error).__name__ == "SafetensorError" and ("serializ" in text or "I/O error" in text):
        code = _code(text)
        return os.strerror(code) if code else text.strip().splitlines()[0]
    if isinstance(error, RuntimeError) and any(marker in text for marker in _TORCH_WRITER):
        return "the write was cut short (full disk or a file-size limit?)"
    return None


def _code(text: str) -> int | None:
    found = _OS_ERROR.search(text)
    return int(found.group(1) or found.group(2)) if found else None


def free_mib(path: str | Path) -> float | None:
    """Free space (MiB) on the disk holding ``path`` (its nearest existing parent); ``None`` when unknown."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free / 2**20
    except OSError:
        return None


def storage_error(error: BaseException, target: str | Path, what: str, advice: str = "") -> StorageError:
    """The :class:`StorageError` of a failed write of ``what`` to ``target`` (``error`` must be a storage failure)."""
    reason = storage_reason(error) or str(error)
    code = error.errno if isinstance(error, OSError) else _code(str(error))
    free = free_mib(target)
    space = f"; {free:.1f} MiB free on that disk" if free is not None else ""
    message = f"cannot write {what + ' ' if what else ''}{target} ({reason}){space}"
    return StorageError(code or errnos.EIO, f"{message}. {advice}" if advice else message, reason)


def remove(*paths: str | Path) -> None:
    """Delete files and folders if they exist (temporaries of a failed write); never raises."""
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass


@contextmanager
def writing(target: str | Path, *temporaries: str | Path, what: str = "", advice: str = "") -> Iterator[None]:
    """Run a write of ``what`` to ``target``; on any failure delete ``temporaries``, and raise a storage failure
    of any writer as a :class:`StorageError` (other errors pass through unchanged)."""
    try:
        yield
    except BaseException as error:
        remove(*temporaries)
        if storage_reason(error) is None:
            raise
        raise storage_error(error, target, what, advice) from error


@contextmanager
def new_files(folder: str | Path, *, what: str, advice: str = "") -> Iterator[None]:
    """Run a write of ``what`` into ``folder``; on any failure remove what the write added there (the folder too,
    when the write created it), and raise a storage failure of any writer as a :class:`StorageError`."""
    folder = Path(folder)
    created = not folder.exists()
    before = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    try:
        yield
    except BaseException as error:
        added = [p for p in folder.iterdir() if p.name not in before] if folder.is_dir() else []
        remove(*added, *([folder] if created else []))
        if storage_reason(error) is None:
            raise
        raise storage_error(error, folder, what, advice or "What it had written there was removed") from error
