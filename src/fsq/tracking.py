"""Metric logging (rank 0): ``metrics.jsonl``, TensorBoard events under ``tb/``, and the ``meta.json`` record.

Training scalars go to ``metrics.jsonl`` and TensorBoard; an evaluation is published to TensorBoard too
(:func:`publish_evaluation`: its numbers under ``eval/``, its PNGs (reconstruction grids, samples, predictions)
as images, and histograms). An optional Weights & Biases run mirrors all of it: ``wandb_mode="offline"`` writes
under ``RUN/wandb`` with no network (``wandb sync`` uploads later), ``"online"`` logs live; ``wandb`` is imported
only then. The run-dir layout itself is :mod:`fsq.rundir`.
"""

from __future__ import annotations

import importlib
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import rundir, storage


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

    def __init__(
        self,
        run_dir: str | Path,
        resume_step: int = 0,
        tensorboard: bool = True,
        wandb_mode: str | None = None,
        jsonl: bool = True,
    ) -> None:
        self._wandb = start_wandb(run_dir, wandb_mode) if wandb_mode else None  # first: a bad mode opens nothing
        self.path = Path(run_dir) / rundir.METRICS
        if jsonl and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a") if jsonl else None
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step + 1 if resume_step else None)
            except ImportError:  # tensorboard is optional
                self._tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        record = {"step": step, **{k: (float(v) if math.isfinite(float(v)) else None) for k, v in values.items()}}
        if self._file is not None:
            with storage.writing(self.path, what="metrics"):  # a full disk: the path and the space left
                self._file.write(json.dumps(record) + "\n")
                self._file.flush()
        self.log_scalars(step, values)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """Scalars to TensorBoard (and W&B) only, not to ``metrics.jsonl``."""
        if self._tb is not None:
            with storage.writing(self._tb.log_dir, what="TensorBoard events"):  # its writer thread's error
                for key, value in values.items():
                    self._tb.add_scalar(key, float(value), step)
        if self._wandb is not None:
            self._wandb.log({k: float(v) for k, v in values.items()}, step=step)

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """Pictures, each uint8 (H, W, 3) or (H, W), to TensorBoard (and W&B)."""
        for tag, image in images.items():
            hwc = image[..., None] if image.ndim == 2 else image
            if self._tb is not None:
                self._tb.add_image(tag, hwc, step, dataformats="HWC")
            if self._wandb is not None:
                self._wandb.log({tag: self._wandb_module.Image(image)}, step=step)

    def log_histograms(self, step: int, values: dict[str, np.ndarray]) -> None:
        """Histograms of value arrays (e.g. the level each token takes on each FSQ channel) to TensorBoard (and W&B)."""
        for tag, array in values.items():
            if self._tb is not None:
                self._tb.add_histogram(tag, array, step)
            if self._wandb is not None:
                self._wandb.log({tag: self._wandb_module.Histogram(array)}, step=step)

    @property
    def _wandb_module(self) -> Any:
        return importlib.import_module("wandb")

    def close(self) -> None:
        if self._file is not None:
            with storage.writing(self.path, what="metrics"):
                self._file.close()
        if self._tb is not None:
            with storage.writing(self._tb.log_dir, what="TensorBoard events"):  # its writer thread's error
                self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def start_wandb(run_dir: str | Path, mode: str, project: str = "fsq") -> Any:
    """A Weights & Biases run for ``run_dir`` (``mode``: ``offline``, with no network, or ``online``), files under
    ``RUN/wandb``, named after the run dir and resumed by the same id."""
    if mode not in ("offline", "online"):
        raise ValueError(f"wandb mode must be 'offline' or 'online', got {mode!r}")
    try:
        wandb = importlib.import_module("wandb")  # optional, untyped: imported only for a W&B run
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("the W&B logger needs wandb: pip install wandb", name="wandb") from error
    run_dir = Path(run_dir)
    (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
    run_id = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(run_dir.resolve()))[-64:]
    return wandb.init(project=project, name=run_dir.name, id=run_id, dir=str(run_dir), mode=mode, resume="allow")


def _numbers(results: dict[str, Any], prefix: str) -> dict[str, float]:
    """The numbers of an evaluation, flattened to ``prefix/key[/subkey]`` (lists of rows by their index)."""
    out: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}/{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(float(value)):
            out[name] = float(value)
        elif isinstance(value, dict):
            out.update(_numbers(value, name))
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for i, row in enumerate(value):
                out.update(_numbers(row, f"{name}/{i}"))
    return out


def publish_evaluation(
    run_dir: str | Path,
    step: int,
    results: dict[str, Any],
    *,
    histograms: dict[str, np.ndarray] | None = None,
    wandb_mode: str | None = None,
) -> None:
    """An evaluation to TensorBoard (``RUN/tb``, and W&B): its numbers under ``eval/``, the evaluation's PNGs of
    ``step`` (``eval/step_N_<what>.png``: reconstruction grids, samples, predictions) as images ``eval/<what>``,
    and ``histograms``. ``metrics.jsonl`` is left as training wrote it."""
    from PIL import Image

    writer = MetricsWriter(run_dir, wandb_mode=wandb_mode, jsonl=False)  # TensorBoard / W&B only
    try:
        writer.log_scalars(step, _numbers(results, "eval"))
        prefix = rundir.step_name(step) + "_"
        images = {}
        for path in sorted((Path(run_dir) / rundir.EVAL).glob(f"{prefix}*.png")):
            with Image.open(path) as picture:
                images[f"eval/{path.stem[len(prefix) :]}"] = np.asarray(picture.convert("RGB"))
        writer.log_images(step, images)
        writer.log_histograms(step, histograms or {})
    finally:
        writer.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 10**18  # unreadable lines are dropped on resume
