"""Stage I training loop: the tokenizer (autoencoder + FSQ/VQ), optional perceptual and GAN losses.

One explicit loop. A run dir that already holds a checkpoint resumes by itself and continues exactly where it
stopped: the batch of every step is a pure function of (seed, step) (``StepBatchSampler``), and weights, EMA,
optimizer and RNG states come back from the checkpoint, so on the CPU a resumed run equals an uninterrupted
one bit for bit. Under torchrun each rank takes its share of the global batch (DDP averages the gradients);
rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq import checkpoint as ckpt
from fsq import distributed
from fsq.config import TokenizerExperiment
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.quantizers.stats import CodebookUsage
from fsq.tracking import MetricsWriter
from fsq.training.ema import ModelEMA
from fsq.training.optim import lr_at
from fsq.training.sampler import StepBatchSampler
from fsq.training.state import (
    autocast,
    progress_bar,
    reduce_window,
    resolved_hash,
    rng_state,
    set_rng_state,
    start_run,
)
from fsq.training.state import has_final_eval as _has_final_eval


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; training stops instead of writing a broken checkpoint."""


def tokenizer_spec(cfg: TokenizerExperiment, in_channels: int) -> TokenizerSpec:
    """The model spec a config describes (``in_channels`` comes from the data)."""
    m, q = cfg.model, cfg.quantizer
    return TokenizerSpec(
        image_size=cfg.data.image_size,
        in_channels=in_channels,
        filters=m.filters,
        channel_multipliers=list(m.channel_multipliers),
        num_res_blocks=m.num_res_blocks,
        num_groups=m.num_groups,
        quantizer=q.kind,
        levels=list(q.levels),
        variant=q.variant,
        codebook_size=q.codebook_size,
        code_dim=q.dim,
        vq_recipe=q.recipe,
    )


def load_split(cfg: TokenizerExperiment, split: str, limit: int | None):
    """Images of one split as an ``ImageSet`` (uint8, in memory).

    Generated sources (photo crops) draw the training split from ``train.seed`` and any other split from
    ``train.seed + 1``, so training, evaluation and token export all see the same images of a split.
    """
    seed = cfg.train.seed + (0 if split == cfg.data.train_split else 1)
    from fsq.data import load_images

    d = cfg.data
    num_crops = None
    if d.source == "photos":  # crops are generated: make no more than will be kept
        num_crops = d.num_crops if limit is None else min(d.num_crops or limit, limit)
    return load_images(
        d.source,
        split,
        image_size=d.image_size,
        cache_dir=d.cache_dir,
        limit=limit,
        num_crops=num_crops,
        seed=seed,
        channels=d.channels,
        on_error=d.on_error,
    )


@dataclass
class Components:
    model: Tokenizer
    ema: ModelEMA | None
    discriminator: nn.Module | None
    perceptual: nn.Module | None
    optimizer: torch.optim.Optimizer
    disc_optimizer: torch.optim.Optimizer | None


def build_components(cfg: TokenizerExperiment, spec: TokenizerSpec, device: torch.device) -> Components:
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    model = Tokenizer(spec).to(device)
    ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    o = cfg.optim
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
    discriminator = disc_optimizer = perceptual = None
    if cfg.loss.adversarial_weight > 0:
        from fsq.models.discriminator import StyleGANDiscriminator

        discriminator = StyleGANDiscriminator(
            in_channels=spec.in_channels, image_size=spec.image_size, base_channels=cfg.loss.discriminator_channels
        ).to(device)
        disc_optimizer = torch.optim.Adam(
            discriminator.parameters(), lr=o.discriminator_lr or o.lr, betas=(o.beta1, o.beta2)
        )
    if cfg.loss.perceptual_weight > 0:
        from fsq.losses import EfficientNetPerceptualLoss

        perceptual = EfficientNetPerceptualLoss().to(device)
    return Components(model, ema, discriminator, perceptual, optimizer, disc_optimizer)


