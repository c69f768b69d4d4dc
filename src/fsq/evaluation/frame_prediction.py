"""Evaluate a frame-prediction MaskGIT (``masking.condition_frames``): predicted frames against the real ones.

For each guidance weight of ``eval.guidance``: the first ``eval.num_samples`` clips of ``data.eval_split`` of the
tokenizer's data are tokenized, their first ``condition_frames`` latent frames given, the rest sampled
(``eval.steps`` steps) and decoded; the predicted pixel frames are scored by PSNR against the real ones, beside
the trivial baseline (the last given frame repeated) and the ceiling (the real clips' own tokens decoded):
:func:`fsq.inference.frame_prediction.prediction_metrics`. The sampled tokens' code usage as for any sample.
Writes ``eval/step_N{suffix}_prediction.png`` / ``.gif`` (/ ``.mp4`` with PyAV): the first clips, each real clip
beside (in the strip: above) its prediction. Runs where the caller runs it (rank 0 of
:func:`fsq.evaluation.maskgit.evaluate_maskgit`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from fsq.clips import save_clips
from fsq.config import MaskGITExperiment, TokenizerExperiment
from fsq.inference.frame_prediction import held_out_clips, predict_frames
from fsq.models.autoencoder import Tokenizer
from fsq.models.maskgit import MaskGIT
from fsq.quantizers.stats import CodebookUsage

SHOWN_CLIPS = 4  # clips in the eval strip and GIF (real and predicted)


@torch.no_grad()
def prediction_samples(
    model: MaskGIT,
    tokenizer: Tokenizer,
    cfg: MaskGITExperiment,
    tok_cfg: TokenizerExperiment,
    device: torch.device,
    stem: Path | None = None,
) -> dict[str, Any]:
    """The ``guidance`` rows (prediction PSNR, baselines, code usage) of the module docstring; with ``stem``, the
    strip and GIF of the first clips of the first guidance weight."""
    e = cfg.eval
    clips, labels = held_out_clips(tok_cfg, cfg.data.eval_split, e.num_samples)
    rows = []
    for alpha in e.guidance:
        tick = time.perf_counter()
        result = predict_frames(
            model,
            tokenizer,
            clips,
            labels,
            cfg.masking.condition_frames,
            steps=e.steps,
            choice_temperature=e.choice_temperature,
            temperature=e.temperature,
            guidance=alpha if model.spec.num_classes else 0.0,
            seed=e.seed,
            batch_size=e.batch_size,
            device=device,
        )
        usage = CodebookUsage(model.spec.codebook_size)
        usage.update(result.tokens)
        summary = usage.summary()
        rows.append(
            {
                "guidance": alpha,
                "num_samples": len(clips),
                "seconds": time.perf_counter() - tick,
                "sample_shape": list(result.predicted.shape[1:]),
                **result.metrics,
                "codes_used": summary.codes_used,
                "usage": summary.usage_fraction,
                "perplexity": summary.perplexity,
            }
        )
        if stem is not None and len(rows) == 1:
            shown = torch.stack([result.real[:SHOWN_CLIPS], result.predicted[:SHOWN_CLIPS]], 1).flatten(0, 1)
            stem.parent.mkdir(parents=True, exist_ok=True)
            save_clips(shown, stem, fps=tok_cfg.data.sample_rate or 10.0, columns=2)
    first = rows[0]
    return {
        "signal": "video",
        "task": "frame_prediction",
        "condition_frames": cfg.masking.condition_frames,
        "psnr": first["psnr"],  # predicted frames, the first guidance weight
        "repeat_psnr": first["repeat_psnr"],
        "tokenizer_psnr": first["tokenizer_psnr"],
        "guidance": rows,
        "image_metrics": "not computed: class accuracy, FID and compression use image data, not video",
    }
