"""What every side-by-side timing benchmark records beside its numbers (``vq_entropy.py``, ``lazy_r1.py``): the
date, machine, threads, repeats, torch version and the 1-min load average before and after, since the machine may
be shared; and where it writes its JSON. :func:`recorded_args` is the command line as every benchmark records it."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch


def header(name: str, threads: int, repeats: int, load_before: float) -> dict[str, Any]:
    """The benchmark's name and the run's circumstances, ending with the load average now."""
    return {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "threads": threads,
        "repeats": repeats,
        "torch": torch.__version__,
        "load_average": [load_before, os.getloadavg()[0]],
    }


ROOT = Path(__file__).resolve().parents[1]


def recorded_args(args: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """A benchmark's parsed arguments as its JSON records them: a path inside the repository relative to its root,
    so a published result names no folder of the machine that measured it (other values as given)."""
    out = {}
    for key, value in vars(args).items():
        if key in leave_out:
            continue
        if isinstance(value, (str, Path)) and Path(value).is_absolute() and Path(value).resolve().is_relative_to(ROOT):
            value = Path(value).resolve().relative_to(ROOT).as_posix()
        out[key] = str(value) if isinstance(value, Path) else value
    return out


def write(result: dict[str, Any], out: Path) -> None:
    """``result`` as indented JSON at ``out`` (its folder made)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
