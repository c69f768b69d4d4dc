"""The photo tokenizer configs at 64 px (L2 only: the shipped bundle's) and 128 px (perceptual + GAN): each trains
two steps at the smoke preset's size and evaluates the held-out crops with its image anchors at the tokenizer's
bits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsq import app
from fsq.config import TokenizerExperiment, load_config

ROOT = Path(__file__).parents[2]


def test_the_configs_run_the_anchors_at_their_bits():
    for name, size, bits in (("fsq_photos64", 64, 16 * 16 * 10), ("fsq_photos128", 128, 16 * 16 * 14)):
        cfg = load_config(TokenizerExperiment, [ROOT / "configs" / "tokenizer" / f"{name}.yaml"])
        assert cfg.data.source == "photos" and cfg.data.image_size == size and cfg.data.eval_limit == 2000
        if name == "fsq_photos128":  # the Stage I recipe (GPU-sized)
            assert cfg.loss.perceptual_weight > 0 and cfg.loss.adversarial_weight > 0
        else:  # the CPU config that trained photos64-fsq: L2 only, for PSNR (its header)
            assert cfg.loss.perceptual_weight == 0 and cfg.loss.adversarial_weight == 0 and cfg.eval.perceptual
        assert set(cfg.eval.image_anchors) == {"naive", "jpeg", "jpeg-payload", "webp", "webp-payload"}
        downsampling = 2 ** (len(cfg.model.channel_multipliers) - 1)
        levels = 1
        for level in cfg.quantizer.levels:
            levels *= level
        assert (size // downsampling) ** 2 * (levels - 1).bit_length() == bits, name


@pytest.mark.integration
@pytest.mark.parametrize("name", ["fsq_photos64", "fsq_photos128"])
def test_two_smoke_steps_with_anchors(name, tmp_path):
    files = [ROOT / "configs" / "tokenizer" / f"{name}.yaml", ROOT / "configs" / "presets" / "smoke.yaml"]
    overrides = [
        "train.steps=2",
        "train.threads=1",
        "data.train_limit=32",
        "data.num_crops=64",
        "data.eval_limit=8",
        "eval.image_anchors=[naive,webp]",
        "loss.adversarial_start=1",  # the GAN runs in the second step
        "loss.discriminator_channels=8",
    ]
    app.train(load_config(TokenizerExperiment, files, overrides), tmp_path)
    results = json.loads((tmp_path / "eval" / "step_000002.json").read_text())
    assert results["num_samples"] == 8 and set(results["anchors"]) >= {"naive", "webp"}
    assert results["anchors"]["naive"]["psnr"] > results["psnr"]  # two steps of training lose to the naive codec


def test_the_perceptual_phase_fine_tunes_the_shipped_bundle():
    """fsq_photos64_perceptual: the second phase of the photos64 recipe starts from photos64-fsq, so its model and
    quantizer are fsq_photos64's; the perceptual loss on, the GAN off (its header: it added nothing here)."""
    files = {n: ROOT / "configs" / "tokenizer" / f"{n}.yaml" for n in ("fsq_photos64", "fsq_photos64_perceptual")}
    base, tuned = (load_config(TokenizerExperiment, [path]) for path in files.values())
    assert tuned.train.init_from == "photos64-fsq"
    assert tuned.model == base.model and tuned.quantizer == base.quantizer and tuned.data == base.data
    assert tuned.loss.perceptual_weight > 0 and tuned.loss.adversarial_weight == 0 and tuned.eval.perceptual
    assert tuned.optim.lr < base.optim.lr  # a fine-tune


@pytest.mark.integration
def test_two_perceptual_steps_from_the_shipped_bundle(tmp_path, capsys):
    overrides = [
        "train.steps=2",
        "train.batch_size=2",
        "train.threads=1",
        "data.num_crops=16",
        "data.eval_limit=4",
        "eval.fid_samples=0",
        "eval.image_anchors=[naive]",
        "eval.perceptual=false",
    ]
    cfg = load_config(TokenizerExperiment, [ROOT / "configs" / "tokenizer" / "fsq_photos64_perceptual.yaml"], overrides)
    app.train(cfg, tmp_path)
    assert "(from photos64-fsq's weights)" in capsys.readouterr().out
    results = json.loads((tmp_path / "eval" / "step_000002.json").read_text())
    assert results["num_samples"] == 4
    assert results["psnr"] > results["anchors"]["naive"]["psnr"]  # it starts from a trained tokenizer, not from noise
