"""Stage I: the tokenizer (autoencoder + FSQ/VQ) with optional perceptual and GAN losses.

Builders from a :class:`~fsq.config.TokenizerExperiment` (the model spec, the images of a split), the explicit
step function (reconstruction + quantizer aux loss + perceptual + non-saturating GAN; then the discriminator's
update with R1), and the loading of a trained run. The batch of every step is a pure function of (seed, step)
(:class:`~fsq.data.loader.StepLoader`: the built-in sources indexed in memory, folders, shards and Hugging Face
datasets decoded in ``data.workers`` DataLoader workers), so a resumed run sees the batches an uninterrupted one
would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq import checkpoint as ckpt
from fsq.config import ConfigError, TokenizerExperiment, read_run_config, resume_hash, spec_from, to_dict
from fsq.data import ImageSet, cache_dir, load_images
from fsq.data.datasets import ImageItems, MemoryItems, open_items, source_kind
from fsq.data.loader import StepLoader, iterate_batches
from fsq.data.signal_files import SignalFolderItems, SignalShardItems
from fsq.data.signals import SignalItems, to_unit
from fsq.data.transforms import ItemTransform, TransformMode
from fsq.distributed import DistInfo
from fsq.grids import grid_array
from fsq.io import write_json_atomic
from fsq.losses import (
    EfficientNetPerceptualLoss,
    discriminator_loss_nonsaturating,
    generator_loss_nonsaturating,
    r1_penalty,
)
from fsq.losses.lpips import LPIPS
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.models.discriminator import StyleGANDiscriminator
from fsq.models.quantizer import QuantizerSpec
from fsq.optim import ModelEMA
from fsq.quantizers.registry import family_of
from fsq.quantizers.stats import CodebookUsage
from fsq.stages.base import LoadedRun, NonFiniteLossError, Phase, Stage
from fsq.stages.signal_data import is_signal_source, open_signal_split, signal_shape, signal_transform


def tokenizer_spec(cfg: TokenizerExperiment, in_channels: int) -> TokenizerSpec:
    """The spec: the ``model`` section by name, the ``quantizer`` section, ``in_channels`` from the data, the
    signal's shape from the data section (:func:`fsq.stages.signal_data.signal_shape`; None for images)."""
    return spec_from(
        TokenizerSpec,
        cfg.model,
        image_size=cfg.data.image_size,
        in_channels=in_channels,
        quantizer=QuantizerSpec(**to_dict(cfg.quantizer)),
        shape=signal_shape(cfg),
    )


def load_split(cfg: TokenizerExperiment, split: str, limit: int | None) -> ImageSet:
    """Images of one split as an ``ImageSet`` (uint8, in memory).

    Generated sources (photo crops) draw the training split from ``train.seed`` and any other split from
    ``train.seed + 1``, so training, evaluation and token export all see the same images of a split.
    """
    seed = cfg.train.seed + (0 if split == cfg.data.train_split else 1)
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


def open_split(cfg: TokenizerExperiment, split: str, limit: int | None) -> ImageItems:
    """The images of one split as a map-style collection: the built-in sources in memory (:func:`load_split`),
    folders, WebDataset shards and local Hugging Face datasets streamed (decoded when read)."""
    d = cfg.data
    if is_signal_source(d.source):
        return open_signal_split(cfg, split, limit)
    kind, path = source_kind(d.source)
    if kind == "builtin":
        return MemoryItems(load_split(cfg, split, limit))
    if kind == "folder" and split != "all" and Path(path).is_dir() and not (Path(path) / split).is_dir():
        key = "data.train_split" if split == d.train_split else "data.eval_split"
        subs = sorted(p.name for p in Path(path).iterdir() if p.is_dir())
        raise ConfigError(
            f"data.source={d.source} has no {split!r} sub-folder ({key}={split}; its sub-folders: {subs or 'none'}). "
            "Name the sub-folders with data.train_split=... data.eval_split=..., or for a flat folder set "
            "data.train_split=all data.eval_split=all (evaluation then sees the training images; add "
            "data.eval_limit=N to keep it short)"
        )
    cache = {"hf": "hf", "wds": "shards"}.get(kind)  # hf's caches, fetched remote shards
    hf_cache = str(cache_dir(d.cache_dir) / cache) if cache else None
    return open_items(
        d.source,
        split,
        channels=d.channels,
        on_error=d.on_error,
        limit=limit,
        draft_size=d.image_size,
        cache_dir=hf_cache,
    )


