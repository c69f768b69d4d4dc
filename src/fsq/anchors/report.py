"""A tokenizer's evaluation beside its classical anchors as one Markdown table, for model cards and the README:
an image tokenizer's (``eval.image_anchors``) or an audio codec's (``eval.audio_anchors``). Torch-free."""

from __future__ import annotations

from fsq import markdown

ANCHOR_LABELS = {
    "naive": "naive codec (area-downsampled to the token grid, bicubic up)",
    "jpeg": "JPEG, whole file",
    "jpeg-payload": "JPEG, payload",
    "webp": "WebP, whole file",
    "webp-payload": "WebP, payload",
}


def spent_bits(name: str, entry: dict) -> float:
    """The bits per image an anchor really spent on the measure it was matched on: the payload for
    ``*-payload`` anchors, the whole file (or the naive codec's code) otherwise."""
    return entry["payload_bits_per_image"] if name.endswith("-payload") else entry["bits_per_image"]


def anchors_table(evaluation: dict, model: str) -> str:
    """An image tokenizer's evaluation with ``eval.image_anchors``: the tokenizer and each classical codec on the
    same held-out images, with the bits each really spent per image (the codecs aim at the tokenizer's fixed-length
    code; see :mod:`fsq.evaluation.image_anchors`) its PSNR and SSIM, and
    the share of images a codec could not bring down to the target even at its lowest quality."""
    e, anchors = evaluation, evaluation["anchors"]
    rows = [
        [
            f"`{model}`",
            f"{anchors['tokenizer']['code_bits_per_image']:,.0f} (fixed-length code)",
            f"{e['psnr']:.2f}",
            f"{e['ssim']:.3f}",
            "-",
        ]
    ]
    for name, label in ANCHOR_LABELS.items():
        if name in anchors:
            a = anchors[name]
            spent = spent_bits(name, a)
            over = a.get("over_target_at_lowest_quality")
            rows.append(
                [label, f"{spent:,.0f}", f"{a['psnr']:.2f}", f"{a['ssim']:.3f}", "-" if over is None else f"{over:.0%}"]
            )
    head = [
        f"at {anchors['target_bits_per_image']:,} bits per image",
        "bits spent per image",
        "PSNR dB",
        "SSIM",
        "images over the target at the lowest quality",
    ]
    lines = markdown.table(head, rows)
    if "naive" in anchors:
        gap = e["psnr"] - anchors["naive"]["psnr"]
        lines += [
            "",
            f"PSNR over the naive codec at equal bits: {gap:+.2f} dB on the same {e['num_samples']:,} held-out "
            "images (one trained model, one seed: the run-to-run spread is not measured).",
        ]
    return "\n".join(lines)


# an audio row's metrics: (key, column, digits)
AUDIO_COLUMNS = (
    ("si_snr_db", "SI-SNR (dB)", 2),
    ("mel_distance", "mel dist.", 2),
    ("stft_distance", "STFT dist.", 3),
    ("pesq_wb", "PESQ-wb", 2),
    ("stoi", "STOI", 3),
)


def audio_anchors_table(evaluation: dict, model: str) -> str:
    """An audio codec's evaluation with ``eval.audio_anchors``: its full codes, each depth it was scored at
    (``eval.depths``) and the classical codecs on the same clips (their bits/s measured from what they encoded, the
    whole file in brackets), by bits per second; then its decoded unquantized latent (``eval.unquantized``: the
    ceiling of its depths, no bits) when scored."""
    e = evaluation
    coded = [(f"`{model}`", e.get("bits_per_second"), None, e)]
    coded += [(f"`{model}`, depth {d['depth']}", d.get("bits_per_second"), None, d) for d in e.get("depths") or []]
    coded += [
        (name, a.get("bits_per_second"), a.get("file_bits_per_second"), a)
        for name, a in (e.get("anchors") or {}).items()
    ]
    lines = markdown.table(["codec", "bits/s", *(column for _, column, _ in AUDIO_COLUMNS)])
    for label, bits, file_bits, values in sorted(coded, key=lambda r: r[1] or 0.0):
        rate = _cell(bits, 0) + (f" (file {file_bits:.0f})" if file_bits is not None else "")
        lines.append(markdown.row([label, rate, *(_cell(values.get(k), n) for k, _, n in AUDIO_COLUMNS)]))
    if e.get("unquantized"):
        ceiling = e["unquantized"]
        lines.append(
            markdown.row(
                [f"`{model}`, unquantized", "unquantized", *(_cell(ceiling.get(k), n) for k, _, n in AUDIO_COLUMNS)]
            )
        )
    return "\n".join(lines)


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
