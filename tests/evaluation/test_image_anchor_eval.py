"""Image anchors in a tokenizer's evaluation (``eval.image_anchors``): the same held-out images through the naive
codec, JPEG and WebP at the tokenizer's bits, their PSNR / SSIM / real bits beside the tokenizer's; off by default."""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.anchors.images import IMAGE_ANCHORS, naive_image_codec
from fsq.anchors.report import anchors_table
from fsq.config import TokenizerExperiment, load_config
from fsq.config.tokenizer import EvalConfig
from fsq.evaluation.image_anchors import ImageAnchorScores
from fsq.inference.export import export_run
from fsq.losses.perceptual import EfficientNetPerceptualLoss
from fsq.metrics.image import psnr
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.stages.tokenizer import load_run, load_split
from fsq.studies.readme import card_table

ROOT = Path(__file__).parents[2]


def _tokenizer(levels: list[int], channels: int = 3) -> Tokenizer:
    spec = TokenizerSpec(
        image_size=16, in_channels=channels, filters=8, num_groups=4, quantizer={"kind": "fsq", "levels": levels}
    )
    return Tokenizer(spec)


def test_the_config_lists_every_anchor():
    (args,) = typing.get_args(typing.get_type_hints(EvalConfig)["image_anchors"])
    assert typing.get_args(args) == IMAGE_ANCHORS
    assert EvalConfig().image_anchors == []  # off by default: existing image runs unchanged


def test_scores_and_bits_on_a_batch():
    """4 x 4 tokens of 1,000 codes: 159.5 ideal bits, 160 as a fixed-length code (10 bits per token); the naive
    codec's PSNR is the one computed directly; JPEG and WebP report their real bits and quality."""
    model = _tokenizer([8, 5, 5, 5])
    y, x = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    images = torch.stack([torch.stack([x, y, (x + y) / 2]), torch.stack([y, 1 - x, x * y])])
    images = (images * 255).round() / 255
    scores = ImageAnchorScores(["naive", "jpeg-payload", "webp"], model)
    scores.update(images)
    scores.all_reduce()
    out = scores.summary()
    assert out["tokenizer"]["bits_per_image"] == pytest.approx(16 * math.log2(1000))
    assert out["target_bits_per_image"] == 160 == out["tokenizer"]["code_bits_per_image"]
    naive = out["naive"]
    direct = psnr(naive_image_codec(images, (4, 4), 10), images).mean().item()
    assert naive["psnr"] == pytest.approx(direct) and naive["bits_per_image"] == 160
    assert naive["bits_per_channel"] == [4, 3, 3] and naive["num_samples"] == 2
    for name in ("jpeg-payload", "webp"):
        entry = out[name]
        assert entry["bits_per_image"] > entry["payload_bits_per_image"] > 0 and 0 < entry["ssim"] <= 1
        assert entry["matched_on"] == ("payload" if name.endswith("payload") else "file")
    # WebP's smallest 16 px file is above 160 bits: its lowest quality is used and flagged
    assert out["webp"]["mean_quality"] == 0 and out["webp"]["over_target_at_lowest_quality"] == 1.0

    # the table of model cards and the README: the tokenizer, then each codec with the bits it really spent
    table = anchors_table({"psnr": 30.0, "ssim": 0.9, "num_samples": 2, "anchors": out}, "toy").splitlines()
    assert table[0].startswith("| at 160 bits per image | bits spent per image | PSNR dB | SSIM |")
    assert table[2] == "| `toy` | 160 (fixed-length code) | 30.00 | 0.900 | - |"
    assert table[3].startswith("| naive codec") and f"| 160 | {naive['psnr']:.2f} |" in table[3]
    assert (
        table[4].startswith("| JPEG, payload")
        and f"| {out['jpeg-payload']['payload_bits_per_image']:,.0f} |" in table[4]
    )
    assert table[5].startswith("| WebP, whole file") and table[5].endswith("| 100% |")  # flagged: over the target
    gap = 30.0 - naive["psnr"]
    assert table[-1] == (
        f"PSNR over the naive codec at equal bits: {gap:+.2f} dB on the same 2 held-out images (one trained model, "
        "one seed: the run-to-run spread is not measured)."
    )
    assert len(table) == 8


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="unknown image anchor 'png'"):
        ImageAnchorScores(["png"], _tokenizer([8, 5, 5, 5]))
    with pytest.raises(ValueError, match="lists an anchor twice"):
        ImageAnchorScores(["jpeg", "jpeg"], _tokenizer([8, 5, 5, 5]))
    with pytest.raises(ValueError, match="2 bits per position cannot give each of 3 channels"):
        ImageAnchorScores(["naive"], _tokenizer([2, 2]))


@pytest.mark.integration
def test_photo_tokenizer_evaluation_reports_anchors_on_the_same_crops(tmp_path):
    names = ["naive", "jpeg", "webp-payload"]
    overrides = ["train.steps=2", "train.threads=1", "data.eval_limit=12", "data.num_crops=12"]
    files = [ROOT / "configs" / "tokenizer" / "fsq_photos.yaml", ROOT / "configs" / "presets" / "smoke.yaml"]
    extra = [f"eval.image_anchors=[{','.join(names)}]", "eval.perceptual=true"]
    cfg = load_config(TokenizerExperiment, files, [*overrides, *extra])
    app.train(cfg, tmp_path / "with")
    results = json.loads((tmp_path / "with" / "eval" / "step_000002.json").read_text())
    anchors = results["anchors"]
    assert set(anchors) == {*names, "tokenizer", "target_bits_per_image"}
    assert anchors["target_bits_per_image"] == 640  # 32 px, 8 x 8 tokens of 10 bits
    crops = load_split(cfg, cfg.data.eval_split, cfg.data.eval_limit).images.float() / 255  # what eval saw
    direct = psnr(naive_image_codec(crops, (8, 8), 10), crops).mean().item()
    assert anchors["naive"]["psnr"] == pytest.approx(direct) and anchors["naive"]["num_samples"] == 12
    assert anchors["jpeg"]["bits_per_image"] > 640  # JPEG's header alone is larger: reported, not clipped
    # eval.perceptual: the EfficientNet-Lite0 distance of the evaluated model's reconstructions, per image
    model, _ = load_run(tmp_path / "with")
    with torch.no_grad():
        direct = EfficientNetPerceptualLoss()(model(crops)[0].float().clamp(0, 1), crops).item()
    assert results["perceptual"] == pytest.approx(direct, rel=1e-4) and results["perceptual"] > 0
    assert results["perceptual_network"] == "EfficientNet-Lite0"
    bundle = export_run(tmp_path / "with", tmp_path / "bundle", name="photo-toy")  # its card shows the anchors
    card = (bundle / "README.md").read_text()
    assert anchors_table(results, "photo-toy") in card and f"| {anchors['naive']['psnr']:.2f} |" in card
    row = card_table(results, "photo-toy")  # the README's row: the same table, and the perceptual distance
    assert anchors_table(results, "photo-toy") in row
    assert (
        "| perceptual distance (EfficientNet-Lite0, not LPIPS) |" in row and f"| {results['perceptual']:.3f} |" in row
    )
    plain = load_config(TokenizerExperiment, files, overrides)
    app.train(plain, tmp_path / "without")
    without = json.loads((tmp_path / "without" / "eval" / "step_000002.json").read_text())
    assert "anchors" not in without and "perceptual" not in without
    assert without["psnr"] == results["psnr"]  # the anchors change nothing of the tokenizer's own numbers
