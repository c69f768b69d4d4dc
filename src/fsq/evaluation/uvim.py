"""Evaluate a UViM run on its held-out split: the prediction, the oracle's upper bound and the trivial baseline.

For every held-out (image, target): the language model decodes the codes greedily from the image, and the oracle
decoder (with the image as context) turns them into the prediction. Reported with the task's metrics (depth:
RMSE, AbsRel, delta<1.25; colorization: PSNR (+ FID with ``eval.fid_samples``); panoptic: PQ, SQ, RQ):
- ``prediction``: the full model;
- ``oracle``: the oracle decoding its own codes of the true target (Stage I's upper bound);
- ``baseline``: the task's trivial baseline (training-mean depth, the grey input, one segment per class);
plus codebook usage of the oracle's codes and of the predicted codes, and the share of codes predicted exactly.
Writes ``eval/step_N.json`` and ``eval/step_N_predictions.png`` (rows: image, target, baseline, oracle,
prediction). Runs on rank 0; the other ranks wait.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import checkpoint as ckpt
from fsq import distributed
from fsq.config import UViMExperiment
from fsq.quantizers.stats import CodebookUsage


def _cat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


@torch.no_grad()
def predict(oracle, lm, task, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(prediction dict, predicted codes (B, g, g)) for a batch holding at least ``image``."""
    context = task.context(batch)
    codes = lm.generate(context).view(-1, oracle.spec.code_grid, oracle.spec.code_grid)
    return task.decode_prediction(oracle.decode_indices(codes, context).float()), codes


