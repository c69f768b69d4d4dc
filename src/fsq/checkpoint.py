"""Checkpoints that are safe to load and never half-written.

A checkpoint is a folder ``checkpoints/step_000500/`` holding:
  * ``*.safetensors``: model weights (generator, its EMA, discriminator): tensors only, nothing executable;
  * ``optimizer.pt``: optimizer and RNG states, tensors and plain containers only, loaded with
    ``torch.load(weights_only=True)`` (a pickle with code in it is refused, never run);
  * ``state.json``: step, config hash, and what else the loop needs to continue exactly.
It is written to a temporary folder and renamed into place, so a crash leaves the previous checkpoint intact;
only the newest ``keep_last`` are kept.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fsq import rundir
from fsq.io import write_json_atomic


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, truncated, a pickle, or from another config."""


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def save_safetensors_atomic(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write ``tensors`` (contiguous CPU copies) to ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = _atomic_path(path)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def load_safetensors(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file, with a clear :class:`CheckpointError` for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path} is not a valid safetensors file (truncated, corrupt, or a pickle: fsq never unpickles "
            f"weights): {error}"
        ) from error


def save_torch_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` of tensors and plain containers (loadable with ``weights_only=True``), atomically."""
    path = Path(path)
    tmp = _atomic_path(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_torch_safe(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``: refuses pickles that would run code, with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as error:
        raise CheckpointError(
            f"{path} cannot be loaded safely (truncated, corrupt, or a pickle holding more than tensors; it was "
            f"not executed): {error}"
        ) from error


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Finished checkpoint folders of a run, oldest first."""
    root = Path(run_dir) / rundir.CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(rundir.step_of(p.name), p) for p in root.iterdir() if p.is_dir() and (p / "state.json").is_file()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    weights: dict[str, dict[str, torch.Tensor]],
    torch_state: dict[str, Any],
    state: dict[str, Any],
    keep_last: int = 2,
) -> Path:
    """Write ``checkpoints/step_{step:06d}/`` atomically and prune to the newest ``keep_last``.

    Args:
        weights: name -> state dict, each saved as ``name.safetensors``.
        torch_state: optimizer / RNG states, saved as ``optimizer.pt`` (tensors and plain containers only).
        state: JSON-serialisable loop state (``step`` is added).
    """
    root = Path(run_dir) / rundir.CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / rundir.step_name(step)
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, tensors in weights.items():
        save_safetensors_atomic(tensors, tmp / f"{name}.safetensors")
    save_torch_atomic(torch_state, tmp / "optimizer.pt")
    write_json_atomic({**state, "step": step}, tmp / "state.json")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(run_dir)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    directory: str | Path, weight_names: list[str], expected_config_hash: str | None = None
) -> tuple[dict[str, dict[str, torch.Tensor]], Any, dict[str, Any]]:
    """Load (weights by name, torch state, JSON state), refusing a checkpoint written under another config."""
    directory = Path(directory)
    try:
        state = json.loads((directory / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{directory}/state.json is missing or corrupt: {error}") from error
    if expected_config_hash is not None and state.get("config_hash") != expected_config_hash:
        raise CheckpointError(
            f"{directory} was written under a different config (hash {state.get('config_hash')} != "
            f"{expected_config_hash}); use a new run dir, or the config saved in the run dir"
        )
    weights = {name: load_safetensors(directory / f"{name}.safetensors") for name in weight_names}
    return weights, load_torch_safe(directory / "optimizer.pt"), state


def load_latest_model(run_dir: str | Path, build, use_ema: bool = True, hint: str = "") -> tuple[Any, int]:
    """The newest checkpoint's model, built by ``build(spec_dict)`` from its saved spec, in eval mode, and its step.

    Loads the EMA weights when ``use_ema`` and the checkpoint has them, else the raw weights; weights that do not
    fit the spec raise :class:`CheckpointError`, a run without checkpoint ``FileNotFoundError`` (plus ``hint``).
    """
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint yet (checkpoints/step_N/){hint}")
    state = json.loads((latest / "state.json").read_text())
    model = build(state["spec"])
    name = "ema" if use_ema and (latest / "ema.safetensors").is_file() else "model"
    try:
        model.load_state_dict(load_safetensors(latest / f"{name}.safetensors"), strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{latest}/{name}.safetensors does not fit the saved spec: {error}") from error
    return model.eval(), int(state["step"])
