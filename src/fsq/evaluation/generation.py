"""Evaluate a MaskGIT run: class accuracy, sampling FID, precision / recall, usage, compression cost, speed.

For each guidance weight in ``eval.guidance``: ``eval.num_samples`` class-conditional samples (labels cycling over
the classes, ``eval.steps`` decoding steps), decoded by the Stage I tokenizer, then
- class accuracy: the share judged the conditioning class by a classifier trained on the real training set
  (``fsq.evaluation.classifier``; its own test accuracy is reported beside it);
- sampling FID against real *training* images (the paper's "FID-train"), and k-NN precision / recall
  (k = ``eval.pr_k``, the ADM suite's definition) on Inception features of the first ``eval.fid_samples`` samples
  and as many random training images (their features cached by the images' hash);
- codebook usage and perplexity of the sampled tokens.
Once per run: the compression cost (bits per token of held-out token grids under the M2T deterministic schedule,
conditioned on their labels), and sampling speed in images/s (tokens and decoding) for each ``eval.speed_steps``.
Writes ``eval/step_N.json`` and ``eval/step_N_samples_g{alpha}.png`` (one row per class). Runs on rank 0; the
other ranks wait.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import checkpoint as ckpt
from fsq import distributed
from fsq.config import MaskGITExperiment
from fsq.generation import compression_bits, power_schedule, qlds_order, sample
from fsq.models.maskgit import MaskGIT


@torch.no_grad()
def generate(
    model: MaskGIT,
    labels: torch.Tensor | None,
    *,
    num: int,
    steps: int = 12,
    choice_temperature: float = 4.5,
    temperature: float = 1.0,
    guidance: float = 0.0,
    seed: int = 0,
    batch_size: int = 250,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``num`` token grids (num, h, w); batch ``b`` draws from a generator seeded by ``(seed, b)``."""
    model = model.to(device).eval()
    spec = model.spec
    out = []
    for b, start in enumerate(range(0, num, batch_size)):
        n = min(batch_size, num - start)
        batch_labels = labels[start : start + n].to(device) if labels is not None else None
        initial = torch.full((n, spec.num_tokens), model.mask_id, dtype=torch.long, device=device)
        result = sample(
            model.tokens_to_logits(batch_labels),
            initial,
            mask_id=model.mask_id,
            steps=steps,
            choice_temperature=choice_temperature,
            temperature=temperature,
            guidance=guidance,
            uncond_tokens_to_logits=model.tokens_to_logits(None) if guidance != 0 else None,
            generator=torch.Generator().manual_seed(seed * 100_003 + b),
        )
        out.append(result.tokens.cpu())
    return torch.cat(out).view(num, spec.grid_height, spec.grid_width)


