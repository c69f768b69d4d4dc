"""Evaluate a MaskGIT run: class accuracy, sampling FID, precision / recall, usage, compression cost, speed.

For each guidance weight in ``eval.guidance``: ``eval.num_samples`` class-conditional samples (labels cycling over
the classes, ``eval.steps`` decoding steps), decoded by the Stage I tokenizer, then
- class accuracy: the share judged the conditioning class by a classifier trained on the real training set
  (``fsq.evaluation.classifier``; its own test accuracy is reported beside it);
- sampling FID against real reference images (by default random *training* images: the paper's "FID-train"), and
  k-NN precision / recall (k = ``eval.pr_k``, the ADM suite's definition) on Inception features of the first
  ``eval.fid_samples`` samples and as many reference images (their features cached by the images' hash);
- judge Frechet distance and judge precision / recall: the Frechet distance and the same k-NN precision / recall
  between the samples' and as many reference images' penultimate features of the class judge (a CPU-cheap
  stand-in, named as such and never called FID);
- codebook usage and perplexity of the sampled tokens (sampled usage, not the tokenizer's usage on held-out data).
``eval.reference_split`` picks the reference images' split (None: the tokenizer's training split; a held-out
split lets a study tune on ``val`` and report on ``test``).
Once per run: the tokenizer's codebook usage on ``eval.num_samples`` held-out images of ``data.eval_split`` (as
many tokens as the samples have: the two usages compare at equal counts), the compression cost (bits per token of
held-out token grids under the M2T deterministic schedule, conditioned on their labels), and sampling speed in
images/s (tokens and decoding) for each ``eval.speed_steps``.
Audio and video token grids get their own evaluation: frame prediction (:mod:`fsq.evaluation.frame_prediction`),
voice-conditioned speech judged by a voice classifier (:mod:`fsq.evaluation.voice_samples`), else samples and
their code usage (:func:`fsq.evaluation.signals.signal_samples`).
Writes ``eval/step_N{suffix}.json`` and ``eval/step_N{suffix}_samples_g{alpha}.png`` (one row per class; the
suffix is empty unless the caller gives one, e.g. ``_val`` for a second evaluation on another split, which
:func:`fsq.rundir.latest_eval` then ignores). Runs on rank 0; the other ranks wait.
With ``reuse=True`` an existing evaluation of the same step, tokenizer checkpoint and protocol (:func:`protocol`:
sampling settings, seed, batch, splits, sample and FID counts, precision / recall k, judge steps) is extended
instead of redone: only guidance weights it lacks are sampled (each weight's samples depend on the protocol and the
weight alone, so a weight measured before would come out the same), the rows it has and its once-per-run parts are
kept; an evaluation of another protocol is redone whole.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import distributed, rundir
from fsq.config import MaskGITExperiment, read_run_config
from fsq.evaluation.classifier import load_or_train_classifier, penultimate_features, predict
from fsq.evaluation.frame_prediction import prediction_samples
from fsq.evaluation.signals import signal_samples
from fsq.evaluation.tokenizer import cached_features, fid_cache_path
from fsq.evaluation.voice_samples import is_voice_conditioned, voice_samples
from fsq.generation import compression_bits, power_schedule, qlds_order
from fsq.generation.token_layout import layout_of
from fsq.inference.sampling import class_labels, decode, generate, generate_for_eval, save_class_grid
from fsq.io import read_json, write_json_atomic
from fsq.metrics.image import fid_from_features, manifold_precision_recall
from fsq.metrics.inception import InceptionFeatures
from fsq.models.maskgit import MaskGIT
from fsq.quantizers.stats import CodebookUsage
from fsq.stages.maskgit import TrainedMaskGIT, run_tokenizer
from fsq.stages.maskgit import load_run as load_maskgit_run
from fsq.stages.tokenizer import load_split


def reference_images(tok_cfg, split: str, count: int, seed: int) -> torch.Tensor:
    """``count`` random uint8 images of ``split`` of the tokenizer's data (the same ones for the same seed)."""
    pool = load_split(tok_cfg, split, None).images
    if pool.shape[0] < count:
        raise ValueError(
            f"eval.reference_split={split!r} has {pool.shape[0]} images, fewer than the {count} samples it is compared "
            "with: lower eval.num_samples or pick a larger split"
        )
    pick = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))[:count]
    return pool[pick]


