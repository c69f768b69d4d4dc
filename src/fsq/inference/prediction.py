"""UViM prediction: the language model's codes for an image, decoded by the oracle into the task's output.

``predict`` works on a batch dict (it is what evaluation measures); :class:`UViMPredictor` holds an oracle, its
language model and the task's settings, loads from a run dir, a bundle, a shipped name or a hub repo id and saves
as a bundle (``fsq export``); ``predict_files`` is ``fsq predict``: one PNG (input | prediction) per image file and
``predictions.npz`` with the raw predictions.

A UViM bundle (safetensors + JSON, nothing pickled)::

    config.json         {"format": "fsq-uvim", "version": 1, "oracle": OracleSpec, "lm": LanguageModelSpec,
                         "task": {"name": ..., "options": {...}}, "image_size": N, "metadata": {provenance}}
    oracle.safetensors  the Stage I oracle's weights
    lm.safetensors      the Stage II language model's weights
    README.md           the model card (``fsq export`` writes it)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import hub, storage
from fsq.bundles import BundleError, build_section, load_into
from fsq.checkpoint import load_safetensors, save_safetensors_atomic
from fsq.data.images import decode_image
from fsq.grids import save_grid
from fsq.inference.sampling import is_run_dir, run_metadata
from fsq.models.quantizer import FLAT_KEYS
from fsq.models.uvim import LanguageModelSpec, OracleSpec, UViMLanguageModel, UViMOracle
from fsq.stages import uvim
from fsq.tasks import Task, get_task


@torch.no_grad()
def predict(oracle, lm, task, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(prediction dict, predicted codes (B, g, g)) for a batch holding at least ``image``."""
    context = task.context(batch)
    codes = lm.generate(context).view(-1, oracle.spec.code_grid, oracle.spec.code_grid)
    return task.decode_prediction(oracle.decode_indices(codes, context).float()), codes