@torch.no_grad()
def decode(tokenizer, tokens: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Images in [0, 1] (float32, CPU) of token grids."""
    tokenizer = tokenizer.to(device).eval()
    parts = [tokenizer.decode_indices(t.to(device)).float().clamp(0, 1).cpu() for t in tokens.split(batch_size)]
    return torch.cat(parts)


def class_labels(num: int, num_classes: int) -> torch.Tensor | None:
    """Labels cycling over the classes (equal counts), or None for an unconditional model."""
    return torch.arange(num) % num_classes if num_classes else None


def _real_features(tok_cfg, count: int, seed: int, device: torch.device, network) -> np.ndarray:
    """Inception features of ``count`` random training images (cached under the data cache by their hash)."""
    from fsq.evaluation.evaluate import cached_features, fid_cache_path
    from fsq.training.tokenizer import load_split

    train = load_split(tok_cfg, tok_cfg.data.train_split, None).images
    pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:count]
    images = train[pick]
    return cached_features(
        fid_cache_path(tok_cfg, images), lambda: network.extract(images.float().div(255), device=device)
    )


def save_class_grid(images: torch.Tensor, labels: torch.Tensor | None, per_class: int, path: Path) -> None:
    """A PNG with one row per class (``per_class`` samples each), upscaled for viewing."""
    from PIL import Image

    if labels is None:
        rows = [images[i * per_class : (i + 1) * per_class] for i in range(min(10, len(images) // per_class))]
    else:
        rows = [images[labels == c][:per_class] for c in sorted(set(labels.tolist()))]
    tiles = []
    for row in rows:
        row = (row.clamp(0, 1) * 255).round().to(torch.uint8)
        if row.shape[1] == 1:
            row = row.repeat(1, 3, 1, 1)
        padded = torch.full((per_class, 3, row.shape[2] + 2, row.shape[3] + 2), 255, dtype=torch.uint8)
        padded[: row.shape[0], :, 1:-1, 1:-1] = row
        tiles.append(torch.cat(list(padded), dim=2))
    grid = torch.cat(tiles, dim=1).permute(1, 2, 0).numpy()
    scale = max(1, 512 // grid.shape[1])
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)


@torch.no_grad()
def evaluate_maskgit(
    run_dir: str | Path,
    *,
    cfg: MaskGITExperiment | None = None,
    model: MaskGIT | None = None,
    step: int | None = None,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Evaluate and write ``eval/step_N.json`` (rank 0); returns the results (empty on other ranks)."""
    from fsq.training.maskgit import load_maskgit_run

    run_dir = Path(run_dir)
    if model is None:
        model, step, saved_cfg = load_maskgit_run(run_dir)
        cfg = cfg or saved_cfg
    elif step is None:
        step = cfg.train.steps
    info = distributed.setup(cfg.train.device)
    if not info.is_main:
        distributed.barrier()
        return {}
    results = _evaluate(run_dir, cfg, model, step, device or info.device)
    distributed.barrier()
    return results


def _evaluate(run_dir: Path, cfg: MaskGITExperiment, model: MaskGIT, step: int, device: torch.device) -> dict:
    from fsq.evaluation.evaluate import load_run_config, load_run_model
    from fsq.quantizers.stats import CodebookUsage

    start = time.perf_counter()
    e = cfg.eval
    model = model.to(device).eval()
    tok_cfg = load_run_config(cfg.data.tokenizer)
    tokenizer, tokenizer_step = load_run_model(cfg.data.tokenizer)
    spec = model.spec
    results: dict[str, Any] = {
        "step": step,
        "tokenizer_run": str(Path(cfg.data.tokenizer).resolve()),
        "tokenizer_step": tokenizer_step,
        "quantizer": tokenizer.spec.quantizer,
        "levels": tokenizer.spec.levels if tokenizer.spec.quantizer == "fsq" else None,
        "codebook_size": spec.codebook_size,
        "token_grid": [spec.grid_height, spec.grid_width],
        "num_classes": spec.num_classes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "sampling": {"steps": e.steps, "choice_temperature": e.choice_temperature, "temperature": e.temperature},
    }
    judge = None
    if spec.num_classes:
        from fsq.evaluation.classifier import load_or_train_classifier

        with torch.enable_grad():  # trains the judge on a first use (then cached)
            judge, judge_info = load_or_train_classifier(
                tok_cfg.data.source,
                tok_cfg.data.image_size,
                channels=tok_cfg.data.channels,
                cache_dir=tok_cfg.data.cache_dir,
                steps=e.classifier_steps,
                device=device,
                train_split=tok_cfg.data.train_split,
                test_split=tok_cfg.data.eval_split,
            )
        results["classifier"] = {k: v for k, v in judge_info.items() if k != "cached"}
    network = real = None
    fid_n = min(e.fid_samples, e.num_samples)
    if fid_n > e.pr_k:
        from fsq.evaluation.inception import InceptionFeatures

        network = InceptionFeatures().to(device)
        real = _real_features(tok_cfg, fid_n, e.seed, device, network)
    labels = class_labels(e.num_samples, spec.num_classes)
    results["guidance"] = []
    for alpha in e.guidance:
        with_fid = e.fid_guidance is None or alpha in e.fid_guidance
        row = _evaluate_guidance(
            model, tokenizer, labels, alpha, cfg, device, judge, network if with_fid else None, real, fid_n
        )
        tokens, images = row.pop("_tokens"), row.pop("_images")
        usage = CodebookUsage(spec.codebook_size)
        usage.update(tokens)
        summary = usage.summary()
        row.update(codes_used=summary.codes_used, usage=summary.usage_fraction, perplexity=summary.perplexity)
        results["guidance"].append(row)
        out_dir = run_dir / "eval"
        out_dir.mkdir(parents=True, exist_ok=True)
        save_class_grid(images, labels, e.grid_per_class, out_dir / f"step_{step:06d}_samples_g{alpha:g}.png")
    if e.compression_samples > 0:
        results["compression"] = compression_cost(model, tok_cfg, tokenizer, cfg, device)
    results["speed"] = sampling_speed(model, tokenizer, cfg, device)
    results["seconds"] = time.perf_counter() - start
    ckpt.write_json_atomic(results, run_dir / "eval" / f"step_{step:06d}.json")
    return results


def _evaluate_guidance(model, tokenizer, labels, alpha, cfg, device, judge, network, real, fid_n) -> dict[str, Any]:
    from fsq.evaluation.metrics import fid_from_features, manifold_precision_recall

    e = cfg.eval
    tick = time.perf_counter()
    tokens = generate(
        model,
        labels,
        num=e.num_samples,
        steps=e.steps,
        choice_temperature=e.choice_temperature,
        temperature=e.temperature,
        guidance=alpha,
        seed=e.seed,
        batch_size=e.batch_size,
        device=device,
    )
    images = decode(tokenizer, tokens, e.batch_size, device)
    row: dict[str, Any] = {"guidance": alpha, "num_samples": e.num_samples, "seconds": time.perf_counter() - tick}
    if judge is not None:
        from fsq.evaluation.classifier import predict

        predicted = torch.cat([predict(judge, b.to(device)).cpu() for b in images.split(e.batch_size)])
        row["class_accuracy"] = (predicted == labels).double().mean().item()
        row["per_class_accuracy"] = [
            (predicted[labels == c] == c).double().mean().item() for c in range(model.spec.num_classes)
        ]
    if network is not None:
        fake = network.extract(images[:fid_n], device=device)
        row["fid"] = float(fid_from_features(real, fake))
        row["precision"], row["recall"] = manifold_precision_recall(real, fake, k=e.pr_k)
        row["fid_samples"] = fid_n
    row["_tokens"], row["_images"] = tokens, images
    return row


def compression_cost(model: MaskGIT, tok_cfg, tokenizer, cfg: MaskGITExperiment, device: torch.device) -> dict:
    """Bits per token of held-out token grids (M2T power schedule over the QLDS order), with labels if any."""
    from fsq.training.tokenizer import load_split

    e = cfg.eval
    held_out = load_split(tok_cfg, cfg.data.eval_split, e.compression_samples)
    tokenizer = tokenizer.to(device).eval()
    spec = model.spec
    order = qlds_order(spec.grid_height, spec.grid_width)
    sizes = power_schedule(spec.num_tokens, e.compression_steps, e.compression_alpha)
    total, count = 0.0, 0
    for start in range(0, held_out.images.shape[0], e.batch_size):
        x = held_out.images[start : start + e.batch_size].to(device).float().div(255)
        tokens = tokenizer.tokenize(x).flatten(1)
        labels = None
        if spec.num_classes and held_out.labels is not None:
            labels = held_out.labels[start : start + e.batch_size].to(device).long()
        bits = compression_bits(
            model.tokens_to_logits(labels), tokens, mask_id=model.mask_id, order=order, group_sizes=sizes
        )
        total += bits.sum().item()
        count += tokens.numel()
    return {
        "bits_per_token": total / count,
        "uniform_bits_per_token": math.log2(spec.codebook_size),
        "split": cfg.data.eval_split,
        "grids": held_out.images.shape[0],
        "steps": e.compression_steps,
        "alpha": e.compression_alpha,
        "order": "qlds",
        "conditional": labels is not None,
    }


def sampling_speed(model: MaskGIT, tokenizer, cfg: MaskGITExperiment, device: torch.device) -> list[dict]:
    """Images/s (token sampling plus decoding, no guidance) for each number of decoding steps."""
    e = cfg.eval
    labels = class_labels(e.speed_batch, model.spec.num_classes)
    rows = []
    for steps in e.speed_steps:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tick = time.perf_counter()
        tokens = generate(
            model,
            labels,
            num=e.speed_batch,
            steps=steps,
            choice_temperature=e.choice_temperature,
            seed=e.seed,
            batch_size=e.speed_batch,
            device=device,
        )
        decode(tokenizer, tokens, e.speed_batch, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - tick
        rows.append(
            {
                "steps": steps,
                "images_per_second": e.speed_batch / seconds,
                "batch": e.speed_batch,
                "device": device.type,
                "threads": torch.get_num_threads(),
            }
        )
    return rows


@torch.no_grad()
def write_samples(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    classes: list[int] | None = None,
    num: int = 16,
    steps: int | None = None,
    guidance: float = 0.0,
    choice_temperature: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Path:
    """``num`` samples per class of a MaskGIT run: ``class_{c}.png`` grids and ``samples.npz`` (images, tokens, labels).

    Unset ``steps`` / ``choice_temperature`` take the run's ``eval`` settings. Returns the ``.npz`` path.
    """
    from fsq.evaluation.evaluate import load_run_model
    from fsq.training.maskgit import load_maskgit_run

    model, _, cfg = load_maskgit_run(run_dir)
    tokenizer, _ = load_run_model(cfg.data.tokenizer)
    device = torch.device(device)
    num_classes = model.spec.num_classes
    classes = list(range(num_classes)) if classes is None and num_classes else classes
    if classes and any(not 0 <= c < num_classes for c in classes):
        raise ValueError(f"classes must be in [0, {num_classes - 1}] for this model, got {classes}")
    labels = torch.tensor(classes).repeat_interleave(num) if classes else None
    total = num * len(classes) if classes else num
    tokens = generate(
        model,
        labels,
        num=total,
        steps=steps or cfg.eval.steps,
        choice_temperature=cfg.eval.choice_temperature if choice_temperature is None else choice_temperature,
        temperature=cfg.eval.temperature,
        guidance=guidance,
        seed=seed,
        batch_size=cfg.eval.batch_size,
        device=device,
    )
    images = decode(tokenizer, tokens, cfg.eval.batch_size, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_row = min(num, 10)
    for c in classes or [None]:
        chosen = images if c is None else images[labels == c]
        rows = [chosen[i : i + per_row] for i in range(0, chosen.shape[0], per_row)]
        grid_labels = torch.arange(len(rows)).repeat_interleave(per_row)[: chosen.shape[0]]
        save_class_grid(chosen, grid_labels, per_row, out_dir / (f"class_{c}.png" if c is not None else "samples.png"))
    path = out_dir / "samples.npz"
    uint8 = (images * 255).round().to(torch.uint8).numpy()
    arrays = {"images": uint8, "tokens": tokens.numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    tmp = out_dir / ".samples.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path
