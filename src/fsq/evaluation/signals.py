"""Evaluate a tokenizer of audio (1-D) or video (3-D) signals on its held-out split, with metrics of its kind.

- audio: SNR in dB of each clip (signal power around silence, ``0.5``, over the reconstruction error's power),
  and the mean absolute error (L1, in ``[0, 1]`` units); SI-SNR, multi-resolution STFT and multi-scale mel
  distances, wideband PESQ and STOI where they can run (:mod:`fsq.evaluation.audio_scores`: skipped with the
  reason otherwise), the bitrate (bits/s of the token grid, every index counted at ``log2`` of the codebook size),
  and, with ``eval.audio_anchors``, the same metrics for Codec2 / Opus run on the same clips; with ``eval.length``
  the clips are longer centred crops sent through the model in chunks of its length, as ``fsq encode`` does, and with
  ``eval.depths`` a residual tokenizer is also scored decoding only its first stages
  (:mod:`fsq.evaluation.audio_chunks`);
- video (:mod:`fsq.metrics.video`): PSNR and SSIM of each frame (``[0, 1]`` range), averaged over frames and clips,
  and per frame index (``psnr_per_frame``, ``ssim_per_frame``: the first frame of a causal tokenizer is encoded on
  its own and listed first); temporal consistency, the error of frame differences (``temporal_l1``: mean
  ``|(x[t+1] - x[t]) - (y[t+1] - y[t])|``; ``temporal_psnr``: its PSNR form, peak 1); L1; reconstruction FID over
  frames (``rfid``, the first ``eval.fid_samples`` held-out frames, clip by clip, against their originals, with
  the bundled Inception-v3 FID network; grey frames repeated to RGB as for images; 0 samples: not computed); FVD is
  not computed (``fvd: null`` and ``fvd_status`` say why: its I3D weights do not install offline); the tokenizer's
  bits per clip and, on the same clips at those bits, the naive codec of :mod:`fsq.models.baselines` (every frame
  area-downsampled to the token grid's h x w, quantized uniformly, upsampled bilinearly: ``naive``);
- both: codebook usage, perplexity and entropy, as for images.

Perceptual features (EfficientNet / LPIPS) are image-network metrics: not computed for audio or video, and
``image_metrics`` in the results says so (for audio also SSIM and FID). Every held-out clip is evaluated once
across ranks; sums and code counts are all-reduced, Inception features gathered. Writes ``eval/step_N.json`` and
``eval/step_N_grid.png`` (the first clips' frames, or their waveforms: originals over reconstructions).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from fsq import distributed, rundir
from fsq.config import TokenizerExperiment
from fsq.data.loader import iterate_batches
from fsq.data.signals import kind_of_dims, to_unit
from fsq.evaluation.audio_chunks import DepthScores, evaluation_config, snr_db, through_chunks
from fsq.evaluation.audio_scores import AnchorScores, AudioScores
from fsq.evaluation.video import VideoEvaluation
from fsq.generation.token_layout import layout_of
from fsq.grids import save_grid
from fsq.io import write_json_atomic
from fsq.metrics.bitrate import clip_bits_per_second
from fsq.metrics.video import frame_psnr
from fsq.models.autoencoder import Tokenizer
from fsq.quantizers.stats import CodebookUsage
from fsq.stages.signal_data import signal_kind
from fsq.stages.tokenizer import item_transform, open_split


def bitrate_fields(tokens_per_clip: int, codebook_size: int, samples: int, rate: float | None) -> dict[str, Any]:
    """The bitrate of a 1-D tokenizer: tokens per second and bits per second (fixed-length codes, ``log2`` of the
    codebook size per index); None without a sample rate."""
    if rate is None or tokens_per_clip < 1:
        return {"tokens_per_second": None, "bits_per_second": None}
    bits = clip_bits_per_second(tokens_per_clip, codebook_size, samples, rate)
    return {"tokens_per_second": tokens_per_clip * rate / samples, "bits_per_second": bits}


def waveform_image(clip: torch.Tensor, height: int = 64) -> torch.Tensor:
    """A plot of a mono clip (C, T) in ``[0, 1]`` as one image (1, 1, height, T): a dark dot per sample on white."""
    t = clip.shape[-1]
    rows = ((1 - clip[0].clamp(0, 1)) * (height - 1)).round().long()
    image = torch.ones(1, 1, height, t)
    image[0, 0, rows, torch.arange(t)] = 0.0
    return image


def codebook_report(model: Tokenizer, summary: Any) -> dict[str, Any]:
    """The code-usage fields of a tokenizer's evaluation (any signal kind): codebook size, codes used, usage,
    perplexity, entropy, tokens counted, parameters, and the quantizer's own report (kind, levels)."""
    return {
        "codebook_size": model.codebook_size,
        "codes_used": summary.codes_used,
        "usage": summary.usage_fraction,
        "perplexity": summary.perplexity,
        "entropy_bits": summary.entropy_bits,
        "tokens": summary.tokens,
        "parameters": model.parameter_counts(),
        **model.spec.quantizer.report(),  # "quantizer" (its kind) and "levels" (None without levels)
    }


