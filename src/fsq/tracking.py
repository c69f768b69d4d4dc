"""Metric logging (rank 0): ``metrics.jsonl``, TensorBoard events under ``tb/``, and the ``meta.json`` record.

The run-dir layout itself is :mod:`fsq.rundir`.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fsq import rundir


def git_revision() -> str | None:
    """The source tree's git revision (with ``-dirty`` when it has uncommitted changes), or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_meta(world_size: int = 1) -> dict[str, Any]:
    """Versions, command line and host facts recorded in ``meta.json``."""
    from fsq import __version__

    return {
        "fsq_version": __version__,
        "torch_version": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": sys.argv,
        "git_revision": git_revision(),
        "world_size": world_size,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class MetricsWriter:
    """Append-only ``metrics.jsonl`` plus TensorBoard scalars. Create it on rank 0 only.

    Resuming truncates nothing: records past the resumed step are dropped first (they belong to work the
    checkpoint does not contain), so the file matches an uninterrupted run.
    """

    def __init__(self, run_dir: str | Path, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / rundir.METRICS
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step + 1 if resume_step else None)
            except ImportError:  # tensorboard is optional
                self._tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        record = {"step": step, **{k: (float(v) if math.isfinite(float(v)) else None) for k, v in values.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, float(value), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 10**18  # unreadable lines are dropped on resume
