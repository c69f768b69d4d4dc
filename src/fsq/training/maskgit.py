"""Stage II training loop: a class-conditional MaskGIT on the token grids of a Stage I tokenizer.

Per step (FSQ paper sec. 4.2 / App. A.4.2, ``maskgit_class_cond_config.py``): one masking ratio for the whole
global batch (cosine schedule, at least ``masking.min_ratio`` of the tokens masked), positions uniform without
replacement, ``masking.label_drop`` of the labels replaced by MASK (for classifier-free guidance), cross-entropy
with label smoothing on the masked positions only, AdamW (weight decay on matrices only), warmup + schedule,
EMA of the weights. Tokens come from a ``fsq tokenize`` folder or are exported once into ``run_dir/tokens``.
The loop has the Stage I machinery: run dir, exact resume (batches, masks and dropout are functions of the seed,
the step and the restored RNG state), torchrun/DDP, rank-0 logging and atomic checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsq import checkpoint as ckpt
from fsq import distributed
from fsq.config import MaskGITExperiment, from_dict, read_yaml
from fsq.generation.mask_schedule import random_mask, training_mask_count
from fsq.models.maskgit import MaskGIT, MaskGITSpec, masked_token_loss
from fsq.tracking import MetricsWriter
from fsq.training.ema import ModelEMA
from fsq.training.optim import lr_at
from fsq.training.sampler import StepBatchSampler
from fsq.training.state import (
    autocast,
    has_final_eval,
    progress_bar,
    reduce_window,
    resolved_hash,
    rng_state,
    set_rng_state,
    start_run,
)
from fsq.training.tokenizer import NonFiniteLossError


def training_tokens(cfg: MaskGITExperiment, run_dir: Path, is_main: bool) -> tuple[torch.Tensor, Any, dict]:
    """(tokens (N, h, w), labels or None, manifest) of the training split: ``data.tokens`` or exported once."""
    from fsq.tokens import export_tokens, load_tokens

    if not cfg.data.tokenizer:
        raise ValueError("data.tokenizer must name the Stage I run dir (it decodes the samples)")
    if ckpt.latest_checkpoint(cfg.data.tokenizer) is None:
        how = cfg.data.tokenizer_config or "CONFIG"
        raise FileNotFoundError(
            f"data.tokenizer={cfg.data.tokenizer} holds no trained tokenizer; train it first: "
            f"fsq train tokenizer {how} --run-dir {cfg.data.tokenizer}"
        )
    folder = Path(cfg.data.tokens) if cfg.data.tokens else run_dir / "tokens" / cfg.data.train_split
    if cfg.data.tokens is None and not (folder / "manifest.json").is_file():
        if is_main:
            export_tokens(cfg.data.tokenizer, cfg.data.train_split, folder, limit=cfg.data.train_limit)
        distributed.barrier()
    tokens, labels, manifest = load_tokens(folder)
    if manifest["split"] != cfg.data.train_split:
        raise ValueError(
            f"{folder} holds the {manifest['split']!r} split, not data.train_split={cfg.data.train_split!r}"
        )
    if cfg.data.train_limit is not None:
        tokens = tokens[: cfg.data.train_limit]
        labels = labels[: cfg.data.train_limit] if labels is not None else None
    return tokens, labels, manifest


def num_classes_of(cfg: MaskGITExperiment, labels: torch.Tensor | None, manifest: dict) -> int:
    if not cfg.masking.class_conditional:
        return 0
    if labels is None:
        raise ValueError("masking.class_conditional=true but the tokens have no labels (set it to false)")
    names = manifest.get("class_names")
    return len(names) if names else int(labels.max()) + 1


def maskgit_spec(cfg: MaskGITExperiment, codebook_size: int, grid: list[int], num_classes: int) -> MaskGITSpec:
    m = cfg.model
    return MaskGITSpec(
        codebook_size=codebook_size,
        num_classes=num_classes,
        grid_height=grid[0],
        grid_width=grid[1],
        width=m.width,
        depth=m.depth,
        heads=m.heads,
        mlp_dim=m.mlp_dim,
        dropout=m.dropout,
        norm_first=m.norm_first,
    )


def build_optimizer(cfg: MaskGITExperiment, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW; weight decay on weight matrices, none on biases, norms, embeddings and position embeddings."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    o = cfg.optim
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2))


def load_maskgit_run(run_dir: str | Path, use_ema: bool = True) -> tuple[MaskGIT, int, MaskGITExperiment]:
    """The newest checkpoint's MaskGIT (EMA weights when present), its step and the run's config."""
    run_dir = Path(run_dir)
    cfg = from_dict(MaskGITExperiment, read_yaml(run_dir / "config.yaml"))
    model, step = ckpt.load_latest_model(run_dir, lambda spec: MaskGIT(MaskGITSpec(**spec)), use_ema)
    return model, step, cfg


def _step_generator(seed: int, step: int) -> torch.Generator:
    """The masking randomness of one step, drawn for the global batch (so N ranks mask as one process would)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**63)


