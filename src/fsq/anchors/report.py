"""An image tokenizer's evaluation beside its classical anchors (``eval.image_anchors``) as one Markdown table,
for model cards and the README. Torch-free."""

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