@dataclass
class UViMPredictor:
    """A UViM model: the oracle (Stage I), its language model (Stage II) and the task; ``predict(images)``.

    ``UViMPredictor.from_pretrained(source)`` takes a run dir, a bundle folder, a shipped name or a hub repo id (with
    the ``hub`` extra); ``save_pretrained(dir)`` / ``push_to_hub(repo_id)`` write it.
    """

    oracle: UViMOracle
    lm: UViMLanguageModel
    task_settings: dict[str, Any]  # {"name": "depth", "options": {"bins": 64, ...}}
    image_size: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Task:
        return get_task(self.task_settings["name"], **self.task_settings.get("options", {}))

    @property
    def card_example(self) -> dict[str, Any]:
        """``fsq.inference.export.example_settings`` arguments: the image size the card's example predicts on."""
        return {"size": self.image_size}

    @classmethod
    def from_run(cls, run_dir: str | Path) -> UViMPredictor:
        """A UViM run's newest oracle and language model, with the task its config names."""
        cfg, oracle, lm, step = uvim.load_run(run_dir)
        return cls(oracle, lm, uvim.task_settings(cfg), cfg.data.image_size, run_metadata(cfg, step, run_dir))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        map_location: str | torch.device = "cpu",
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        token: str | None = None,
    ) -> UViMPredictor:
        """Load a run dir, a bundle folder, a shipped name or a hub repo id (safetensors only, nothing unpickled)."""
        if is_run_dir(name_or_path):
            return cls.from_run(name_or_path)
        directory = hub.resolve(
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        config = hub.read_bundle_config(directory, "fsq-uvim")
        path = directory / hub.CONFIG
        oracle_data, lm_data = config.get("oracle", {}), config.get("lm", {})
        make_oracle = lambda: UViMOracle(OracleSpec.from_dict(oracle_data))  # noqa: E731
        oracle = build_section(path, "oracle", oracle_data, OracleSpec, make_oracle, FLAT_KEYS)  # fsq 0.1's keys too
        weights = directory / "oracle.safetensors"
        load_into(oracle, load_safetensors(weights, map_location), weights, str(path))
        make_lm = lambda: UViMLanguageModel(LanguageModelSpec.from_dict(lm_data))  # noqa: E731
        lm = build_section(path, "lm", lm_data, LanguageModelSpec, make_lm)
        weights = directory / "lm.safetensors"
        load_into(lm, load_safetensors(weights, map_location), weights, str(path))
        task, size = config.get("task"), config.get("image_size")
        if not isinstance(task, dict) or not isinstance(task.get("name"), str):
            raise BundleError(f"{path}: task is {task!r}, not a mapping with the task's name")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise BundleError(f"{path}: image_size is {size!r}, not a positive integer")
        return cls(oracle.eval(), lm.eval(), task, size, config.get("metadata", {}))

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> None:
        """Write the bundle: ``config.json``, ``oracle.safetensors``, ``lm.safetensors`` and the card ``README.md``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_safetensors_atomic(self.oracle.state_dict(), directory / "oracle.safetensors")
        save_safetensors_atomic(self.lm.state_dict(), directory / "lm.safetensors")
        config = {
            "format": "fsq-uvim",
            "version": 1,
            "oracle": self.oracle.spec.to_dict(),
            "lm": self.lm.spec.to_dict(),
            "task": self.task_settings,
            "image_size": self.image_size,
            "metadata": self.metadata,
        }
        hub.write_bundle_config(directory, config, card)

    def push_to_hub(
        self, repo_id: str, *, private: bool = False, token: str | None = None, card: str | None = None
    ) -> str:
        """Save the bundle to a temporary folder and upload it to the hub repo ``repo_id``; returns its URL."""
        save = lambda folder: self.save_pretrained(folder, card=card)  # noqa: E731
        return hub.push_bundle(save, repo_id, private=private, token=token, what="UViM")

    def to(self, device: torch.device | str) -> UViMPredictor:
        self.oracle.to(device)
        self.lm.to(device)
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(prediction dict, codes (B, g, g)) for images (B, 3, H, W) in [0, 1] at the model's image size."""
        s = self.image_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (s, s):
            raise ValueError(f"expected images of shape (B, 3, {s}, {s}) in [0, 1], got {tuple(images.shape)}")
        device = next(self.oracle.parameters()).device
        return predict(self.oracle, self.lm, self.task, {"image": images.float().to(device)})


@torch.no_grad()
def predict_files(
    source: str | Path, paths: list[str | Path], out_dir: str | Path, *, device: str | torch.device = "cpu"
) -> list[Path]:
    """Predict for image files (centre-cropped, resized to the model's size): ``<stem>.png`` (input | prediction)
    per file and ``predictions.npz`` with the raw predictions. Unreadable files raise a clear error.

    ``source``: a run dir, a bundle folder, a shipped name or a hub repo id (:meth:`UViMPredictor.from_pretrained`).
    """
    predictor = UViMPredictor.from_pretrained(source).to(device)
    images = []
    for path in paths:
        try:
            images.append(decode_image(Path(path), channels=3, image_size=predictor.image_size))
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable image ({error})") from error
    batch = {"image": torch.stack(images).float().div(255).to(device)}
    pred, codes = predictor.predict(batch["image"])
    pictures = predictor.task.visualize(pred, batch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, path in enumerate(paths):
        target = out_dir / f"{Path(path).stem}.png"
        save_grid([batch["image"][i : i + 1], pictures[i : i + 1]], target)
        written.append(target)
    arrays: dict[str, Any] = {k: v.cpu().numpy() for k, v in pred.items()}  # Any: savez_compressed has typed kwargs
    with storage.writing(out_dir / "predictions.npz", out_dir / "predictions.npz", what="predictions"):
        np.savez_compressed(out_dir / "predictions.npz", codes=codes.cpu().numpy(), **arrays)
    return written