def train_maskgit(cfg: MaskGITExperiment, run_dir: str | Path) -> dict[str, Any]:
    """Train (or resume) a MaskGIT in ``run_dir``; returns the final step and, if run, the evaluation."""
    run_dir = Path(run_dir)
    info = start_run(cfg, run_dir)
    device = info.device
    tokens, labels, manifest = training_tokens(cfg, run_dir, info.is_main)
    num_tokens = tokens.shape[1] * tokens.shape[2]
    spec = maskgit_spec(cfg, manifest["codebook_size"], manifest["token_grid"], num_classes_of(cfg, labels, manifest))
    torch.manual_seed(cfg.train.seed)
    model = MaskGIT(spec).to(device)
    ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    optimizer = build_optimizer(cfg, model)
    start = 0
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None:
        start = _restore(latest, cfg, model, ema, optimizer, device)
    network: nn.Module = model
    if info.enabled:
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = StepBatchSampler(
        tokens.shape[0], cfg.train.batch_size, seed=cfg.train.seed, rank=info.rank, world_size=info.world_size
    )
    writer = MetricsWriter(run_dir, resume_step=start) if info.is_main else None
    progress = progress_bar(cfg.train.steps, start, f"train {cfg.name}", info.is_main and cfg.train.progress)
    window: dict[str, float] = {}
    tick = time.perf_counter()
    try:
        for step in range(start, cfg.train.steps):
            index = sampler.indices(step)
            batch = tokens[index].flatten(1).to(device)
            batch_labels = labels[index].to(device) if spec.num_classes else None
            values = _train_step(cfg, model, network, ema, optimizer, batch, batch_labels, num_tokens, step, info.rank)
            for key, value in values.items():
                window[key] = window.get(key, 0.0) + value
            if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
                logged = reduce_window(window, device)
                logged["lr"] = optimizer.param_groups[0]["lr"]
                logged["sec_per_step"] = (time.perf_counter() - tick) / max(1.0, window.get("_steps", 1.0))
                tick = time.perf_counter()
                if writer is not None:
                    writer.log(step + 1, logged)
                if progress is not None:
                    progress.set_postfix(loss=f"{logged['loss']:.3f}", acc=f"{logged['masked_accuracy']:.3f}")
                window = {}
            if progress is not None:
                progress.update(1)
            if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.steps:
                if info.is_main:
                    _save(run_dir, step + 1, cfg, model, ema, optimizer, device)
                distributed.barrier()
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    result: dict[str, Any] = {"step": cfg.train.steps, "run_dir": str(run_dir)}
    if cfg.train.eval_at_end and not has_final_eval(run_dir, cfg.train.steps):
        from fsq.evaluation.generation import evaluate_maskgit

        result["eval"] = evaluate_maskgit(run_dir, cfg=cfg, model=(ema.shadow if ema else model))
    distributed.barrier()
    return result


def _train_step(
    cfg: MaskGITExperiment,
    model: MaskGIT,
    network: nn.Module,
    ema: ModelEMA | None,
    optimizer: torch.optim.Optimizer,
    tokens: torch.Tensor,
    labels: torch.Tensor | None,
    num_tokens: int,
    step: int,
    rank: int,
) -> dict[str, float]:
    lr = lr_at(
        step,
        base_lr=cfg.optim.lr,
        total_steps=cfg.train.steps,
        warmup_steps=cfg.optim.warmup_steps,
        schedule=cfg.optim.schedule,
    )
    for group in optimizer.param_groups:
        group["lr"] = lr
    m = cfg.masking
    shared = _step_generator(cfg.train.seed, step)  # the same stream on every rank: masks of the global batch
    count = training_mask_count(num_tokens, min_ratio=m.min_ratio, method=m.schedule, generator=shared)
    world = cfg.train.batch_size // tokens.shape[0]
    mask = random_mask(cfg.train.batch_size, num_tokens, count, generator=shared)[rank::world].to(tokens.device)
    drop = torch.rand(cfg.train.batch_size, generator=shared)[rank::world] < m.label_drop
    inputs = torch.where(mask, torch.full_like(tokens, model.mask_id), tokens)
    if labels is not None and m.label_drop > 0:
        labels = torch.where(drop.to(labels.device), torch.full_like(labels, -1), labels)
    with autocast(cfg.train.precision, tokens.device):
        logits = network(inputs, labels)
        loss = masked_token_loss(logits, tokens, mask, m.label_smoothing)
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"non-finite loss at step {step}; lower optim.lr. The last checkpoint is intact.")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    if ema is not None:
        ema.update(model)
    with torch.no_grad():
        correct = (logits.detach().argmax(-1) == tokens) & mask
        accuracy = correct.sum() / mask.sum()
    return {
        "loss": float(loss.detach()),
        "masked_accuracy": float(accuracy),
        "mask_ratio": count / num_tokens,
        "_steps": 1.0,
    }


def _save(
    run_dir: Path,
    step: int,
    cfg: MaskGITExperiment,
    model: MaskGIT,
    ema: ModelEMA | None,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> Path:
    weights = {"model": model.state_dict()}
    if ema is not None:
        weights["ema"] = ema.state_dict()
    torch_state = {"optimizer": optimizer.state_dict(), "rng": rng_state(device)}
    state = {"config_hash": resolved_hash(cfg), "spec": model.spec.to_dict(), "stage": "maskgit"}
    return ckpt.save_checkpoint(run_dir, step, weights, torch_state, state, keep_last=cfg.train.keep_last)


def _restore(
    directory: Path,
    cfg: MaskGITExperiment,
    model: MaskGIT,
    ema: ModelEMA | None,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> int:
    names = ["model"] + (["ema"] if ema else [])
    weights, torch_state, state = ckpt.load_checkpoint(directory, names, resolved_hash(cfg))
    try:
        model.load_state_dict(weights["model"], strict=True)
        if ema is not None:
            ema.load_state_dict(weights["ema"])
        optimizer.load_state_dict(torch_state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as error:
        raise ckpt.CheckpointError(f"{directory} does not fit this model/config: {error}") from error
    set_rng_state(torch_state["rng"], device)
    return int(state["step"])