def save(run_dir: Path, step: int, c: Components, cfg: TokenizerExperiment, device: torch.device) -> Path:
    weights = {"model": c.model.state_dict()}
    if c.ema is not None:
        weights["ema"] = c.ema.state_dict()
    if c.discriminator is not None:
        weights["discriminator"] = c.discriminator.state_dict()
    torch_state = {"optimizer": c.optimizer.state_dict(), "rng": rng_state(device)}
    if c.disc_optimizer is not None:
        torch_state["disc_optimizer"] = c.disc_optimizer.state_dict()
    state = {"config_hash": resolved_hash(cfg), "spec": c.model.spec.__dict__}
    return ckpt.save_checkpoint(run_dir, step, weights, torch_state, state, keep_last=cfg.train.keep_last)


def restore(directory: Path, c: Components, cfg: TokenizerExperiment, device: torch.device) -> int:
    names = ["model"] + (["ema"] if c.ema else []) + (["discriminator"] if c.discriminator else [])
    weights, torch_state, state = ckpt.load_checkpoint(directory, names, resolved_hash(cfg))
    try:
        c.model.load_state_dict(weights["model"], strict=True)
        if c.ema is not None:
            c.ema.load_state_dict(weights["ema"])
        if c.discriminator is not None:
            c.discriminator.load_state_dict(weights["discriminator"], strict=True)
        c.optimizer.load_state_dict(torch_state["optimizer"])
        if c.disc_optimizer is not None:
            c.disc_optimizer.load_state_dict(torch_state["disc_optimizer"])
    except (RuntimeError, KeyError, ValueError) as error:
        raise ckpt.CheckpointError(f"{directory} does not fit this model/config: {error}") from error
    set_rng_state(torch_state["rng"], device)
    return int(state["step"])


def train_tokenizer(cfg: TokenizerExperiment, run_dir: str | Path) -> dict[str, Any]:
    """Train (or resume) a tokenizer in ``run_dir``; returns the final step and, if run, the evaluation."""
    run_dir = Path(run_dir)
    info = start_run(cfg, run_dir)
    device = info.device

    train_set = load_split(cfg, cfg.data.train_split, cfg.data.train_limit)
    images = train_set.images  # uint8 (N, C, H, W), stays on the CPU
    spec = tokenizer_spec(cfg, in_channels=images.shape[1])
    c = build_components(cfg, spec, device)
    start = 0
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None:
        start = restore(latest, c, cfg, device)
    model: nn.Module = c.model
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            c.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = StepBatchSampler(
        images.shape[0], cfg.train.batch_size, seed=cfg.train.seed, rank=info.rank, world_size=info.world_size
    )
    writer = MetricsWriter(run_dir, resume_step=start) if info.is_main else None
    usage = CodebookUsage(c.model.codebook_size, device=device)
    progress = progress_bar(cfg.train.steps, start, f"train {cfg.name}", info.is_main and cfg.train.progress)
    window: dict[str, float] = {}
    step = start
    tick = time.perf_counter()
    try:
        for step in range(start, cfg.train.steps):
            batch = images[sampler.indices(step)].to(device).float().div_(255)
            values = _train_step(cfg, c, model, batch, step, device)
            usage.update(values.pop("indices"))
            for key, value in values.items():
                window[key] = window.get(key, 0.0) + value
            if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
                logged = reduce_window(window, device)
                usage.all_reduce()
                summary = usage.summary()
                logged.update(usage=summary.usage_fraction, perplexity=summary.perplexity)
                logged["lr"] = c.optimizer.param_groups[0]["lr"]
                logged["sec_per_step"] = (time.perf_counter() - tick) / max(1.0, window.get("_steps", 1.0))
                tick = time.perf_counter()
                if writer is not None:
                    writer.log(step + 1, logged)
                if progress is not None:
                    progress.set_postfix(
                        loss=f"{logged['loss']:.4f}",
                        psnr=f"{logged['psnr']:.2f}",
                        usage=f"{summary.usage_fraction:.1%}",
                    )
                window = {}
                usage.reset()
            if progress is not None:
                progress.update(1)
            done = step + 1 == cfg.train.steps
            if (step + 1) % cfg.train.checkpoint_every == 0 or done:
                if info.is_main:
                    save(run_dir, step + 1, c, cfg, device)
                distributed.barrier()
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    result: dict[str, Any] = {"step": cfg.train.steps, "run_dir": str(run_dir)}
    if cfg.train.eval_at_end and not has_final_eval(run_dir, cfg):
        from fsq.evaluation.evaluate import evaluate_tokenizer

        result["eval"] = evaluate_tokenizer(run_dir, cfg=cfg, model=(c.ema.shadow if c.ema else c.model))
    distributed.barrier()
    return result