@torch.no_grad()
def evaluate_signals(
    run_dir: Path, cfg: TokenizerExperiment, model: Tokenizer, step: int, device: torch.device, suffix: str = ""
) -> dict[str, Any]:
    """Evaluate and write ``eval/step_N<suffix>.json`` (rank 0); returns the results on every rank."""
    info = distributed.setup(cfg.train.device)
    kind = signal_kind(cfg)
    start = time.perf_counter()
    crops = evaluation_config(cfg)  # eval.length: longer held-out crops, through the model in chunks
    held_out = open_split(crops, cfg.data.eval_split, cfg.data.eval_limit)
    transform = item_transform(crops, held_out, train=False)
    mine = distributed.shard_indices(len(held_out), info.rank, info.world_size)
    usage = CodebookUsage(model.codebook_size, device=device)
    stages = int(getattr(model.spec.quantizer, "num_stages", 1))  # a residual quantizer: each codebook's usage too
    per_stage = [CodebookUsage(model.codebook_size, device=device) for _ in range(stages)] if stages > 1 else []
    frames = model.spec.input_shape[0]
    sums = torch.zeros(3 + frames, dtype=torch.float64, device=device)  # main metric, L1, count, per frame
    rate = getattr(held_out, "rate", None)
    audio = anchors = depths = None
    if kind.dims == 1:
        samples = crops.data.length or model.spec.input_shape[0]
        audio = AudioScores(rate, samples, cfg.eval.speech_quality, device)
        anchors = AnchorScores(cfg.eval.audio_anchors, rate, samples, cfg.eval.speech_quality, device)
        depths = DepthScores(
            model, cfg.eval.depths, rate, samples, cfg.eval.speech_quality, device, unquantized=cfg.eval.unquantized
        )
    elif cfg.eval.audio_anchors:
        raise ValueError(f"eval.audio_anchors is for audio; this tokenizer's signals are {kind.name}s")
    tokens_per_clip = 0
    grid: list[torch.Tensor] = []
    video = VideoEvaluation(model, cfg.eval.fid_samples, device) if kind.dims == 3 else None
    batches = iterate_batches(held_out, transform, mine, cfg.eval.batch_size, workers=cfg.data.workers)
    for chunk, clips, _, valid in batches:
        x = to_unit(clips[valid].to(device))
        if not len(x):
            continue
        reconstruction, out = through_chunks(model, x) if kind.dims == 1 else model(x)
        reconstruction = reconstruction.float().clamp(0, 1)
        usage.update(out.indices)
        for stage, counter in enumerate(per_stage):  # indices (..., num_stages)
            counter.update(out.indices[..., stage])
        tokens_per_clip = out.indices[0].numel()  # every position (and residual stage) of one clip (audio: chunk)
        if audio is not None and anchors is not None and depths is not None:
            sums[0] += snr_db(x, reconstruction).sum()
            audio.update(x, reconstruction)
            anchors.update(x)
            depths.update(x, out.indices)
        else:
            per_frame = frame_psnr(x, reconstruction)
            sums[0] += per_frame.mean(1).sum()
            sums[3:] += per_frame.sum(0)
        if video is not None:
            video.update(chunk[valid], x, reconstruction)
        if info.is_main and sum(len(g) for g in grid) < 2:
            shown = model.spec.input_shape[0] if kind.dims == 1 else x.shape[2]  # audio: one chunk's samples
            grid.append(torch.stack([x[:2, :, :shown], reconstruction[:2, :, :shown]], 1).cpu())  # (b, 2, C, *axes)
        sums[1] += (x - reconstruction).abs().flatten(1).mean(1).double().sum()
        sums[2] += x.shape[0]
    distributed.all_reduce_sum(sums)
    usage.all_reduce()
    for counter in per_stage:
        counter.all_reduce()
    if audio is not None and anchors is not None and depths is not None:
        audio.all_reduce()
        anchors.all_reduce()
        depths.all_reduce()
    summary = usage.summary()
    count = max(sums[2].item(), 1.0)
    results: dict[str, Any] = {
        "step": step,
        "split": cfg.data.eval_split,
        "source": cfg.data.source,
        "signal": kind.name,
        "rate": rate,
        "num_samples": int(sums[2].item()),
        "l1": sums[1].item() / count,
        **codebook_report(model, summary),
        **({"codes_used_per_stage": [c.summary().codes_used for c in per_stage]} if per_stage else {}),
        "token_grid": list(model.spec.grid_shape),
        "image_metrics": f"not computed: FID, SSIM and perceptual features are image metrics, not {kind.name} ones",
    }
    if video is not None:  # per-frame SSIM and rFID, temporal consistency, bits, the naive codec, FVD's status
        results.update(video.results())
        results["image_metrics"] = "not computed: perceptual features (EfficientNet, LPIPS) judge images, not video"
    if audio is not None and anchors is not None and depths is not None:
        results["snr_db"] = sums[0].item() / count
        results.update(audio.summary())
        results.update(bitrate_fields(tokens_per_clip, model.codebook_size, model.spec.input_shape[0], rate))
        if cfg.eval.length is not None:  # the crops scored and the chunks the model took them in
            results["eval_length"] = crops.data.length
            results["chunk_length"] = model.spec.input_shape[0]
        if cfg.eval.depths:
            results["depths"] = depths.summary(results["bits_per_second"])
        if cfg.eval.unquantized:
            results["unquantized"] = depths.unquantized_summary()
        if cfg.eval.audio_anchors:
            results["anchors"] = anchors.summary()
    else:
        results["psnr"] = sums[0].item() / count  # per-frame PSNR, averaged over frames and clips
        results["psnr_per_frame"] = [v / count for v in sums[3:].tolist()]
    results["seconds"] = time.perf_counter() - start
    if info.is_main:
        (run_dir / rundir.EVAL).mkdir(parents=True, exist_ok=True)
        write_json_atomic(results, rundir.eval_path(run_dir, step, f"{suffix}.json"))
        if grid:  # rows: each clip's frames (video) or waveform (audio), original over reconstruction
            pairs = torch.cat(grid)[:2]
            draw = (lambda c: c.transpose(0, 1)) if kind.dims == 3 else waveform_image
            rows = [draw(pairs[i, j]) for i in range(pairs.shape[0]) for j in range(2)]
            save_grid(rows, rundir.eval_path(run_dir, step, f"{suffix}_grid.png"), fit=("height", 256))
    distributed.barrier()
    return results


