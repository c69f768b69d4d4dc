"""UViM prediction: the language model's codes for an image, decoded by the oracle into the task's output.

``predict`` works on a batch dict (it is what evaluation measures); ``predict_files`` is ``fsq predict``: one PNG
(input | prediction) per image file and ``predictions.npz`` with the raw predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq.data.images import decode_image
from fsq.grids import save_grid
from fsq.stages import uvim


@torch.no_grad()
def predict(oracle, lm, task, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(prediction dict, predicted codes (B, g, g)) for a batch holding at least ``image``."""
    context = task.context(batch)
    codes = lm.generate(context).view(-1, oracle.spec.code_grid, oracle.spec.code_grid)
    return task.decode_prediction(oracle.decode_indices(codes, context).float()), codes


@torch.no_grad()
def predict_files(
    run_dir: str | Path, paths: list[str | Path], out_dir: str | Path, *, device: str | torch.device = "cpu"
) -> list[Path]:
    """Predict for image files (centre-cropped, resized to the run's size): ``<stem>.png`` (input | prediction)
    per file and ``predictions.npz`` with the raw predictions. Unreadable files raise a clear error."""
    cfg, oracle, lm, _ = uvim.load_run(run_dir)
    device = torch.device(device)
    oracle, lm = oracle.to(device), lm.to(device)
    task = uvim.build_task(cfg)
    images = []
    for path in paths:
        try:
            images.append(decode_image(Path(path), channels=3, image_size=cfg.data.image_size))
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable image ({error})") from error
    batch = {"image": torch.stack(images).float().div(255).to(device)}
    pred, codes = predict(oracle, lm, task, batch)
    pictures = task.visualize(pred, batch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, path in enumerate(paths):
        target = out_dir / f"{Path(path).stem}.png"
        save_grid([batch["image"][i : i + 1], pictures[i : i + 1]], target)
        written.append(target)
    arrays: dict[str, Any] = {k: v.cpu().numpy() for k, v in pred.items()}  # Any: savez_compressed has typed kwargs
    np.savez_compressed(out_dir / "predictions.npz", codes=codes.cpu().numpy(), **arrays)
    return written
