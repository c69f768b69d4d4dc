"""Frame prediction with a MaskGIT trained with ``masking.condition_frames`` (MAGVIT's task), and how well it does.

``held_out_clips`` reads clips of a split of the tokenizer's data (the centred crops evaluation uses);
``predict_frames`` tokenizes them, keeps their first ``condition_frames`` latent frames, samples the rest and
decodes; ``prediction_metrics`` scores the predicted pixel frames (those the given latent frames do not encode) by
PSNR against the real frames, beside two references on the same frames:

- ``repeat_psnr``: the trivial baseline, the last given real frame repeated (frame 0 for one latent frame of a
  causal tokenizer) -- a predictor that has learnt no motion;
- ``tokenizer_psnr``: the real clip's own tokens decoded, the ceiling any sampler of these tokens can reach.

``token_accuracy`` is the share of predicted tokens (after the given latent frames) equal to the real clip's: a
score of Stage II alone (a weak decoder that maps many codes to one blur makes PSNR blind to wrong tokens).

PSNR is per frame in the ``[0, 1]`` range, capped at 100 dB, averaged over frames and clips (``*_per_frame``: the
mean at each predicted frame position).

``write_predictions`` is ``fsq sample`` for such a run: ``prediction.json`` (the metrics), ``prediction.png`` (a
strip per clip, the real clip above its prediction), ``prediction.gif`` / ``.mp4`` (real and predicted side by
side), all three of the first ``SHOWN_CLIPS`` clips, and ``samples.npz`` (every predicted and real clip, the
sampled tokens, labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import hub, storage
from fsq.clips import save_clips
from fsq.config import MaskGITExperiment, TokenizerExperiment, read_run_config
from fsq.data.loader import iterate_batches
from fsq.data.signals import to_unit
from fsq.generation.conditioning import given_pixel_frames
from fsq.inference.sampling import MaskGITPipeline, decode, generate, is_run_dir
from fsq.io import write_json_atomic
from fsq.models.autoencoder import Tokenizer
from fsq.models.maskgit import MaskGIT
from fsq.stages.maskgit import run_tokenizer
from fsq.stages.tokenizer import item_transform, open_split

SHOWN_CLIPS = 16  # clips in the strip, GIF and MP4 of `fsq sample` (a strip of 100 clips is 200 rows)


def held_out_clips(tok_cfg: TokenizerExperiment, split: str, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(clips float (N, C, T, H, W) in [0, 1], labels (N,) or None): the readable ones of the first ``count`` clips
    of ``split`` of the tokenizer's data, centre-cropped as evaluation crops them."""
    items = open_split(tok_cfg, split, count)  # the first ``count`` (generated sources make no more)
    transform = item_transform(tok_cfg, items, train=False)
    clips, labels = [], []
    for _, batch, batch_labels, valid in iterate_batches(items, transform, range(len(items)), 64):
        clips.append(batch[valid])
        labels.append(batch_labels[valid])
        if sum(len(c) for c in clips) >= count:
            break
    if not clips or not sum(len(c) for c in clips):
        raise ValueError(f"the {split!r} split of {tok_cfg.data.source!r} has no readable clip to condition on")
    out = torch.cat(clips)[:count]
    if out.ndim != 5:
        raise ValueError(
            f"frame prediction conditions on video clips (N, C, T, H, W); {tok_cfg.data.source!r} gives "
            f"{tuple(out.shape)}"
        )
    return to_unit(out), (torch.cat(labels)[:count] if items.has_labels else None)


def frame_psnr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each frame of clips (B, C, T, H, W) in ``[0, 1]``: (B, T), capped at 100 dB."""
    mse = (reference.double() - estimate.double()).square().mean(dim=(1, 3, 4))
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=100.0)


def prediction_metrics(
    real: torch.Tensor, predicted: torch.Tensor, reconstructed: torch.Tensor, given_frames: int
) -> dict[str, Any]:
    """PSNR of the frames after the ``given_frames`` first ones: predicted, the last given frame repeated, and the
    real clip's tokens decoded (see the module docstring); clips (B, C, T, H, W) in ``[0, 1]``."""
    if real.shape != predicted.shape or real.shape != reconstructed.shape or real.ndim != 5:
        raise ValueError(
            f"prediction_metrics needs three (B, C, T, H, W) clips of one shape, got {tuple(real.shape)}, "
            f"{tuple(predicted.shape)} and {tuple(reconstructed.shape)}"
        )
    frames = real.shape[2]
    if not 1 <= given_frames < frames:
        raise ValueError(f"given_frames must be in [1, {frames - 1}] for clips of {frames} frames, got {given_frames}")
    future = real[:, :, given_frames:]
    repeat = real[:, :, given_frames - 1 : given_frames].expand_as(future)
    rows = {
        "": frame_psnr(future, predicted[:, :, given_frames:]),
        "repeat_": frame_psnr(future, repeat),
        "tokenizer_": frame_psnr(future, reconstructed[:, :, given_frames:]),
    }
    out: dict[str, Any] = {"clips": real.shape[0], "frames": frames, "given_frames": given_frames}
    for name, values in rows.items():
        out[f"{name}psnr"] = values.mean().item()
        out[f"{name}psnr_per_frame"] = values.mean(0).tolist()
    return out


@dataclass
class FramePrediction:
    """What :func:`predict_frames` gives: the real clips, their predictions, their own tokens decoded, the sampled
    tokens and the metrics (:func:`prediction_metrics`)."""

    real: torch.Tensor
    predicted: torch.Tensor
    reconstructed: torch.Tensor
    tokens: torch.Tensor
    metrics: dict[str, Any]