def item_transform(cfg: TokenizerExperiment, items: ImageItems, train: bool) -> ItemTransform:
    """Training: ``data.train_transform`` (``auto``: random crop + flip when streamed, the built-ins as loaded);
    evaluation and token export: a centre crop when streamed, the built-ins as loaded."""
    if isinstance(items, (SignalItems, SignalFolderItems, SignalShardItems)):
        return signal_transform(cfg, items, train)  # type: ignore[return-value]  # the same interface
    mode: TransformMode
    wanted = cfg.data.train_transform if train else "center"
    if wanted == "auto" or (not train and items.in_memory):
        mode = "none" if items.in_memory else ("random" if train else "center")
    else:
        mode = wanted
    return ItemTransform(mode, cfg.data.image_size)


def perceptual_loss_of(cfg: TokenizerExperiment) -> nn.Module:
    """The perceptual loss ``loss.perceptual_network`` names: EfficientNet-Lite0 features (the offline default,
    not LPIPS) or LPIPS (VGG16 from ``loss.vgg16_weights``, the lpips package's heads)."""
    if cfg.loss.perceptual_network == "lpips":
        return LPIPS(cfg.loss.vgg16_weights)
    return EfficientNetPerceptualLoss()


def load_run(run_dir: str | Path, use_ema: bool = True) -> tuple[Tokenizer, int]:
    """The newest checkpoint's tokenizer (its EMA weights when present) and its step.

    The checkpoint must have been written under the run dir's ``config.yaml`` (an edited config is refused).
    """
    cfg = read_run_config(run_dir)
    if not isinstance(cfg, TokenizerExperiment):
        raise ValueError(f"{run_dir} is a {cfg.stage} run, not a tokenizer run")
    build = lambda spec: Tokenizer(TokenizerSpec.from_dict(spec))  # noqa: E731
    expected = lambda saved: tokenizer_spec(cfg, saved.get("in_channels", 0)).to_dict()  # noqa: E731
    return ckpt.load_latest_model(
        run_dir, build, use_ema, expected_config_hash=resume_hash(cfg), expected_spec=expected
    )


