"""Real-time factor of the speech codec on one CPU thread: encode + decode, as ``fsq encode`` / ``fsq decode`` run.

The model is the shipped ``speech-fsq`` bundle (``--model``: any tokenizer ``fsq encode`` takes; a 1-D config name
such as ``fsq_speech`` builds that config's model with fresh weights, which runs at the same speed). The signal is
``--seconds`` of the synthetic speech test voices (their clips joined; a fixed random waveform when the source is not
prepared: the speed of a convolutional codec does not depend on what it hears). :func:`fsq.inference.codec.encode`
and :func:`~fsq.inference.codec.decode` run it ``--repeats`` times (interleaved, after one warm-up); the table gives
the medians and the real-time factor, seconds of audio per second of compute (encode, decode, both).

Run: ``.venv/bin/python benchmarks/speech_codec_speed.py`` (under a minute); writes
``benchmarks/results/speech_codec_speed.json`` with the load average before and after: on a machine shared with
other work the factor is a lower bound.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
from pathlib import Path

import numpy as np
import torch

RATE = 16000
TARGET = 20.0  # the aim: encode + decode at least 20x faster than real time on one thread


def speech_signal(seconds: float) -> tuple[torch.Tensor, str]:
    """``(1, T)`` float audio in ``[0, 1]``: the test voices' clips joined, or a fixed random waveform."""
    samples = int(seconds * RATE)
    try:
        from fsq.data.speech_items import SpeechItems

        items = SpeechItems("test")
        parts, total = [], 0
        for i in range(len(items)):
            parts.append(items.read(i))
            total += parts[-1].shape[1]
            if total >= samples:
                return torch.cat(parts, dim=1)[:, :samples], "synthetic speech, test voices"
    except (OSError, ValueError) as error:  # the source is not prepared
        print(f"speech source unavailable ({error}); timing a random waveform")
    g = np.random.default_rng(0)
    return torch.from_numpy((0.5 + 0.1 * g.standard_normal((1, samples))).clip(0, 1).astype(np.float32)), "random"


def open_codec(model: str):
    from fsq.inference.codec import CodecModel, model_fingerprint, open_model

    try:
        return open_model(model)
    except (ValueError, FileNotFoundError):
        from fsq.config import TokenizerExperiment, config_path, load_config
        from fsq.data.signals import AUDIO
        from fsq.models.autoencoder import Tokenizer
        from fsq.stages.tokenizer import tokenizer_spec

        cfg = load_config(TokenizerExperiment, [config_path(model, "tokenizer")])
        tokenizer = Tokenizer(tokenizer_spec(cfg, 1)).eval()
        return CodecModel(
            tokenizer, AUDIO, float(RATE), f"{model} (fresh weights)", model_fingerprint(tokenizer), torch.device("cpu")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="speech-fsq")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speech_codec_speed.json"))
    args = parser.parse_args()
    from fsq.inference.codec import decode, encode

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    codec = open_codec(args.model)
    signal, what = speech_signal(args.seconds)
    duration = signal.shape[1] / RATE
    decode(codec, encode(codec, signal, rate=RATE).codes)  # warm-up
    enc, dec = [], []
    for _ in range(args.repeats):
        encoded = encode(codec, signal, rate=RATE)
        decoded = decode(codec, encoded.codes)
        enc.append(encoded.seconds)
        dec.append(decoded.seconds)
    e, d = statistics.median(enc), statistics.median(dec)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results = {
        "benchmark": {"kind": "speech_codec_speed", "date": date},  # rendered by fsq.studies.bench_tables
        "model": codec.origin,
        "spec": codec.tokenizer.spec.quantizer.describe(),
        "parameters": sum(p.numel() for p in codec.tokenizer.parameters()),
        "signal": what,
        "audio_seconds": duration,
        "bits_per_second": encoded.codes.header.get("bitrate"),
        "chunk_samples": encoded.codes.header["chunk_shape"][0],
        "threads": args.threads,
        "repeats": args.repeats,
        "encode_seconds": enc,
        "decode_seconds": dec,
        "encode_median_s": e,
        "decode_median_s": d,
        "real_time_factor_encode": duration / e,
        "real_time_factor_decode": duration / d,
        "real_time_factor": duration / (e + d),
        "target_real_time_factor": TARGET,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    from fsq.studies.bench_tables import markdown_table

    print(markdown_table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
