"""Checkpoints that are safe to load and never half-written.

A checkpoint is a folder ``checkpoints/step_000500/`` holding:
  * ``*.safetensors``: model weights (generator, its EMA, discriminator): tensors only, nothing executable;
  * ``optimizer.pt``: optimizer and RNG states, tensors and plain containers only, loaded with
    ``torch.load(weights_only=True)`` (a pickle with code in it is refused, never run);
  * ``state.json``: step, config hash, and what else the loop needs to continue exactly.
It is written to a temporary folder and renamed into place, so a crash leaves the previous checkpoint intact;
only the newest ``keep_last`` are kept. A full disk (any writer's error: :mod:`fsq.storage`) removes the temporary
folder and says which checkpoint is intact, if any. At load, ``state.json`` is validated (its step a non-negative
integer equal to the folder's), weights holding NaN are refused, and an unusable checkpoint skipped at resume is
renamed ``step_N.refused`` when training passes its step again: kept as evidence, never overwritten or pruned.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fsq import rundir, storage
from fsq.bundles import BundleError, load_into
from fsq.io import read_json, write_json_atomic

T = TypeVar("T")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, truncated, a pickle, or from another config."""


class CheckpointMismatch(CheckpointError):
    """A readable checkpoint written under another config (or for another model): never fallen back from."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# torch's sentences about loading the file unsafely, allow-listing what it refused, or its documentation: dropped
_UNSAFE_ADVICE = (
    "can still be loaded",
    "weights_only",
    "safe_globals",
    "trust",
    "Re-running",
    "If you",
    "documentation",
    "Alternatively",
)


def _first_line(error: BaseException) -> str:
    """Why a load failed, in one line: torch's reasons without terminal colour codes and without its advice to load
    the file with ``weights_only=False``, to allow-list what it refused, or to trust the file (fsq never does)."""
    text = " ".join(_ANSI.sub("", line).strip() for line in str(error).splitlines() if line.strip())
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s and not any(a in s for a in _UNSAFE_ADVICE)]
    return " ".join(sentences).rstrip(" .(")[:300] or type(error).__name__


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def save_safetensors_atomic(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write ``tensors`` (contiguous CPU copies) to ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = _atomic_path(path)
    with storage.writing(path, tmp, what="safetensors file"):  # safetensors' own error on a full disk, tmp removed
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, path)


def load_safetensors(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file, with a clear :class:`CheckpointError` for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path} is not a valid safetensors file (truncated, corrupt, or a pickle: fsq never unpickles "
            f"weights): {_first_line(error)}"
        ) from None
    for name, tensor in tensors.items():  # NaN weights (bytes overwritten, a diverged save) never pass on
        if tensor.is_floating_point() and bool(torch.isnan(tensor).any()):
            raise CheckpointError(
                f"{path}: tensor {name!r} {tuple(tensor.shape)} holds NaN values (corrupt, overwritten or saved "
                "from a diverged model); it cannot be used"
            )
    return tensors


def save_torch_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` of tensors and plain containers (loadable with ``weights_only=True``), atomically."""
    path = Path(path)
    tmp = _atomic_path(path)
    with storage.writing(path, tmp, what="torch file"):  # torch's zip writer's error on a full disk, tmp removed
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
            f"{path} cannot be loaded safely (truncated, corrupt, or a pickle holding more than tensors and plain "
            f"containers); it was refused and nothing in it was executed ({type(error).__name__}: "
            f"{_first_line(error)})"
        ) from None


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
    for later in [p for p in checkpoint_dirs(run_dir) if (rundir.step_of(p.name) or 0) >= step]:
        set_aside(later)  # skipped at resume as unusable (training writes increasing steps): kept, never pruned
    if keep_last > 1:  # room first: keep the newest keep_last - 1 (at least one intact) before writing
        _prune(run_dir, keep_last - 1, exclude=final)
    previous = latest_checkpoint(run_dir)
    advice = (
        f"The previous checkpoint is intact ({previous.name}): free space (or lower train.keep_last) and rerun to "
        "resume from it"
        if previous is not None
        else "No checkpoint of this run exists yet: free space and rerun (it starts from step 0)"
    )
    with storage.writing(final, tmp, what="checkpoint", advice=advice):  # any writer's error, tmp removed
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, tensors in weights.items():
            save_safetensors_atomic(tensors, tmp / f"{name}.safetensors")
        save_torch_atomic(torch_state, tmp / "optimizer.pt")
        write_json_atomic({**state, "step": step}, tmp / "state.json")
        if final.exists():
            set_aside(final)
        os.replace(tmp, final)
    if keep_last > 0:
        _prune(run_dir, keep_last)
    return final