def phases(cfg: TokenizerExperiment, run_dir: Path, info: DistInfo, kept: dict[str, Any]) -> Iterator[Phase]:
    """One phase: the tokenizer (and, with a GAN loss, its discriminator) on the training split."""
    device = info.device
    items = open_split(cfg, cfg.data.train_split, cfg.data.train_limit)
    loader = StepLoader(
        items,
        item_transform(cfg, items, train=True),
        global_batch=cfg.train.batch_size,
        seed=cfg.train.seed,
        stop=cfg.train.steps,
        rank=info.rank,
        world_size=info.world_size,
        workers=cfg.data.workers,
        on_error=cfg.data.on_error,
        pin_memory=device.type == "cuda",
    )
    per_pass = cfg.train.batch_size // (info.world_size * cfg.train.accumulate)
    if per_pass * info.world_size * cfg.train.accumulate != cfg.train.batch_size:
        raise ValueError(
            f"train.batch_size={cfg.train.batch_size} must be a multiple of ranks x train.accumulate "
            f"({info.world_size} x {cfg.train.accumulate})"
        )
    spec = tokenizer_spec(cfg, in_channels=items.channels)
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    model = Tokenizer(spec).to(device)
    ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    o, lw = cfg.optim, cfg.loss
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
    discriminator = disc_optimizer = perceptual = None
    if lw.adversarial_weight > 0:
        shaped: dict[str, Any] = {} if spec.dims == 2 else {"dims": spec.dims, "shape": spec.input_shape}
        discriminator = StyleGANDiscriminator(
            in_channels=spec.in_channels, image_size=spec.image_size, base_channels=lw.discriminator_channels, **shaped
        ).to(device)
        disc_lr = o.discriminator_lr or o.lr
        disc_optimizer = torch.optim.Adam(discriminator.parameters(), lr=disc_lr, betas=(o.beta1, o.beta2))
    if lw.perceptual_weight > 0:
        perceptual = perceptual_loss_of(cfg).to(device)
    usage = CodebookUsage(model.codebook_size, device=device)
    last: dict[str, torch.Tensor] = {}  # this step's batch and reconstruction, for the discriminator's update

    def step_fn(network: nn.Module, step: int, micro: int = 0, micros: int = 1) -> tuple[torch.Tensor, dict[str, Any]]:
        x = loader.batch(step)[0]
        if micros > 1:  # gradient accumulation: micro-batch ``micro`` of this rank's batch
            x = x.chunk(micros)[micro]
        x = to_unit(x.to(device, non_blocking=True))  # uint8: exactly .float().div_(255)
        try:
            reconstruction, out = network(x)
        except ValueError as error:  # the quantizer refuses NaN/Inf encoder output
            if "non-finite" not in str(error):
                raise
            raise NonFiniteLossError(
                f"non-finite encoder output at step {step} ({error}); lower optim.lr or check the data."
            ) from error
        reconstruction = reconstruction.float()
        rec_loss = F.mse_loss(reconstruction, x)
        loss = rec_loss + out.aux_loss
        values: dict[str, Any] = {"rec_loss": rec_loss.detach(), "aux_loss": out.aux_loss.detach()}
        if perceptual is not None:
            perceptual_loss = perceptual(reconstruction, x)
            loss = loss + lw.perceptual_weight * perceptual_loss
            values["perceptual_loss"] = perceptual_loss.detach()
        if discriminator is not None and step >= lw.adversarial_start:
            discriminator.requires_grad_(False)
            g_adv = generator_loss_nonsaturating(discriminator(reconstruction))
            discriminator.requires_grad_(True)
            loss = loss + lw.adversarial_weight * g_adv
            values["g_adv_loss"] = g_adv.detach()
        usage.update(out.indices.detach())
        mse = (reconstruction.detach().clamp(0, 1) - x).square().flatten(1).mean(1)
        values["psnr"] = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
        last.update(real=x, fake=reconstruction.detach())
        return loss, values

    def discriminator_step(step: int, lr: float) -> dict[str, float]:
        """The discriminator's update (non-saturating loss + R1 on the reals), on the generator's schedule."""
        if discriminator is None or disc_optimizer is None or step < lw.adversarial_start:
            return {}
        scale = lr / o.lr if o.lr > 0 else 0.0
        for group in disc_optimizer.param_groups:
            group["lr"] = (o.discriminator_lr or o.lr) * scale
        real = last["real"].detach().requires_grad_(True)
        real_logits = discriminator(real)
        d_loss = discriminator_loss_nonsaturating(real_logits, discriminator(last["fake"]))
        r1 = r1_penalty(real, real_logits)
        total = d_loss + lw.r1_weight * r1
        if not torch.isfinite(total.detach()):
            raise NonFiniteLossError(f"non-finite discriminator loss at step {step}.")
        disc_optimizer.zero_grad(set_to_none=True)
        total.backward()
        disc_optimizer.step()
        return {"d_loss": float(d_loss.detach()), "r1": float(r1.detach())}

    def usage_metrics() -> dict[str, float]:
        usage.all_reduce()
        summary = usage.summary()
        usage.reset()
        return {"usage": summary.usage_fraction, "perplexity": summary.perplexity}

    def training_images() -> dict[str, Any]:
        """The last step's first images over their reconstructions (training mode; no extra forward pass); a
        clip's first frame; none for 1-D signals (audio)."""
        real, fake = last["real"], last["fake"]
        if real.ndim == 5:  # video (B, C, T, H, W): the first frame
            real, fake = real[:, :, 0], fake[:, :, 0]
        if real.ndim != 4:
            return {}
        n = min(cfg.eval.grid_size, real.shape[0])
        return {"train/reconstructions": grid_array([real[:n], fake[:n]])}

    yield Phase(
        name="train",
        run_dir=run_dir,
        model=model,
        optimizer=optimizer,
        optim=o,
        steps=cfg.train.steps,
        loss=step_fn,
        spec=spec.to_dict(),
        ema=ema,
        modules={"discriminator": discriminator} if discriminator is not None else {},
        optimizers={"disc_optimizer": disc_optimizer} if disc_optimizer is not None else {},
        after_update=discriminator_step,
        window_metrics=usage_metrics,
        images=training_images,
        postfix=("loss", "psnr", "usage"),
        accumulates=True,
    )
    kept["model"] = ema.shadow if ema is not None else model
    if info.is_main:
        write_skipped(run_dir, cfg.data.train_split, items.skipped, loader.skipped)


