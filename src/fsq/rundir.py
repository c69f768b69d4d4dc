"""The run-directory layout, in one place (torch-free: reports read run dirs without torch).

::

    RUN/config.yaml            the resolved config (it records its ``stage``)
    RUN/meta.json              versions, command, git revision of every (re)start
    RUN/metrics.jsonl          logged training metrics
    RUN/checkpoints/step_N/    weights (safetensors), optimizer + RNG state, state.json
    RUN/eval/step_N.json       an evaluation of step N; ``step_N_<what>.png`` beside it
    RUN/<phase>/...            multi-phase stages (UViM: ``oracle/``, ``lm/``) nest the same layout
    RUN/tokenizer/             MaskGIT: its Stage I tokenizer embedded (a tokenizer bundle + that run's config.yaml),
                               so that the run dir samples and evaluates wherever it is moved

Step numbers are zero-padded to six digits so that names sort by step.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from fsq.io import read_json, read_json_lines

CONFIG = "config.yaml"
META = "meta.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
EVAL = "eval"
TOKENIZER = "tokenizer"
STEP_PREFIX = "step_"


def step_name(step: int) -> str:
    """``step_000500``: the name of a checkpoint folder or evaluation file of ``step``."""
    return f"{STEP_PREFIX}{step:06d}"


def step_of(name: str) -> int | None:
    """The step of a ``step_N`` name (``None`` when ``name`` is not one)."""
    digits = name[len(STEP_PREFIX) :] if name.startswith(STEP_PREFIX) else ""
    return int(digits) if digits.isdigit() else None


def eval_path(run_dir: str | Path, step: int, suffix: str = ".json") -> Path:
    """``RUN/eval/step_N.json`` (or ``step_N<suffix>``: ``_grid.png``, ``_samples_g1.png``, ...)."""
    return Path(run_dir) / EVAL / f"{step_name(step)}{suffix}"


def has_eval(run_dir: str | Path, step: int) -> bool:
    """Whether the run dir holds the evaluation of ``step`` (for its final step: a finished run)."""
    return eval_path(run_dir, step).is_file()


def eval_files(run_dir: str | Path) -> list[Path]:
    """The evaluation JSON files of a run, oldest step first."""
    folder = Path(run_dir) / EVAL
    if not folder.is_dir():
        return []
    found = [(step_of(p.stem), p) for p in folder.glob(f"{STEP_PREFIX}*.json")]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def latest_eval(run_dir: str | Path) -> dict[str, Any] | None:
    """The newest evaluation of a run (``None`` when it has none)."""
    files = eval_files(run_dir)
    return read_json(files[-1], "an evaluation") if files else None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``RUN/metrics.jsonl`` (empty when absent)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return read_json_lines(path, "training metrics")


# ---- ownership -------------------------------------------------------------------------------------------------
LOCK = ".lock"


class RunDirBusy(RuntimeError):
    """Another process owns the run dir (a trainer, or an evaluation writing into it)."""


class RunDirLock:
    """An exclusive lock on a run dir: ``RUN/.lock`` held with ``flock`` and naming its owner (pid, host, time).

    The kernel releases the lock when its process dies (even by ``kill -9``), so a stale lock file never blocks: a
    later process takes it over. A second trainer, or an evaluation of a run being trained, is refused with a
    :class:`RunDirBusy` naming the owner. Used as a context manager; only one rank of a torchrun job takes it.

    A forked child (a DataLoader worker) closes its inherited copy of the lock file at once, so the lock never
    outlives its owner: ``flock`` belongs to the open file, which a child's copy would otherwise keep locked.
    """

    def __init__(self, run_dir: str | Path, purpose: str) -> None:
        self.path = Path(run_dir) / LOCK
        self.purpose = purpose
        self._handle: Any = None

    def __enter__(self) -> RunDirLock:
        import fcntl
        import socket
        import time

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # held open while the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise RunDirBusy(
                f"{self.path.parent} is in use by {owner}; wait for it to finish (or stop it) before {self.purpose}"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} ({self.purpose}, since {started})\n")
        handle.flush()
        self._handle = handle
        _HELD.add(self)
        return self

    def _forget(self) -> None:
        """In a forked child: close this process's copy of the lock file (the parent keeps the lock)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
        _HELD.discard(self)


_HELD: weakref.WeakSet[RunDirLock] = weakref.WeakSet()  # the locks this process holds


def _close_inherited_locks() -> None:
    for lock in list(_HELD):
        lock._forget()
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def validate_run_name(name: str) -> str:
    """A run name is one path component: not empty, no separators, not ``.``/``..``, no leading dot."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(
            f"run name {name!r} must be one folder name (letters, digits, '-', '_', '.'; no path separators, not "
            "empty, not starting with '.'); use --run-dir to put a run elsewhere"
        )
    return name