def set_aside(folder: Path) -> Path:
    """Rename an unusable checkpoint folder (skipped at resume, so training passes its step again) to
    ``step_N.refused[-k]``: out of the checkpoints' way (never loaded, never counted by ``keep_last``) but kept as
    evidence (a tampered or corrupt checkpoint is never silently deleted or overwritten)."""
    target = folder.with_name(f"{folder.name}.refused")
    count = 1
    while target.exists():
        count += 1
        target = folder.with_name(f"{folder.name}.refused-{count}")
    os.replace(folder, target)
    return target


def intact_after_failure(run_dir: str | Path) -> str:
    """A true sentence, for an error that stops training, about what the run keeps: its newest checkpoint, or
    none (the statement is checked on disk, never assumed)."""
    latest = latest_checkpoint(run_dir)
    if latest is None:
        return f"No checkpoint had been written in {run_dir}."
    return f"The newest checkpoint, {latest}, is intact: a rerun resumes from it."


def _prune(run_dir: str | Path, keep: int, exclude: Path | None = None) -> None:
    """Delete all but the newest ``keep`` finished checkpoints (never ``exclude``)."""
    for old in [p for p in checkpoint_dirs(run_dir) if p != exclude][:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def read_state(directory: Path, expected_config_hash: str | None, advice: str) -> dict[str, Any]:
    """A checkpoint's ``state.json``; one written under another config than ``expected_config_hash`` is refused
    (:class:`CheckpointMismatch`, with ``advice``), a missing or corrupt one is a :class:`CheckpointError`."""
    try:
        state = read_json(directory / "state.json", "the checkpoint's state")
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{directory}/state.json is missing or corrupt: {error}") from error
    check_state(state, directory)
    if expected_config_hash is not None and state.get("config_hash") != expected_config_hash:
        raise CheckpointMismatch(
            f"{directory} was written under a different config (hash {state.get('config_hash')} != "
            f"{expected_config_hash}); {advice}"
        )
    return state


def check_state(state: Any, directory: Path) -> None:
    """Refuse a ``state.json`` that is not what :func:`save_checkpoint` writes (:class:`CheckpointError`, naming the
    file and the field): ``step`` a non-negative integer equal to the folder's step, ``config_hash`` and ``stage``
    strings, ``spec`` a mapping."""
    path = directory / "state.json"
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a mapping (corrupt or edited)")
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path}: step is {step!r}, not a non-negative integer (corrupt or edited)")
    folder_step = rundir.step_of(directory.name)
    if folder_step is not None and folder_step != step:
        raise CheckpointError(f"{path}: step is {step}, but the folder is {directory.name} (corrupt or edited)")
    for key, kind in (("config_hash", str), ("stage", str), ("spec", dict)):
        if key in state and not isinstance(state[key], kind):
            raise CheckpointError(f"{path}: {key} is {state[key]!r}, not a {kind.__name__} (corrupt or edited)")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A spec as ``{"quantizer.levels": [8, 5], ...}``, tuples as lists (as JSON holds them)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): json.loads(json.dumps(value))}


