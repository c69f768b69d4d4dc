"""The loop's stage-agnostic helpers: the run dir's start and config check, RNG state, autocast, progress, means.

They take the experiment config (any schema dataclass with ``train`` settings) and explicit arguments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from fsq import distributed, rundir
from fsq.config import (
    RESUMABLE_CHANGES,
    RESUMABLE_PREFIXES,
    ConfigError,
    differing_keys,
    dump_yaml,
    from_dict,
    read_yaml,
)
from fsq.io import write_json_atomic, write_text_atomic
from fsq.tracking import run_meta


def check_run_dir(cfg: Any, run_dir: Path) -> None:
    """Refuse a run dir that holds a run of another config (read-only: nothing is written)."""
    config_path = run_dir / rundir.CONFIG
    if not config_path.exists():
        return
    saved = from_dict(type(cfg), read_yaml(config_path))
    changed = [
        k for k in differing_keys(saved, cfg) if k not in RESUMABLE_CHANGES and not k.startswith(RESUMABLE_PREFIXES)
    ]
    if changed:
        raise ConfigError(
            f"{run_dir} holds a run with a different config (changed: {changed}); only {list(RESUMABLE_CHANGES)} "
            f"and {list(RESUMABLE_PREFIXES)}* may change on resume. Use a new run dir."
        )


def write_run_dir(cfg: Any, run_dir: Path, world_size: int = 1) -> None:
    """Write ``config.yaml`` and append this start to ``meta.json`` (rank 0, once the run has built)."""
    write_text_atomic(dump_yaml(cfg), run_dir / rundir.CONFIG)
    meta_path = run_dir / rundir.META
    meta: dict[str, Any] = {"runs": []}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
    meta["runs"].append(run_meta(world_size))
    write_json_atomic(meta, meta_path)


def setup_process(cfg: Any) -> distributed.DistInfo:
    """Process group / device (with the configured collective timeout) and CPU threads: ``train.threads`` unless
    the user set ``OMP_NUM_THREADS`` (their shell's setting wins over a config's; torch already read it)."""
    info = distributed.setup(cfg.train.device, cfg.train.dist_timeout_minutes)
    if cfg.train.threads and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(cfg.train.threads)
    return info


@contextmanager
def owned_run_dir(run_dir: Path, info: distributed.DistInfo, purpose: str) -> Iterator[None]:
    """Hold the run dir's lock (rank 0) while the block runs; every rank fails together when it is taken.

    A run dir this call created and left without a ``config.yaml`` (a start that failed before anything was
    trained) is removed again, with the empty parent folders it created (``runs/``), so the corrected command is
    not refused as another run and an empty folder stays empty.
    """
    created = not run_dir.exists()
    new_parents = [p for p in run_dir.parents if not p.exists()]  # e.g. runs/ in an empty folder
    lock = rundir.RunDirLock(run_dir, purpose) if info.is_main else None
    error: Exception | None = None
    if lock is not None:
        try:
            lock.__enter__()
        except rundir.RunDirBusy as busy:
            error = busy
    if not distributed.all_true(error is None, info.device):
        raise error or rundir.RunDirBusy(f"{run_dir} is in use by another process (rank 0 could not lock it)")
    try:
        yield
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
            if created and not (run_dir / rundir.CONFIG).exists():
                (run_dir / rundir.LOCK).unlink(missing_ok=True)
                for folder in [run_dir, *new_parents]:  # innermost first
                    _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def autocast(precision: str, device: torch.device):
    """bf16 autocast on CUDA for ``auto``; fp32 on the CPU; ``bf16``/``fp32`` force it."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    if precision != "fp32":
        raise ValueError(f"unknown train.precision {precision!r}; use auto, fp32, bf16 or fp16")
    return nullcontext()


def progress_bar(total: int, start: int, desc: str, enabled: bool):
    """A tqdm bar (rank 0, when ``train.progress``), else None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=desc, dynamic_ncols=True, leave=True)


def reduce_window(window: dict[str, float], device: torch.device) -> dict[str, float]:
    """Means of the accumulated values over the logged steps (``window["_steps"]``) and over ranks."""
    keys = sorted(k for k in window if k != "_steps")
    tensor = torch.tensor([window[k] for k in keys] + [window.get("_steps", 0.0)], dtype=torch.float64, device=device)
    distributed.all_reduce_sum(tensor)
    steps = max(tensor[-1].item(), 1.0)
    return {k: tensor[i].item() / steps for i, k in enumerate(keys)}
