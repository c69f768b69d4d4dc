"""Evaluate a voice-conditioned MaskGIT over speech tokens: sampled clips judged by the voice judge.

A MaskGIT whose tokens come from a 1-D tokenizer of the ``speech`` source (synthetic speech) conditions on voice ids
(the token manifest's labels). Its evaluation writes, in this order:

- ``voice_judge``: the judge's credibility first. Its accuracy on real clips of the ``heldout`` split (the training
  voices speaking sentences never used in training; centre crops as long as a sample), chance (one over the number
  of voices it tells apart), and its accuracy on the same clips after the tokenizer (encoded and decoded:
  ``reconstructed_accuracy``, what the codec leaves of the voice, the ceiling a sampler of these tokens can
  expect); the judge's settings and cache path (:mod:`fsq.evaluation.voice_judge`). With ``eval.judge_data:
  reconstructions`` the judge trains on the tokenizer's reconstructions of the training clips instead of the clips
  (``trained_on``; cached per tokenizer fingerprint): a judge of codec output, which hears the voice the codec keeps
  where a judge of real speech hears mostly the codec's artefacts;
- per guidance weight in ``eval.guidance``: ``eval.num_samples`` clips conditioned on the training voices in turn
  (the voices the judge knows), decoded, and ``voice_accuracy`` (the share the judge assigns to the voice they were
  conditioned on) beside ``chance``, ``per_voice_accuracy`` (by voice id), and the sampled tokens' code usage;
  the first ``eval.grid_per_class`` clips of each voice as 16-bit ``.wav`` files in ``eval/step_N{suffix}_voices_g
  {alpha}/voice_{id}_{k}.wav``.
The judge trains once per data cache and setting (``eval.classifier_steps`` steps) and is cached.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from fsq.data.signal_files import write_wav
from fsq.data.signals import kind_of_dims
from fsq.data.speech import labels_are_voices
from fsq.evaluation.audio_chunks import through_chunks
from fsq.evaluation.voice_judge import crop_or_pad, load_or_train_voice_judge, predict_voices
from fsq.generation.token_layout import layout_of
from fsq.quantizers.stats import CodebookUsage


def is_voice_conditioned(tok_cfg: Any, tokenizer: Any, num_classes: int) -> bool:
    """Whether a MaskGIT conditions on voices: class labels over a 1-D tokenizer of the ``speech`` source
    (:func:`~fsq.data.speech.labels_are_voices`, as training checks it from the token manifest)."""
    return labels_are_voices(tok_cfg.data.source, kind_of_dims(tokenizer.spec.dims).name, num_classes)


def voice_labels(num: int, voices: list[int], num_classes: int) -> torch.Tensor:
    """``num`` labels cycling over ``voices`` (voice ids); a ValueError when a voice lies beyond the model's
    ``num_classes``."""
    if not voices or max(voices) >= num_classes:
        raise ValueError(f"the voice judge's voices {voices} are not all among the MaskGIT's {num_classes} classes")
    return torch.tensor(voices)[torch.arange(num) % len(voices)]


@torch.no_grad()
def heldout_clips(tok_cfg: Any, rate: float, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre crops of ``length`` samples of every ``heldout`` clip (silence-padded when shorter) and their voices."""
    from fsq.data.speech_items import SpeechItems

    items = SpeechItems("heldout", cache_dir=tok_cfg.data.cache_dir, rate=rate, resample=True)
    return torch.stack([crop_or_pad(items.read(k), length) for k in range(len(items))]), items.labels


@torch.no_grad()
def voice_samples(model, tokenizer, cfg, tok_cfg, device: torch.device, stem: Path) -> dict[str, Any]:
    """Sample, decode and judge clips for each guidance weight (see the module docstring); ``stem``: the eval
    file's path without suffix (``eval/step_N{suffix}``), beside which the wav folders go."""
    from fsq.inference.sampling import decode, generate_for_eval

    e = cfg.eval
    rate = float(tok_cfg.data.sample_rate or 16000)
    length = int(tokenizer.spec.input_shape[0])
    tokenizer = tokenizer.to(device).eval()
    through, through_key = None, None
    if e.judge_data == "reconstructions":
        from fsq.inference.codec import model_fingerprint

        through, through_key = (lambda clip: reconstruct(tokenizer, clip, device)), model_fingerprint(tokenizer)
    with torch.enable_grad():  # trains the judge on a first use (then cached)
        judge, info = load_or_train_voice_judge(
            length,
            cache_dir=tok_cfg.data.cache_dir,
            rate=rate,
            steps=e.classifier_steps,
            device=device,
            through=through,
            through_key=through_key,
        )
    real, real_labels = heldout_clips(tok_cfg, rate, length)
    recon = torch.cat([tokenizer(b.to(device))[0].float().clamp(0, 1).cpu() for b in real.split(e.batch_size)])
    judged = {k: v for k, v in info.items() if k != "cached"}
    judged["reconstructed_accuracy"] = (predict_voices(judge, recon) == real_labels).double().mean().item()
    labels = voice_labels(e.num_samples, info["voices"], model.spec.num_classes)
    rows = []
    for alpha in e.guidance:
        tick = time.perf_counter()
        tokens = generate_for_eval(model, labels, e, alpha, device)
        clips = decode(tokenizer, tokens, e.batch_size, device, layout_of(model.spec))
        heard = predict_voices(judge, clips)
        usage = CodebookUsage(model.spec.codebook_size)
        usage.update(tokens)
        summary = usage.summary()
        voices = sorted(set(labels.tolist()))
        rows.append(
            {
                "guidance": alpha,
                "num_samples": e.num_samples,
                "seconds": time.perf_counter() - tick,
                "sample_shape": list(clips.shape[1:]),
                "voice_accuracy": (heard == labels).double().mean().item(),
                "chance": info["chance"],
                "per_voice_accuracy": {str(v): (heard[labels == v] == v).double().mean().item() for v in voices},
                "codes_used": summary.codes_used,
                "usage": summary.usage_fraction,
                "perplexity": summary.perplexity,
                "wav_dir": write_voice_wavs(clips, labels, rate, e.grid_per_class, Path(f"{stem}_voices_g{alpha:g}")),
            }
        )
    return {
        "signal": "audio",
        "voice_judge": judged,
        "guidance": rows,
        "image_metrics": "not computed: FID and compression use image data; voices are judged by the voice judge",
    }


@torch.no_grad()
def reconstruct(tokenizer, clip: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The tokenizer's reconstruction ``(1, T)`` (float32, CPU, in ``[0, 1]``) of a mono clip ``(1, T)`` of any length,
    chunk by chunk at the model's length as ``fsq encode`` sends a file."""
    out, _ = through_chunks(tokenizer, clip[None].to(device))
    return out[0].float().clamp(0, 1).cpu()


def write_voice_wavs(clips: torch.Tensor, labels: torch.Tensor, rate: float, per_voice: int, folder: Path) -> str:
    """The first ``per_voice`` clips ``(N, 1, T)`` in ``[0, 1]`` of each voice as ``folder/voice_{id}_{k}.wav``
    (16-bit PCM at ``rate``); returns the folder's name."""
    folder.mkdir(parents=True, exist_ok=True)
    for voice in sorted(set(labels.tolist())):
        for k, clip in enumerate(clips[labels == voice][:per_voice]):
            write_wav(folder / f"voice_{voice:02d}_{k}.wav", clip, round(rate))
    return folder.name
