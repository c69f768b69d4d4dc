"""Evaluate a UViM run on its held-out split: the prediction, the oracle's upper bound and the trivial baseline.

The held-out split is ``data.eval_split`` (``val`` to tune, ``test`` to report). For every held-out (image,
target): the language model decodes the codes greedily from the image, and the oracle decoder (with the image as
context) turns them into the prediction. Reported with the task's metrics (depth: RMSE, AbsRel, delta<1.25;
colorization: PSNR, and with ``eval.fid_samples = n`` the Inception FID of the first ``n`` predictions (and of the
oracle's, the baseline's and the ground truths' own, ``target_fid``: the floor a perfect prediction reaches at that
sample size) against ``n`` reference crops of the same split's photos other than their ground truths, ColTran's
protocol, the reference features cached in the data cache; panoptic: PQ, SQ, RQ):
- ``prediction``: the full model;
- ``oracle``: the oracle decoding its own codes of the true target (Stage I's upper bound);
- ``baseline``: the task's trivial baseline (training-mean depth, the grey input, one segment per class);
plus codebook usage of the oracle's codes and of the predicted codes, the share of codes predicted exactly, and
(VQ with an EMA codebook) the codebook splits the oracle's training made, summed from its ``metrics.jsonl``.
Writes ``eval/step_N.json`` and ``eval/step_N_predictions.png`` (rows: image, target, baseline, oracle,
prediction). Runs on rank 0; the other ranks wait (:meth:`fsq.distributed.DistInfo.on_main`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import distributed, rundir
from fsq.config import UViMExperiment
from fsq.data.dense import colorization_reference, photo_source_split
from fsq.evaluation.tokenizer import cached_features, fid_cache_path
from fsq.grids import save_grid
from fsq.inference.prediction import predict
from fsq.io import write_json_atomic
from fsq.metrics.image import fid_from_features
from fsq.metrics.inception import InceptionFeatures
from fsq.models.uvim import UViMLanguageModel, UViMOracle
from fsq.quantizers.stats import CodebookUsage
from fsq.stages.uvim import TrainedUViM, build_task, load_data, load_run, select


def _cat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


@torch.no_grad()
def evaluate_uvim(
    run_dir: str | Path,
    *,
    cfg: UViMExperiment | None = None,
    trained: TrainedUViM | None = None,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Evaluate and write ``eval/step_N.json`` (rank 0); returns the results (empty on other ranks).

    ``trained``: the models (and training data) training just left, evaluated under ``cfg`` (None: the run's
    newest checkpoints). Runs on rank 0 of the process group training or the CLI set up; the other ranks wait.
    """
    run_dir = Path(run_dir)
    train = None
    if trained is None or cfg is None:
        saved, oracle, lm, step = load_run(run_dir)  # the newest checkpoint's step, not the planned one
        cfg = cfg or saved
    else:
        oracle, lm, train, step = trained.oracle, trained.lm, trained.train, trained.step
    info = distributed.current(cfg.train.device)
    return info.on_main(lambda: _evaluate(run_dir, cfg, oracle, lm, step, train, device or info.device), {})


def _evaluate(
    run_dir: Path,
    cfg: UViMExperiment,
    oracle: UViMOracle,
    lm: UViMLanguageModel,
    step: int,
    train: dict[str, torch.Tensor] | None,
    device: torch.device,
) -> dict[str, Any]:
    start = time.perf_counter()
    oracle, lm = oracle.to(device).eval(), lm.to(device).eval()
    task = build_task(cfg)
    held_out = load_data(cfg, cfg.data.eval_split)
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
        "split": cfg.data.eval_split,
        "task": cfg.task.name,
        **cfg.quantizer.report(),  # "quantizer" (its kind) and "levels" (None without levels)
        "vq_recipe": cfg.quantizer.setting("recipe"),  # None for a family without VQ recipes
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
        "oracle_splits": oracle_splits(run_dir / "oracle"),
        "parameters": {
            "oracle": sum(p.numel() for p in oracle.parameters()),
            "lm": sum(p.numel() for p in lm.parameters()),
        },
    }
    if cfg.task.name == "colorization" and cfg.eval.fid_samples > 1:
        count = min(cfg.eval.fid_samples, n)
        split, truths = cfg.data.eval_split, _target(held_out, task)["rgb"][:count]
        reference = colorization_reference(
            count,
            image_size=cfg.data.image_size,
            seed=cfg.data.seed,
            split=split,
            exclude=truths,
            cache_dir=cfg.data.cache_dir,
        )
        images = {  # the ground truths' FID against the same reference: what a perfect prediction scores
            "prediction": prediction["rgb"][:count],
            "oracle": oracle_pred["rgb"][:count],
            "baseline": baseline["rgb"][:count],
            "target": truths,
        }
        fids = _colorization_fid(images, reference, device, cfg.data.cache_dir)
        for name in ("prediction", "oracle", "baseline"):
            results[name]["fid"] = fids[name]
        results["target_fid"] = fids["target"]
        source = photo_source_split(split)
        photos = "training" if source == "train" else source
        results["fid_samples"] = count
        results["fid_reference"] = f"other crops of the {photos} photos (not ground truths)"
    results["seconds"] = time.perf_counter() - start
    (run_dir / rundir.EVAL).mkdir(parents=True, exist_ok=True)
    write_json_atomic(results, rundir.eval_path(run_dir, step))
    k = min(cfg.eval.grid_size, n)
    rows = {
        "image": held_out["image"][:k],
        "target": task.visualize(_head(_target(held_out, task), k), _head(held_out, k)),
    }
    for name, pred in (("baseline", baseline), ("oracle", oracle_pred), ("prediction", prediction)):
        rows[name] = task.visualize(_head(pred, k), _head(held_out, k))
    save_grid(list(rows.values()), rundir.eval_path(run_dir, step, "_predictions.png"))
    return results


def _head(data: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    return {key: value[:k] for key, value in data.items()}


def _target(data: dict[str, torch.Tensor], task) -> dict[str, torch.Tensor]:
    """The ground truth in the prediction format (to visualise it like a prediction)."""
    return task.decode_prediction(task.encode_target(data))


def _colorization_fid(images: dict[str, torch.Tensor], reference: torch.Tensor, device, cache_root) -> dict[str, float]:
    """FID of each set of ``images`` (name -> ``(n, 3, H, W)``) against the reference crops; the reference, the
    baseline's and the ground truths' features (the same for every run on the same data) are cached in the data
    cache ``cache_root`` by the images' hash."""
    network = InceptionFeatures().to(device)

    def features(images: torch.Tensor, cached: bool) -> np.ndarray:
        compute = lambda: network.extract(images, device=device)  # noqa: E731
        if not cached:
            return compute()
        return cached_features(fid_cache_path(cache_root, images), compute)

    real = features(reference, True)
    shared = {"baseline", "target"}  # functions of the data alone
    return {name: float(fid_from_features(real, features(x, name in shared))) for name, x in images.items()}


def oracle_splits(phase_dir: Path) -> int | None:
    """Codebook splits of the oracle's training, summed from its logged window means (``None`` without a log)."""
    path = phase_dir / rundir.METRICS
    if not path.is_file():
        return None
    total, previous, seen = 0.0, 0, False
    for record in rundir.read_metrics(phase_dir):
        if "splits" not in record:
            continue
        seen = True
        total += record["splits"] * (record["step"] - previous)
        previous = record["step"]
    return round(total) if seen else None