def _real_features(tok_cfg, split: str, count: int, seed: int, device: torch.device, network) -> np.ndarray:
    """Inception features of ``count`` random reference images (cached under the data cache by their hash)."""
    images = reference_images(tok_cfg, split, count, seed)
    return cached_features(
        fid_cache_path(tok_cfg.data.cache_dir, images), lambda: network.extract(images.float().div(255), device=device)
    )


@torch.no_grad()
def evaluate_maskgit(
    run_dir: str | Path,
    *,
    cfg: MaskGITExperiment | None = None,
    trained: TrainedMaskGIT | None = None,
    device: torch.device | None = None,
    suffix: str = "",
    reuse: bool = False,
) -> dict[str, Any]:
    """Evaluate and write ``eval/step_N{suffix}.json`` (rank 0); returns the results (empty on other ranks).

    ``trained``: the model training just left, evaluated under ``cfg`` (None: the run's newest checkpoint).
    ``reuse``: extend an existing evaluation of the same protocol with the guidance weights it lacks (see above).
    Runs on rank 0 of the process group training or the CLI set up; the other ranks wait.
    """
    if suffix and (not suffix.startswith("_") or "/" in suffix):
        raise ValueError(f"suffix must start with '_' and name no folder (e.g. '_val'), got {suffix!r}")
    run_dir = Path(run_dir)
    if trained is None:
        model, step, saved_cfg = load_maskgit_run(run_dir)
        cfg = cfg or saved_cfg
    elif cfg is None:
        raise ValueError("evaluate_maskgit: pass the model's cfg together with the model")
    else:
        model, step = trained.model, trained.step
    info, run_cfg = distributed.current(cfg.train.device), cfg

    def evaluate() -> dict[str, Any]:
        previous = _reusable(run_dir, run_cfg, step, suffix) if reuse else None
        return _evaluate(run_dir, run_cfg, model, step, device or info.device, suffix, previous)

    return info.on_main(evaluate, {})


def protocol(cfg: MaskGITExperiment, tok_cfg=None) -> dict[str, Any]:
    """What an evaluation's numbers depend on besides the model and the guidance weight (``reuse`` compares it)."""
    e = cfg.eval
    fid_n = min(e.fid_samples, e.num_samples)
    return {
        "sampling": {"steps": e.steps, "choice_temperature": e.choice_temperature, "temperature": e.temperature},
        **_unrecorded(cfg),
        "eval_split": cfg.data.eval_split,
        "num_samples": e.num_samples,
        "fid_samples": fid_n if fid_n > e.pr_k else 0,
        **({"fid_guidance": e.fid_guidance} if fid_n > e.pr_k else {}),
        **({"reference_split": e.reference_split or tok_cfg.data.train_split} if tok_cfg is not None else {}),
    }


def _unrecorded(cfg: MaskGITExperiment) -> dict[str, Any]:
    """The protocol's settings that evaluations written before the protocol was recorded did not note: the seed,
    the batch (the random draws follow it), the k of precision / recall and the judge's training steps."""
    e = cfg.eval
    return {"seed": e.seed, "batch_size": e.batch_size, "pr_k": e.pr_k, "classifier_steps": e.classifier_steps}


def _recorded_protocol(previous: dict[str, Any], run_dir: Path) -> dict[str, Any] | None:
    """The protocol of an existing evaluation: as recorded, or rebuilt for a file written before it was (its
    fields); settings it does not note come from the run's saved config, which such evaluations used. None where
    that cannot be told (FID computed without a recorded protocol; no saved config)."""
    saved = _unrecorded(read_run_config(run_dir)) if (run_dir / rundir.CONFIG).is_file() else None
    if "protocol" in previous:
        return {**(saved or {}), **previous["protocol"]}
    rows = previous.get("guidance", [])
    counts = {row.get("num_samples") for row in rows}
    if saved is None or len(counts) != 1 or any("fid" in row for row in rows) or "sampling" not in previous:
        return None
    return {
        "sampling": previous["sampling"],
        **saved,
        "eval_split": previous.get("eval_split"),
        "num_samples": counts.pop(),
        "fid_samples": 0,
        "reference_split": previous.get("reference_split"),
    }


def _reusable(run_dir: Path, cfg: MaskGITExperiment, step: int, suffix: str) -> dict[str, Any] | None:
    """The existing evaluation of ``step`` when made under ``cfg``'s protocol (its reference split is checked once
    the tokenizer is loaded; the protocol is then in ``previous["protocol"]``), else None."""
    path = rundir.eval_path(run_dir, step, f"{suffix}.json")
    if not path.is_file():
        return None
    previous = read_json(path, "a kept evaluation")
    recorded = _recorded_protocol(previous, run_dir) if previous.get("step") == step else None
    if recorded is None or any(recorded.get(k) != v for k, v in protocol(cfg).items()):
        return None
    return {**previous, "protocol": recorded}