SKIPPED = "skipped_files.json"


def write_skipped(run_dir: Path, split: str, listed: list[tuple[str, str]], decoded: dict[str, str]) -> None:
    """``RUN/skipped_files.json``: the files (and folders) of ``split`` training left out, each with its reason,
    found when the source was listed and when images were decoded (written only when there are any)."""
    if not listed and not decoded:
        return
    entries = [{"path": p, "reason": r, "found": "listing"} for p, r in listed]
    entries += [{"path": p, "reason": r, "found": "decoding"} for p, r in sorted(decoded.items())]
    write_json_atomic({"split": split, "count": len(entries), "skipped": entries}, run_dir / SKIPPED)


@torch.no_grad()
def level_histograms(cfg: TokenizerExperiment, run_dir: Path, kept: dict[str, Any]) -> dict[str, Any]:
    """The level (0 .. L_i - 1) each token of the first 1000 held-out images takes on each code channel
    (``levels/channel_i``), published beside the final evaluation; empty for a quantizer without per-channel
    levels (VQ)."""
    model = kept.get("model")
    if model is None:
        model, _ = load_run(run_dir)
    quantizer = model.quantizer
    level_digits = family_of(quantizer).level_digits
    if level_digits is None:
        return {}
    items = open_split(cfg, cfg.data.eval_split, 1000)  # streamed sources too (centre crops, as evaluation)
    device = next(model.parameters()).device
    batches = iterate_batches(items, item_transform(cfg, items, train=False), range(len(items)), 250, workers=0)
    parts = [model.tokenize(to_unit(images[valid].to(device))) for _, images, _, valid in batches]
    if not parts:
        return {}
    tokens = torch.cat(parts)
    digits = level_digits(quantizer, tokens).cpu()
    return {f"levels/channel_{c}": digits[:, c].numpy() for c in range(digits.shape[1])}


def loaded_run(run_dir: Path, use_ema: bool = True) -> LoadedRun:
    """The registry's view of :func:`load_run`: the run's config, step and ``tokenizer``."""
    model, step = load_run(run_dir, use_ema)
    return LoadedRun(Path(run_dir), read_run_config(run_dir), step, {"tokenizer": model})


def describe(cfg: TokenizerExperiment, metadata: dict[str, Any]) -> str:
    """The model card's first paragraph: what the tokenizer is, from its config."""
    what = cfg.quantizer.describe()
    if cfg.model.dims != 2:  # audio, video
        kind = {1: "audio (Conv1d, (B, C, T))", 3: "video (Conv3d, (B, C, T, H, W))"}[cfg.model.dims]
        causal = ", causal in time" if cfg.model.causal else ""
        return f"A Stage I tokenizer of {kind}{causal} ({what}), trained on the generated `{cfg.data.source}` data."
    return (
        f"A Stage I image tokenizer (a VQGAN-style conv autoencoder, {what}) for {cfg.data.image_size} px "
        f"images of `{cfg.data.source}`."
    )


USAGE = (
    "```python\nimport torch\nfrom fsq import Tokenizer\n\ntokenizer = Tokenizer.from_pretrained({ref})\n"
    "images = torch.rand(4, {channels}, {shape})  # your data: float (B, C, *axes) in [0, 1]\n"
    "tokens = tokenizer.tokenize(images)  # int64 token grids\n"
    "reconstructions = tokenizer.decode_indices(tokens)\n```"
)

STAGE = Stage(
    schema=TokenizerExperiment,
    phases=phases,
    final_step=lambda cfg: cfg.train.steps,
    load_run=loaded_run,
    evaluate="fsq.evaluation.tokenizer:evaluate_tokenizer",
    export="fsq.inference.export:TokenizerBundle.from_run",
    usage=USAGE,
    describe=describe,
    histograms=level_histograms,
)