@torch.no_grad()
def signal_samples(model, tokenizer: Tokenizer, cfg, device: torch.device) -> dict[str, Any]:
    """A MaskGIT over audio or video token grids: for each guidance weight of ``cfg.eval``, ``num_samples`` samples
    drawn, decoded, and their code usage (the image metrics, class judge, FID and compression, are not computed)."""
    from fsq.inference.sampling import class_labels, decode, generate_for_eval

    e = cfg.eval
    labels = class_labels(e.num_samples, model.spec.num_classes)
    rows = []
    for alpha in e.guidance:
        tick = time.perf_counter()
        tokens = generate_for_eval(model, labels, e, alpha, device)
        decoded = decode(tokenizer, tokens, e.batch_size, device, layout_of(model.spec))
        usage = CodebookUsage(model.spec.codebook_size)
        usage.update(tokens)
        summary = usage.summary()
        rows.append(
            {
                "guidance": alpha,
                "num_samples": e.num_samples,
                "seconds": time.perf_counter() - tick,
                "sample_shape": list(decoded.shape[1:]),
                "codes_used": summary.codes_used,
                "usage": summary.usage_fraction,
                "perplexity": summary.perplexity,
            }
        )
    kind = kind_of_dims(tokenizer.spec.dims).name
    return {
        "signal": kind,
        "guidance": rows,
        "image_metrics": f"not computed: class accuracy, FID and compression use image data, not {kind}",
    }