def _evaluate(
    run_dir: Path,
    cfg: MaskGITExperiment,
    model: MaskGIT,
    step: int,
    device: torch.device,
    suffix: str,
    previous: dict[str, Any] | None = None,
) -> dict:

    start = time.perf_counter()
    e = cfg.eval
    model = model.to(device).eval()
    tokenizer, tokenizer_step, tok_cfg, tokenizer_run = run_tokenizer(run_dir, cfg)  # embedded, or data.tokenizer
    spec = model.spec
    results: dict[str, Any] = {
        "step": step,
        "tokenizer_run": tokenizer_run,
        "tokenizer_step": tokenizer_step,
        **tokenizer.spec.quantizer.report(),  # "quantizer" (its kind) and "levels" (None without levels)
        "codebook_size": spec.codebook_size,
        "token_grid": list(spec.grid_shape),
        "num_classes": spec.num_classes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "sampling": {"steps": e.steps, "choice_temperature": e.choice_temperature, "temperature": e.temperature},
        "eval_split": cfg.data.eval_split,
        "reference_split": e.reference_split or tok_cfg.data.train_split,
        "protocol": protocol(cfg, tok_cfg),
    }
    if tokenizer.spec.dims != 2:  # audio, video: samples and their code usage (no image metrics)
        if cfg.masking.condition_frames:  # frame prediction: predicted frames against the real ones
            stem = rundir.eval_path(run_dir, step, f"{suffix}_prediction")
            results.update(prediction_samples(model, tokenizer, cfg, tok_cfg, device, stem))
        elif is_voice_conditioned(tok_cfg, tokenizer, spec.num_classes):  # speech: samples judged by voice
            stem = rundir.eval_path(run_dir, step, suffix)
            results.update(voice_samples(model, tokenizer, cfg, tok_cfg, device, stem))
        else:
            results.update(signal_samples(model, tokenizer, cfg, device))
        results["seconds"] = time.perf_counter() - start
        (run_dir / rundir.EVAL).mkdir(parents=True, exist_ok=True)
        write_json_atomic(results, rundir.eval_path(run_dir, step, f"{suffix}.json"))
        return results
    same = ("reference_split", "tokenizer_step", "parameters")  # also the same tokenizer checkpoint and model size
    if previous is not None and any(previous.get(k) != results[k] for k in same):
        previous = None
    done = {} if previous is None else {row["guidance"]: row for row in previous["guidance"]}
    todo = [alpha for alpha in e.guidance if alpha not in done]
    reference_split = results["reference_split"]
    judge = judge_real = None
    if spec.num_classes and todo:
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
        real_images = reference_images(tok_cfg, reference_split, e.num_samples, e.seed)
        judge_real = penultimate_features(judge, real_images.float().div(255)).double().numpy()
    network = real = None
    fid_n = min(e.fid_samples, e.num_samples)
    if fid_n > e.pr_k and todo:
        network = InceptionFeatures().to(device)
        real = _real_features(tok_cfg, reference_split, fid_n, e.seed, device, network)
    labels = class_labels(e.num_samples, spec.num_classes)
    results["guidance"] = list(done.values())
    for alpha in todo:
        with_fid = e.fid_guidance is None or alpha in e.fid_guidance
        row = _evaluate_guidance(
            model,
            tokenizer,
            labels,
            alpha,
            cfg,
            device,
            (judge, judge_real),
            network if with_fid else None,
            real,
            fid_n,
        )
        tokens, images = row.pop("_tokens"), row.pop("_images")
        usage = CodebookUsage(spec.codebook_size)
        usage.update(tokens)
        summary = usage.summary()
        row.update(codes_used=summary.codes_used, usage=summary.usage_fraction, perplexity=summary.perplexity)
        results["guidance"].append(row)
        out_dir = run_dir / rundir.EVAL
        out_dir.mkdir(parents=True, exist_ok=True)
        grid = rundir.eval_path(run_dir, step, f"{suffix}_samples_g{alpha:g}.png")
        save_class_grid(images, labels, e.grid_per_class, grid)
    results["guidance"].sort(key=lambda row: row["guidance"])
    if previous is not None:  # the once-per-run parts (and the judge's record) of the evaluation extended
        kept = ("classifier", "tokenizer_usage", "compression", "speed")
        results.update({k: previous[k] for k in kept if k in previous and k not in results})
    if "tokenizer_usage" not in results:
        results["tokenizer_usage"] = held_out_usage(
            tok_cfg, tokenizer, cfg.data.eval_split, e.num_samples, e.batch_size, device
        )
    if e.compression_samples > 0 and "compression" not in results:
        results["compression"] = compression_cost(model, tok_cfg, tokenizer, cfg, device)
    if "speed" not in results:
        results["speed"] = sampling_speed(model, tokenizer, cfg, device)
    results["seconds"] = time.perf_counter() - start + (previous or {}).get("seconds", 0.0)
    write_json_atomic(results, rundir.eval_path(run_dir, step, f"{suffix}.json"))
    return results