def spec_differences(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """``"key: saved != expected"`` for each setting two model specs both hold and disagree on (keys only one side
    has, written by older or newer versions, are not compared)."""
    have, want = _flat(saved), _flat(expected)
    return [f"{k}: {have[k]!r} != {want[k]!r}" for k in sorted(have.keys() & want.keys()) if have[k] != want[k]]


def check_spec(saved: dict[str, Any], expected: dict[str, Any], directory: Path, source: str) -> None:
    """Refuse a checkpoint whose saved model spec differs from the one its run's config builds (``expected``):
    a checkpoint of another run, copied in and its ``config_hash`` edited to match (:class:`CheckpointMismatch`).
    Keys only one side has (specs written by older or newer versions) are not compared."""
    differing = spec_differences(saved, expected)
    if differing:
        raise CheckpointMismatch(
            f"{directory}/state.json: the checkpoint's model differs from the one {source} builds "
            f"({'; '.join(differing[:5])}): a checkpoint of another run, copied in (its config_hash matches, so it "
            "was edited or forged); it was not loaded"
        )


def load_checkpoint(
    directory: str | Path, weight_names: list[str], expected_config_hash: str | None = None
) -> tuple[dict[str, dict[str, torch.Tensor]], Any, dict[str, Any]]:
    """Load (weights by name, torch state, JSON state), refusing a checkpoint written under another config."""
    directory = Path(directory)
    state = read_state(directory, expected_config_hash, "use a new run dir, or the config saved in the run dir")
    weights = {name: load_safetensors(directory / f"{name}.safetensors") for name in weight_names}
    return weights, load_torch_safe(directory / "optimizer.pt"), state


def load_newest(run_dir: str | Path, load: Callable[[Path], T]) -> T | None:
    """``load(folder)`` of the newest checkpoint that loads; ``None`` when the run has none.

    A corrupt or truncated newest checkpoint (any :class:`CheckpointError` but a mismatch) is skipped with a
    warning naming it and why, and the one before it is used; a :class:`CheckpointMismatch` (another config or
    model) is raised at once. When every checkpoint is unusable the newest one's error is raised.
    """
    errors: list[CheckpointError] = []
    for folder in reversed(checkpoint_dirs(run_dir)):
        try:
            loaded = load(folder)
        except CheckpointMismatch:
            raise
        except CheckpointError as error:
            errors.append(error)
            continue
        for skipped in errors:
            warnings.warn(
                f"skipped an unusable checkpoint, using {folder.name} instead: {skipped} (it stays on disk; if "
                "training writes that step again, it is renamed to step_N.refused, never deleted)",
                stacklevel=2,
            )
        return loaded
    if errors:
        raise errors[0]
    return None


def load_latest_model(
    run_dir: str | Path,
    build: Callable[[dict[str, Any]], nn.Module],
    use_ema: bool = True,
    hint: str = "",
    expected_config_hash: str | None = None,
    expected_spec: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[Any, int]:
    """The newest usable checkpoint's model, built by ``build(spec_dict)`` from its saved spec, in eval mode, and
    its step.

    Loads the EMA weights when ``use_ema`` and the checkpoint has them, else the raw weights. A checkpoint written
    under another config than ``expected_config_hash`` (the run's ``config.yaml`` edited since) or whose weights do
    not fit the spec raises :class:`CheckpointMismatch`; a run without checkpoint ``FileNotFoundError`` (+ ``hint``).
    ``expected_spec(saved_spec)``: the spec the run's config builds (the fields that come from the data filled in
    from the saved spec); a checkpoint whose saved spec differs is refused, as training's resume refuses it.
    """

    def load(folder: Path) -> tuple[Any, int]:
        advice = "the run dir's config.yaml was edited since? Restore the config it was trained with"
        state = read_state(folder, expected_config_hash, advice)
        if expected_spec is not None:
            check_spec(state.get("spec", {}), expected_spec(state.get("spec", {})), folder, "the run's config.yaml")
        try:
            model = build(state["spec"])
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(f"{folder}/state.json: its spec cannot build the model ({error})") from None
        name = "ema" if use_ema and (folder / "ema.safetensors").is_file() else "model"
        weights = load_safetensors(folder / f"{name}.safetensors")
        try:  # names, then shapes: the first differing tensors named, with both shapes
            load_into(model, weights, folder / f"{name}.safetensors", str(folder / "state.json"))
        except (BundleError, RuntimeError) as error:
            raise CheckpointMismatch(str(error)) from None
        return model.eval(), int(state["step"])

    found = load_newest(run_dir, load)
    if found is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint yet (checkpoints/step_N/){hint}")
    return found