@torch.no_grad()
def predict_frames(
    model: MaskGIT,
    tokenizer: Tokenizer,
    clips: torch.Tensor,
    labels: torch.Tensor | None,
    condition_frames: int,
    *,
    steps: int = 12,
    choice_temperature: float = 4.5,
    temperature: float = 1.0,
    guidance: float = 0.0,
    seed: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> FramePrediction:
    """Predict the frames of ``clips`` (N, C, T, H, W) in [0, 1] after their first ``condition_frames`` latent
    frames (``labels`` when the model is class-conditional, else ignored), and score them."""
    device = torch.device(device)
    tokenizer = tokenizer.to(device).eval()
    real_tokens = torch.cat([tokenizer.tokenize(c.to(device)).cpu() for c in clips.split(batch_size)])
    if tuple(real_tokens.shape[1:]) != model.spec.grid_shape:
        raise ValueError(
            f"the tokenizer makes grids of shape {tuple(real_tokens.shape[1:])} but the MaskGIT takes "
            f"{model.spec.grid_shape}"
        )
    labels = labels if model.spec.num_classes else None
    tokens = generate(
        model,
        labels,
        num=len(clips),
        steps=steps,
        choice_temperature=choice_temperature,
        temperature=temperature,
        guidance=guidance,
        seed=seed,
        batch_size=batch_size,
        device=device,
        condition=real_tokens,
        condition_frames=condition_frames,
    )
    predicted = decode(tokenizer, tokens, batch_size, device)
    reconstructed = decode(tokenizer, real_tokens, batch_size, device)
    spec = tokenizer.spec
    given = given_pixel_frames(spec.input_shape[0], spec.grid_shape[0], condition_frames, spec.causal)
    metrics = prediction_metrics(clips.float(), predicted, reconstructed, given)
    metrics["condition_frames"] = condition_frames
    # Stage II's own score, blind to the decoder: the share of predicted tokens equal to the real clip's
    metrics["token_accuracy"] = (
        (tokens[:, condition_frames:] == real_tokens[:, condition_frames:]).double().mean().item()
    )
    return FramePrediction(clips, predicted, reconstructed, tokens, metrics)


def condition_frames_of(source: str | Path) -> int:
    """``masking.condition_frames`` of a MaskGIT run dir, or the ``sampling.condition_frames`` of a bundle (0 for
    a model that does not predict frames)."""
    if is_run_dir(source):
        cfg = read_run_config(source)
        return cfg.masking.condition_frames if isinstance(cfg, MaskGITExperiment) else 0
    config = hub.read_bundle_config(hub.resolve(source), "fsq-maskgit")
    return int(config.get("sampling", {}).get("condition_frames", 0))


@torch.no_grad()
def write_predictions(
    source: str | Path,
    out_dir: str | Path,
    *,
    num: int = 16,
    split: str | None = None,
    steps: int | None = None,
    guidance: float = 0.0,
    choice_temperature: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Path:
    """Predict the first ``num`` held-out clips (``split``, default the run's ``data.eval_split``) of a MaskGIT run
    trained with ``masking.condition_frames`` and write the files of the module docstring; returns ``samples.npz``.
    Unset ``steps`` / ``choice_temperature`` take the run's ``eval`` settings."""
    if not is_run_dir(source):
        raise ValueError(
            f"{source}: frame prediction conditions on held-out clips of the tokenizer's data, which only a MaskGIT "
            "run dir records (its tokenizer's config.yaml); sample from the run dir, or predict your own clips with "
            "fsq.inference.frame_prediction.predict_frames"
        )
    cfg = read_run_config(source)
    if not isinstance(cfg, MaskGITExperiment) or cfg.masking.condition_frames < 1:
        raise ValueError(f"{source} is not a frame-prediction MaskGIT run (masking.condition_frames is not set)")
    pipeline = MaskGITPipeline.from_run(source)
    tok_cfg = run_tokenizer(source, cfg)[2]
    split = split or cfg.data.eval_split
    clips, labels = held_out_clips(tok_cfg, split, num)
    d = pipeline.sampling
    result = predict_frames(
        pipeline.model,
        pipeline.tokenizer,
        clips,
        labels,
        d.condition_frames,
        steps=steps or d.steps,
        choice_temperature=d.choice_temperature if choice_temperature is None else choice_temperature,
        temperature=d.temperature,
        guidance=guidance,
        seed=seed,
        batch_size=d.batch_size,
        device=device,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"run": str(Path(source).resolve()), "split": split, "seed": seed, **result.metrics}
    write_json_atomic(report, out_dir / "prediction.json")
    shown = slice(0, SHOWN_CLIPS)  # real above (GIF: beside) its prediction, the first clips (the .npz has all)
    pairs = torch.stack([result.real[shown], result.predicted[shown]], 1).flatten(0, 1)
    save_clips(pairs, out_dir / "prediction", fps=float(pipeline.metadata.get("rate") or 10.0), columns=2)
    arrays: dict[str, Any] = {
        "tokens": result.tokens.numpy(),
        "signals": result.predicted.float().numpy(),
        "real": result.real.float().numpy(),
    }
    if labels is not None:
        arrays["labels"] = labels.numpy()
    path, tmp = out_dir / "samples.npz", out_dir / ".samples.tmp.npz"
    with storage.writing(path, tmp, what="samples"):
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    return path