def _evaluate_guidance(model, tokenizer, labels, alpha, cfg, device, judges, network, real, fid_n) -> dict[str, Any]:
    e = cfg.eval
    judge, judge_real = judges
    tick = time.perf_counter()
    tokens = generate_for_eval(model, labels, e, alpha, device, show_progress=cfg.train.progress)
    images = decode(tokenizer, tokens, e.batch_size, device, layout_of(model.spec))
    row: dict[str, Any] = {"guidance": alpha, "num_samples": e.num_samples, "seconds": time.perf_counter() - tick}
    if judge is not None:
        predicted = torch.cat([predict(judge, b.to(device)).cpu() for b in images.split(e.batch_size)])
        row["class_accuracy"] = (predicted == labels).double().mean().item()
        row["per_class_accuracy"] = [
            (predicted[labels == c] == c).double().mean().item() for c in range(model.spec.num_classes)
        ]
        fake = penultimate_features(judge, images.float()).double().numpy()
        row["judge_fd"] = float(fid_from_features(judge_real, fake))
        row["judge_precision"], row["judge_recall"] = manifold_precision_recall(judge_real, fake, k=e.pr_k)
    if network is not None:
        fake = network.extract(images[:fid_n], device=device)
        row["fid"] = float(fid_from_features(real, fake))
        row["precision"], row["recall"] = manifold_precision_recall(real, fake, k=e.pr_k)
        row["fid_samples"] = fid_n
    row["_tokens"], row["_images"] = tokens, images
    return row


@torch.no_grad()
def held_out_usage(tok_cfg, tokenizer, split: str, count: int, batch_size: int, device: torch.device) -> dict[str, Any]:
    """The tokenizer's codebook usage on the first ``count`` images of ``split`` (tokenizer usage, not sampled)."""
    held_out = load_split(tok_cfg, split, count).images
    tokenizer = tokenizer.to(device).eval()
    usage = CodebookUsage(tokenizer.codebook_size)
    for batch in held_out.split(batch_size):
        usage.update(tokenizer.tokenize(batch.to(device).float().div(255)).cpu())
    summary = usage.summary()
    return {
        "codes_used": summary.codes_used,
        "usage": summary.usage_fraction,
        "perplexity": summary.perplexity,
        "split": split,
        "images": held_out.shape[0],
    }


def compression_cost(model: MaskGIT, tok_cfg, tokenizer, cfg: MaskGITExperiment, device: torch.device) -> dict:
    """Bits per token of held-out token grids (M2T power schedule over the QLDS order), with labels if any."""
    e = cfg.eval
    held_out = load_split(tok_cfg, cfg.data.eval_split, e.compression_samples)
    tokenizer = tokenizer.to(device).eval()
    spec = model.spec
    layout = layout_of(spec)
    grid = spec.grid_shape  # QLDS order on 2-D grids; raster order on 1-D and 3-D ones
    order = qlds_order(*grid) if len(grid) == 2 else torch.arange(spec.num_tokens)
    sizes = power_schedule(spec.num_tokens, e.compression_steps, e.compression_alpha)
    total, count = 0.0, 0
    for start in range(0, held_out.images.shape[0], e.batch_size):
        x = held_out.images[start : start + e.batch_size].to(device).float().div(255)
        indices = tokenizer.tokenize(x)
        tokens = (layout.to_tokens(indices) if layout is not None else indices).flatten(1)
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
        "order": "qlds" if len(grid) == 2 else "raster",
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
        decode(tokenizer, tokens, e.speed_batch, device, layout_of(model.spec))
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
