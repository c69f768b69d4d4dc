"""Stage I: the tokenizer (autoencoder + FSQ/VQ) with optional perceptual and GAN losses.

Builders from a :class:`~fsq.config.TokenizerExperiment` (the model spec, the images of a split), the explicit
step function (reconstruction + quantizer aux loss + perceptual + non-saturating GAN), the discriminator's step
(non-saturating + R1: the phase's critic), and the loading of a trained run. The batch of every step is a pure
function of (seed, step) (:class:`~fsq.data.loader.StepLoader`: the built-in sources indexed in memory, folders,
shards and Hugging Face datasets decoded in ``data.workers`` DataLoader workers), so a resumed run sees the
batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq import checkpoint as ckpt
from fsq.config import ConfigError, TokenizerExperiment, read_run_config, resume_hash, spec_from, to_dict
from fsq.data import ImageSet, cache_dir, load_images
from fsq.data.datasets import ImageItems, MemoryItems, open_items, source_kind
from fsq.data.frames import frame_images, is_frames_source
from fsq.data.loader import StepLoader, iterate_batches
from fsq.data.signal_files import SignalFolderItems, SignalShardItems
from fsq.data.signals import SignalItems, to_unit
from fsq.data.speech_items import SpeechItems
from fsq.data.transforms import ItemTransform, TransformMode
from fsq.data.videos import VideoClips
from fsq.data.windows import WindowedItems
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
from fsq.stages import audio_losses
from fsq.stages.base import Critic, LoadedRun, NonFiniteLossError, Phase, RunPhase, Stage, StepOutput
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
    if is_frames_source(d.source):  # the frames of a generated video source's clips, seeded as the video source
        return frame_images(
            d.source, split, seed=cfg.train.seed, count=limit, image_size=d.image_size, channels=d.channels
        )
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
    if kind == "builtin" or is_frames_source(d.source):
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
    if isinstance(items, (SignalItems, SignalFolderItems, SignalShardItems, SpeechItems, VideoClips, WindowedItems)):
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


@dataclass
class TrainedTokenizer:
    """What training hands to evaluation: the tokenizer it evaluates (the EMA weights when there are) and its step."""

    model: Tokenizer
    step: int


def phases(cfg: TokenizerExperiment, run_dir: Path, dist: DistInfo, run: RunPhase) -> TrainedTokenizer:
    """One phase: the tokenizer (and, with a GAN loss, its discriminator as the phase's critic) on the training
    split."""
    device = dist.device
    items = open_split(cfg, cfg.data.train_split, cfg.data.train_limit)
    loader = StepLoader(
        items,
        item_transform(cfg, items, train=True),
        global_batch=cfg.train.batch_size,
        seed=cfg.train.seed,
        stop=cfg.train.steps,
        rank=dist.rank,  # the loader gives each rank its share of the global batch
        world_size=dist.world_size,
        workers=cfg.data.workers,
        on_error=cfg.data.on_error,
        pin_memory=device.type == "cuda",
    )
    spec = tokenizer_spec(cfg, in_channels=items.channels)
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    model = Tokenizer(spec).to(device)
    ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    o, lw = cfg.optim, cfg.loss
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
    discriminator: nn.Module | None = None
    critic = perceptual = None
    audio = audio_losses.AudioLosses(cfg, getattr(items, "rate", None) or cfg.data.sample_rate).to(device)
    if lw.adversarial_weight > 0 and lw.discriminator == "audio":
        discriminator = audio_losses.audio_discriminator(cfg).to(device)
        disc_lr = o.discriminator_lr or o.lr
        critic = Critic(
            name="discriminator",
            model=discriminator,
            optimizer=torch.optim.Adam(discriminator.parameters(), lr=disc_lr, betas=(o.beta1, o.beta2)),
            optimizer_name="disc_optimizer",
            loss=audio_losses.discriminator_step,
            lr=disc_lr,
            start=lw.adversarial_start,
        )
    elif lw.adversarial_weight > 0:
        shaped: dict[str, Any] = {} if spec.dims == 2 else {"dims": spec.dims, "shape": spec.input_shape}
        discriminator = StyleGANDiscriminator(
            in_channels=spec.in_channels, image_size=spec.image_size, base_channels=lw.discriminator_channels, **shaped
        ).to(device)
        disc_lr = o.discriminator_lr or o.lr
        critic = Critic(
            name="discriminator",
            model=discriminator,
            optimizer=torch.optim.Adam(discriminator.parameters(), lr=disc_lr, betas=(o.beta1, o.beta2)),
            optimizer_name="disc_optimizer",
            loss=lambda network, passed, step: discriminator_loss(network, passed, lw.r1_weight, step, lw.r1_every),
            lr=disc_lr,
            start=lw.adversarial_start,
        )
    if lw.perceptual_weight > 0:
        perceptual = perceptual_loss_of(cfg).to(device)
    usage = CodebookUsage(model.codebook_size, device=device)

    def step_fn(network: nn.Module, images: torch.Tensor, step: int) -> StepOutput:
        """The tokenizer's loss on a micro-batch of items (uint8 images, float signals); passes the items and their
        (detached) reconstructions on to the discriminator's step once the GAN is on."""
        x = to_unit(images.to(device, non_blocking=True))  # uint8: exactly .float().div_(255)
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
        loss = (rec_loss if lw.l2_weight == 1 else lw.l2_weight * rec_loss) + out.aux_loss
        values: dict[str, Any] = {"rec_loss": rec_loss.detach(), "aux_loss": out.aux_loss.detach()}
        if audio.active:
            audio_loss, audio_values = audio(reconstruction, x)
            loss, values = loss + audio_loss, {**values, **audio_values}
        if perceptual is not None:
            perceptual_loss = perceptual(reconstruction, x)
            loss = loss + lw.perceptual_weight * perceptual_loss
            values["perceptual_loss"] = perceptual_loss.detach()
        if discriminator is not None and step >= lw.adversarial_start:
            discriminator.requires_grad_(False)  # a fixed judge here: the discriminator trains in its own step
            if lw.discriminator == "audio":
                adversarial, adversarial_values = audio_losses.generator_terms(discriminator, reconstruction, x, cfg)
                loss, values = loss + adversarial, {**values, **adversarial_values}
            else:
                g_adv = generator_loss_nonsaturating(discriminator(reconstruction))
                loss = loss + lw.adversarial_weight * g_adv
                values["g_adv_loss"] = g_adv.detach()
            discriminator.requires_grad_(True)
        passed = {"real": x, "fake": reconstruction.detach()}  # the discriminator's batch, and TensorBoard's images
        usage.update(out.indices.detach())
        mse = (reconstruction.detach().clamp(0, 1) - x).square().flatten(1).mean(1)
        values["psnr"] = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
        return StepOutput(loss, values, passed)

    def usage_metrics() -> dict[str, float]:
        usage.all_reduce()
        summary = usage.summary()
        usage.reset()
        return {"usage": summary.usage_fraction, "perplexity": summary.perplexity}

    def training_images(passed: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        """The last micro-batch's first images over their reconstructions (training mode; no extra forward); a
        clip's first frame; none for 1-D signals (audio)."""
        real, fake = passed[-1]["real"], passed[-1]["fake"]
        if real.ndim == 5:  # video (B, C, T, H, W): the first frame
            real, fake = real[:, :, 0], fake[:, :, 0]
        if real.ndim != 4:
            return {}
        n = min(cfg.eval.grid_size, real.shape[0])
        return {"train/reconstructions": grid_array([real[:n], fake[:n]])}

    phase = Phase(
        name="train",
        run_dir=run_dir,
        model=model,
        optimizer=optimizer,
        optim=o,
        steps=cfg.train.steps,
        batch=lambda step: loader.batch(step)[0],
        loss=step_fn,
        spec=spec.to_dict(),
        ema=ema,
        critic=critic,
        window_metrics=usage_metrics,
        images=training_images if cfg.model.dims == 2 else None,  # image grids (signals: none yet)
        postfix=("loss", "psnr", "usage"),
        accumulates=True,
    )
    run(phase)
    dist.on_main(lambda: write_skipped(run_dir, cfg.data.train_split, items.skipped, loader.skipped), None)
    return TrainedTokenizer(phase.trained, cfg.train.steps)  # type: ignore[arg-type]


def discriminator_loss(
    network: nn.Module, passed: dict[str, torch.Tensor], r1_weight: float, step: int = 0, r1_every: int = 1
) -> StepOutput:
    """The discriminator's step on one micro-batch: the non-saturating loss on the real images and the (detached)
    reconstructions the tokenizer's step passed on, plus ``r1_weight`` x the R1 penalty on the reals.

    ``r1_every`` > 1 is StyleGAN2's lazy regularization: the penalty (a double backward) only on steps divisible by
    ``r1_every``, weighted ``r1_every`` x. The logged ``r1`` is ``r1_every`` x the penalty on those steps and 0 on
    the others, so its mean over a logging window still estimates the penalty's mean."""
    if r1_every < 1:
        raise ValueError(f"r1_every must be a positive number of steps, got {r1_every}")
    lazy_step = step % r1_every == 0
    real = passed["real"].detach().requires_grad_(lazy_step)
    real_logits = network(real)
    d_loss = discriminator_loss_nonsaturating(real_logits, network(passed["fake"]))
    if not lazy_step:
        return StepOutput(d_loss, {"d_loss": d_loss.detach(), "r1": torch.zeros_like(d_loss.detach())})
    r1 = r1_every * r1_penalty(real, real_logits)
    return StepOutput(d_loss + r1_weight * r1, {"d_loss": d_loss.detach(), "r1": r1.detach()})


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
def level_histograms(cfg: TokenizerExperiment, run_dir: Path, trained: TrainedTokenizer | None) -> dict[str, Any]:
    """The level (0 .. L_i - 1) each token of the first 1000 held-out images (signals: ``data.eval_limit`` clips at
    most, ``eval.batch_size`` at a time) takes on each code channel
    (``levels/channel_i``), published beside the final evaluation; empty for a quantizer without per-channel
    levels (VQ). ``trained``: the model training left (None: the run's newest checkpoint)."""
    model = trained.model if trained is not None else load_run(run_dir)[0]
    quantizer = model.quantizer
    level_digits = family_of(quantizer).level_digits
    if level_digits is None:
        return {}
    count, batch = 1000, 250
    if is_signal_source(cfg.data.source):  # clips (generated in memory) go as evaluation takes them: 1000 clips
        count = min(count, cfg.data.eval_limit or count)  # of 17 x 256 x 256 px would take 3.3 GB and minutes,
        batch = cfg.eval.batch_size  # and 250 of them at once all of a GPU's memory
    items = open_split(cfg, cfg.data.eval_split, count)  # streamed sources too (centre crops, as evaluation)
    device = next(model.parameters()).device
    batches = iterate_batches(items, item_transform(cfg, items, train=False), range(len(items)), batch, workers=0)
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
    "x = torch.rand({batch_shape})  # your signals: float (B, C, *axes) in [0, 1]\n"
    "tokens = tokenizer.tokenize(x)  # int64 token grids\n"
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
    card_tags=("image-tokenizer",),
    histograms=level_histograms,
)
