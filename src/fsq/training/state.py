"""The loop's stage-agnostic helpers: the run dir's start and config check, RNG state, autocast, progress, means.

They take the experiment config (any schema dataclass with ``train`` settings) and explicit arguments.
"""

from __future__ import annotations

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
from fsq.io import read_json, write_json_atomic, write_text_atomic
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
        meta = read_json(meta_path, "the run's start record", required={"runs": list})
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
def owned_run_dir(
    run_dir: Path, info: distributed.DistInfo, purpose: str, undo_failed_start: bool = False
) -> Iterator[None]:
    """Hold the run dir's lock (rank 0) while the block runs; every rank fails together when it is taken.

    A run dir this call created and left without a ``config.yaml`` (a start that failed before anything was
    trained) is removed again, with the empty parent folders it created (``runs/``), so the corrected command is
    not refused as another run and an empty folder stays empty. With ``undo_failed_start`` (training), a block
    that fails while the run dir holds no checkpoint (a config error found after the start, a first step that
    diverged, a full disk at the first checkpoint, Ctrl-C) leaves the run dir as it found it: the entries it added
    (``config.yaml``, ``meta.json``, ``metrics.jsonl``, a MaskGIT's embedded tokenizer and tokens, ...) are removed
    and the small files it changed are restored.
    """
    created = not run_dir.exists()
    new_parents = [p for p in run_dir.parents if not p.exists()]  # e.g. runs/ in an empty folder
    before = _snapshot(run_dir) if undo_failed_start and info.is_main else None
    lock = rundir.RunDirLock(run_dir, purpose) if info.is_main else None
    error: Exception | None = None
    if lock is not None:
        try:
            lock.__enter__()
        except rundir.RunDirBusy as busy:
            error = busy
    if not distributed.all_true(error is None, info.device):
        raise error or rundir.RunDirBusy(f"{run_dir} is in use by another process (rank 0 could not lock it)")
    undone = False
    try:
        yield
    except BaseException:
        if lock is not None and before is not None and not _has_checkpoint(run_dir):
            _restore(run_dir, before)
            undone = True
        raise
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
            new_lock = created or (undone and rundir.LOCK not in (before or {}))
            if new_lock and not (run_dir / rundir.CONFIG).exists():
                (run_dir / rundir.LOCK).unlink(missing_ok=True)
                if created:
                    for folder in [run_dir, *new_parents]:  # innermost first
                        _remove_if_empty(folder)


_SNAPSHOT_LIMIT = 16 * 2**20  # top-level files up to this size are restored byte for byte after a failed start


def _snapshot(run_dir: Path) -> dict[str, bytes | None]:
    """The run dir's top-level entries: small files with their bytes, anything else ``None`` (kept as it is)."""
    if not run_dir.is_dir():
        return {}
    entries: dict[str, bytes | None] = {}
    for path in run_dir.iterdir():
        small = path.is_file() and not path.is_symlink() and path.stat().st_size <= _SNAPSHOT_LIMIT
        entries[path.name] = path.read_bytes() if small else None
    return entries


def _has_checkpoint(run_dir: Path) -> bool:
    """Whether any phase of the run dir holds a finished checkpoint (``**/checkpoints/step_N/state.json``)."""
    return any(run_dir.glob(f"**/{rundir.CHECKPOINTS}/{rundir.STEP_PREFIX}*/state.json"))


def _restore(run_dir: Path, before: dict[str, bytes | None]) -> None:
    """Undo a failed start: remove the top-level entries it added (not the lock), restore the files it changed."""
    import shutil

    if not run_dir.is_dir():
        return
    for path in run_dir.iterdir():
        if path.name == rundir.LOCK:
            continue
        if path.name not in before:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        else:
            saved = before[path.name]
            if saved is not None and path.is_file() and path.read_bytes() != saved:
                path.write_bytes(saved)


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
