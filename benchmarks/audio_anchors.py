"""The classical anchors on synthetic speech, and fsq's spectral distance against auraloss's.

1. **Anchors.** The first ``--clips`` clips of the synthetic speech test voices (espeak-ng, 16 kHz, the ``speech``
   source's plan: voices never heard in training), each through every Codec2 mode and Opus 6 kbps
   (:func:`fsq.anchors.audio.run_anchor`: time-aligned by the codec's measured delay). Per anchor, the means over
   clips of SI-SNR, DAC's multi-scale mel distance, the multi-resolution STFT distance, wideband PESQ and STOI,
   and the bits per second (codec frames / packets, and the whole file over the clip), with the delay removed.
2. **Spectral distance vs auraloss.** ``fsq.metrics.spectral.multi_resolution_stft_distance`` and
   ``auraloss.freq.MultiResolutionSTFTLoss`` (Parallel WaveGAN resolutions) on one batch of ``(8, 16000)``:
   the values (equal for a batch of one; auraloss's spectral convergence is one ratio over the whole batch, fsq's
   per clip) and the seconds of a forward + backward pass, median of ``--repeats``, interleaved.

Run: ``.venv/bin/python benchmarks/audio_anchors.py`` (about a minute on 2 cores); needs espeak-ng, fortunes-min,
codec2 and opus-tools (Debian) and the ``audio-eval`` extra. Writes ``benchmarks/results/audio_anchors.json``.
On a machine shared with other work the timings are upper bounds; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from fsq.anchors.audio import CODEC2_MODES, run_anchor
from fsq.data import speech
from fsq.metrics.si_snr import si_snr
from fsq.metrics.spectral import multi_resolution_stft_distance, multi_scale_mel_distance
from fsq.metrics.speech_quality import pesq_wb, stoi

RATE = 16000
ANCHORS = [f"codec2-{m}" for m in CODEC2_MODES] + ["opus-6k"]


def test_clips(count: int, seconds: float) -> list[np.ndarray]:
    """The first clip of each test voice (then the second ...), as float waveforms of at most ``seconds``."""
    sentences, _ = speech.read_sentences()
    planned = speech.plan(sentences)["test"]
    by_voice: dict[int, list[dict]] = {}
    for clip in planned:
        by_voice.setdefault(clip["voice"], []).append(clip)
    order = [
        c for k in range(max(map(len, by_voice.values()))) for v in by_voice.values() if k < len(v) for c in [v[k]]
    ]
    names = {v.id: v.name for v in speech.voices()}
    espeak = speech._espeak()
    out = []
    for clip in order[:count]:
        audio = speech.synthesize(espeak, names[clip["voice"]], clip["speed"], clip["pitch"], clip["text"])
        out.append(audio[: int(seconds * RATE)].astype(np.float64) / 32768.0)
    return out


def anchor_table(clips: list[np.ndarray]) -> dict[str, dict[str, float]]:
    table = {}
    for name in ANCHORS:
        rows = []
        for clip in clips:
            result = run_anchor(name, clip, RATE)
            ref, est = torch.from_numpy(clip)[None], torch.from_numpy(result.decoded)[None]
            rows.append(
                {
                    "si_snr_db": si_snr(ref, est).item(),
                    "mel_distance": multi_scale_mel_distance(ref.float(), est.float(), RATE).item(),
                    "stft_distance": multi_resolution_stft_distance(ref.float(), est.float()).total.item(),
                    "pesq_wb": pesq_wb(clip, result.decoded, RATE),
                    "stoi": stoi(clip, result.decoded, RATE),
                    "bits_per_second": result.payload_bits_per_second,
                    "file_bits_per_second": result.bits_per_second,
                    "delay_ms": 1000 * result.delay / RATE,
                }
            )
        table[name] = {key: statistics.fmean(r[key] for r in rows) for key in rows[0]}
        print(name, {k: round(v, 3) for k, v in table[name].items()}, flush=True)
    return table


def versus_auraloss(repeats: int) -> dict[str, float]:
    import auraloss

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(8, 16000, generator=g) * 0.3
    est = ref + 0.1 * torch.randn(8, 16000, generator=g)
    theirs = auraloss.freq.MultiResolutionSTFTLoss()
    one = (multi_resolution_stft_distance(ref[:1], est[:1]).total.item(), theirs(est[:1, None], ref[:1, None]).item())
    batch = (multi_resolution_stft_distance(ref, est).total.mean().item(), theirs(est[:, None], ref[:, None]).item())
    times: dict[str, list[float]] = {"fsq": [], "auraloss": []}
    for _ in range(repeats):
        for who in times:
            x = est.clone().requires_grad_()
            tick = time.perf_counter()
            if who == "fsq":
                loss = multi_resolution_stft_distance(ref, x).total.mean()
            else:
                loss = theirs(x[:, None], ref[:, None])
            loss.backward()
            times[who].append(time.perf_counter() - tick)
    return {
        "one_clip_fsq": one[0],
        "one_clip_auraloss": one[1],
        "batch_of_8_fsq_mean_per_clip": batch[0],
        "batch_of_8_auraloss": batch[1],
        "seconds_forward_backward_fsq": statistics.median(times["fsq"]),
        "seconds_forward_backward_auraloss": statistics.median(times["auraloss"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "audio_anchors.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    clips = test_clips(args.clips, args.seconds)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results = {
        "benchmark": {"kind": "audio_anchors", "date": date},  # rendered by fsq.studies.bench_tables
        "date": date,
        "clips": len(clips),
        "seconds_per_clip": [round(len(c) / RATE, 2) for c in clips],
        "source": "synthetic speech (espeak-ng), test voices, 16 kHz",
        "anchors": anchor_table(clips),
        "spectral_distance_vs_auraloss": versus_auraloss(args.repeats),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "threads": 1,
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["spectral_distance_vs_auraloss"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