@torch.no_grad()
def evaluate_uvim(
    run_dir: str | Path,
    *,
    cfg: UViMExperiment | None = None,
    oracle=None,
    lm=None,
    train: dict[str, torch.Tensor] | None = None,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Evaluate and write ``eval/step_N.json`` (rank 0); returns the results (empty on other ranks)."""
    from fsq.training.uvim import build_task, load_data, load_uvim_run, select

    run_dir = Path(run_dir)
    step = cfg.train.lm_steps if cfg is not None else None  # models passed in: Stage II trained to the end
    if oracle is None or lm is None or cfg is None:
        cfg, oracle, lm, step = load_uvim_run(run_dir)  # the newest checkpoint's step, not the planned one
    info = distributed.setup(cfg.train.device)
    if not info.is_main:
        distributed.barrier()
        return {}
    device = device or info.device
    start = time.perf_counter()
    oracle, lm = oracle.to(device).eval(), lm.to(device).eval()
    task = build_task(cfg)
    held_out = load_data(cfg, "test")
    train = train if train is not None else load_data(cfg, "train")
    predictions, oracle_preds, matches = [], [], 0
    oracle_usage, lm_usage = CodebookUsage(oracle.codebook_size), CodebookUsage(oracle.codebook_size)
    n = held_out["image"].shape[0]
    for index in torch.arange(n).split(cfg.eval.batch_size):
        batch = select(held_out, index, device)
        context = task.context(batch)
        true_codes = oracle.encode(task.encode_target(batch), context).indices
        oracle_preds.append(
            {k: v.cpu() for k, v in task.decode_prediction(oracle.decode_indices(true_codes, context).float()).items()}
        )
        pred, codes = predict(oracle, lm, task, batch)
        predictions.append({k: v.cpu() for k, v in pred.items()})
        oracle_usage.update(true_codes.cpu())
        lm_usage.update(codes.cpu())
        matches += int((codes == true_codes).sum())
    prediction, oracle_pred = _cat(predictions), _cat(oracle_preds)
    baseline = task.baseline(held_out, train)
    o_sum, l_sum = oracle_usage.summary(), lm_usage.summary()
    results: dict[str, Any] = {
        "step": step,
        "task": cfg.task.name,
        "quantizer": cfg.quantizer.kind,
        "levels": list(cfg.quantizer.levels) if cfg.quantizer.kind == "fsq" else None,
        "vq_recipe": cfg.quantizer.recipe if cfg.quantizer.kind == "vq" else None,
        "use_context": cfg.model.use_context,
        "codebook_size": oracle.codebook_size,
        "code_grid": oracle.spec.code_grid,
        "num_samples": n,
        "prediction": task.metrics(prediction, held_out),
        "oracle": task.metrics(oracle_pred, held_out),
        "baseline": task.metrics(baseline, held_out),
        "oracle_codes_used": o_sum.codes_used,
        "oracle_usage": o_sum.usage_fraction,
        "oracle_perplexity": o_sum.perplexity,
        "predicted_codes_used": l_sum.codes_used,
        "predicted_usage": l_sum.usage_fraction,
        "code_accuracy": matches / (n * oracle.spec.code_grid**2),
        "parameters": {
            "oracle": sum(p.numel() for p in oracle.parameters()),
            "lm": sum(p.numel() for p in lm.parameters()),
        },
    }
    if cfg.task.name == "colorization" and cfg.eval.fid_samples > 1:
        results["prediction"]["fid"], results["baseline"]["fid"] = _colorization_fid(
            prediction["rgb"], baseline["rgb"], held_out["image"], cfg.eval.fid_samples, device
        )
    results["seconds"] = time.perf_counter() - start
    out_dir = run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt.write_json_atomic(results, out_dir / f"step_{step:06d}.json")
    k = min(cfg.eval.grid_size, n)
    rows = {
        "image": held_out["image"][:k],
        "target": task.visualize(_head(_target(held_out, task), k), _head(held_out, k)),
    }
    for name, pred in (("baseline", baseline), ("oracle", oracle_pred), ("prediction", prediction)):
        rows[name] = task.visualize(_head(pred, k), _head(held_out, k))
    save_rows(rows, out_dir / f"step_{step:06d}_predictions.png")
    distributed.barrier()
    return results


def _head(data: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    return {key: value[:k] for key, value in data.items()}


def _target(data: dict[str, torch.Tensor], task) -> dict[str, torch.Tensor]:
    """The ground truth in the prediction format (to visualise it like a prediction)."""
    return task.decode_prediction(task.encode_target(data))


def _colorization_fid(pred, baseline, real, count, device) -> tuple[float, float]:
    from fsq.evaluation.inception import InceptionFeatures
    from fsq.evaluation.metrics import fid_from_features

    network = InceptionFeatures().to(device)
    count = min(count, real.shape[0])
    real_f = network.extract(real[:count], device=device)
    return (
        float(fid_from_features(real_f, network.extract(pred[:count], device=device))),
        float(fid_from_features(real_f, network.extract(baseline[:count], device=device))),
    )


def save_rows(rows: dict[str, torch.Tensor], path: Path) -> None:
    """A PNG with one row per entry (images as float [0, 1] or uint8, (B, C, H, W)), upscaled for viewing."""
    from PIL import Image

    lines = []
    for images in rows.values():
        images = images if images.dtype == torch.uint8 else (images.clamp(0, 1) * 255).round().to(torch.uint8)
        images = images.cpu()
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        padded = torch.full((images.shape[0], 3, images.shape[2] + 2, images.shape[3] + 2), 255, dtype=torch.uint8)
        padded[:, :, 1:-1, 1:-1] = images
        lines.append(torch.cat(list(padded), dim=2))
    grid = torch.cat(lines, dim=1).permute(1, 2, 0).numpy()
    scale = max(1, 640 // grid.shape[1])
    Image.fromarray(np.ascontiguousarray(grid)).resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST
    ).save(path)


@torch.no_grad()
def predict_files(
    run_dir: str | Path, paths: list[str | Path], out_dir: str | Path, *, device: str | torch.device = "cpu"
) -> list[Path]:
    """Predict for image files (centre-cropped, resized to the run's size): ``<stem>.png`` (input | prediction)
    per file and ``predictions.npz`` with the raw predictions. Unreadable files raise a clear error."""
    from fsq.data.images import decode_image
    from fsq.training.uvim import build_task, load_uvim_run

    cfg, oracle, lm, _ = load_uvim_run(run_dir)
    device = torch.device(device)
    oracle, lm = oracle.to(device), lm.to(device)
    task = build_task(cfg)
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
        save_rows({"image": batch["image"][i : i + 1], "prediction": pictures[i : i + 1]}, target)
        written.append(target)
    arrays = {k: v.cpu().numpy() for k, v in pred.items()}
    np.savez_compressed(out_dir / "predictions.npz", codes=codes.cpu().numpy(), **arrays)
    return written