def has_final_eval(run_dir: Path, cfg: TokenizerExperiment) -> bool:
    """Whether the run dir holds the evaluation of its final step (a finished run)."""
    return _has_final_eval(run_dir, cfg.train.steps)


def _train_step(
    cfg: TokenizerExperiment, c: Components, model: nn.Module, x: torch.Tensor, step: int, device: torch.device
) -> dict[str, Any]:
    """One generator (and discriminator) update; returns loggable floats and the batch's token indices."""
    lr = lr_at(
        step,
        base_lr=cfg.optim.lr,
        total_steps=cfg.train.steps,
        warmup_steps=cfg.optim.warmup_steps,
        schedule=cfg.optim.schedule,
    )
    for group in c.optimizer.param_groups:
        group["lr"] = lr
    lw = cfg.loss
    adversarial_on = c.discriminator is not None and step >= lw.adversarial_start
    with autocast(cfg.train.precision, device):
        try:
            reconstruction, out = model(x)
        except ValueError as error:  # the quantizer refuses NaN/Inf encoder output
            if "non-finite" not in str(error):
                raise
            raise NonFiniteLossError(
                f"non-finite encoder output at step {step} ({error}); lower optim.lr or check the data. "
                "The last checkpoint is intact."
            ) from error
        reconstruction = reconstruction.float()
        rec_loss = F.mse_loss(reconstruction, x)
        loss = rec_loss + out.aux_loss
        values: dict[str, Any] = {"rec_loss": rec_loss.detach()}
        if c.perceptual is not None:
            perceptual = c.perceptual(reconstruction, x)
            loss = loss + lw.perceptual_weight * perceptual
            values["perceptual_loss"] = perceptual.detach()
        if adversarial_on:
            from fsq.losses import generator_loss_nonsaturating

            c.discriminator.requires_grad_(False)
            g_adv = generator_loss_nonsaturating(c.discriminator(reconstruction))
            c.discriminator.requires_grad_(True)
            loss = loss + lw.adversarial_weight * g_adv
            values["g_adv_loss"] = g_adv.detach()
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"non-finite loss ({loss.detach().item()}) at step {step} (reconstruction {rec_loss.detach().item()}, "
            f"quantizer aux {out.aux_loss.detach().item()}); lower optim.lr or check the data. "
            "The last checkpoint is intact."
        )
    c.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(c.model.parameters(), cfg.optim.grad_clip)
    c.optimizer.step()
    if c.ema is not None:
        c.ema.update(c.model)
    if adversarial_on:
        values.update(_discriminator_step(cfg, c, x, reconstruction.detach(), lr, step))
    mse = (reconstruction.detach().clamp(0, 1) - x).square().flatten(1).mean(1)
    values["psnr"] = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
    values["loss"] = loss.detach()
    values["aux_loss"] = out.aux_loss.detach()
    result = {k: float(v) for k, v in values.items()}
    result["_steps"] = 1.0
    result["indices"] = out.indices.detach()
    return result


def _discriminator_step(
    cfg: TokenizerExperiment, c: Components, real: torch.Tensor, fake: torch.Tensor, lr: float, step: int
) -> dict[str, float]:
    from fsq.losses import discriminator_loss_nonsaturating, r1_penalty

    scale = lr / cfg.optim.lr if cfg.optim.lr > 0 else 0.0  # the discriminator follows the same schedule
    for group in c.disc_optimizer.param_groups:
        group["lr"] = (cfg.optim.discriminator_lr or cfg.optim.lr) * scale
    real = real.detach().requires_grad_(True)
    real_logits = c.discriminator(real)
    d_loss = discriminator_loss_nonsaturating(real_logits, c.discriminator(fake))
    r1 = r1_penalty(real, real_logits)
    total = d_loss + cfg.loss.r1_weight * r1
    if not math.isfinite(float(total.detach())):
        raise NonFiniteLossError(f"non-finite discriminator loss at step {step}; the last checkpoint is intact")
    c.disc_optimizer.zero_grad(set_to_none=True)
    total.backward()
    c.disc_optimizer.step()
    return {"d_loss": float(d_loss.detach()), "r1": float(r1.detach())}
