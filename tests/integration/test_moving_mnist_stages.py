"""Moving MNIST through the tokenizer stage: the causal 3-D tokenizer trains with the 3-D GAN discriminator on,
evaluates on test clips, exports labelled token grids (the class of each clip's first digit, for
class-conditional Stage II), and the image-only perceptual loss is refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.cli import main
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.data import SourceUnavailable
from fsq.data.moving_mnist import digit_pool, moving_mnist_items
from fsq.stages.tokens import load_tokens

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs" / "tokenizer"
CONFIG = CONFIGS / "fsq_moving_mnist.yaml"  # time at x1: 9 latent frames
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"


def _cfg(*overrides: str, config: Path = CONFIG) -> TokenizerExperiment:
    try:
        digit_pool("train", 16), digit_pool("test", 16)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    model = load_config(TokenizerExperiment, [config]).model  # its own multipliers (smoke's are an image model's)
    keep = [f"model.channel_multipliers={model.channel_multipliers}", "model.num_groups=4", "train.threads=1"]
    small = ["data.image_size=16", "data.train_limit=32", "data.eval_limit=8", "train.steps=3"]
    return load_config(TokenizerExperiment, [config, SMOKE], [*keep, *small, *overrides])


@pytest.mark.parametrize(
    "name,latent_frames",
    [("fsq_moving_mnist", 9), ("fsq_moving_mnist_t2", 5)],  # time at x1; x2 in time (causal: 1 + 8 -> 1 + 4)
)
def test_moving_mnist_tokenizer_trains_with_the_3d_gan_and_exports_labelled_tokens(tmp_path, name, latent_frames):
    cfg = _cfg("loss.adversarial_weight=0.1", "loss.discriminator_channels=8", config=CONFIGS / f"{name}.yaml")
    run = tmp_path / "run"
    result = app.train(cfg, run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("d_loss" in r and "g_adv_loss" in r for r in records)  # the 3-D discriminator trained
    grid = result["eval"]["token_grid"]
    assert (
        grid == [latent_frames, 8, 8]
        and result["eval"]["num_samples"] == 8
        and len(result["eval"]["psnr_per_frame"]) == 9
    )
    assert main(["tokenize", str(run), "--split", "test", "--out", str(tmp_path / "tokens")]) == 0
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    assert tokens.shape == (128, *grid) and manifest["signal"] == "video"
    assert manifest["class_names"] == [str(k) for k in range(10)]
    clips = moving_mnist_items("test", seed=cfg.train.seed, count=128, image_size=16, frames=20)
    assert labels is not None and torch.equal(labels, clips.labels)  # the class of each clip's first digit


def test_image_only_losses_are_refused_for_moving_mnist(tmp_path):
    with pytest.raises(ConfigError, match=r"perceptual loss uses image features .* cannot judge video"):
        app.train(_cfg("loss.perceptual_weight=0.1"), tmp_path / "p")
    with pytest.raises(ConfigError, match=r"'moving_mnist' gives 3-D video signals \(C, T, H, W\) but model.dims=2"):
        app.train(_cfg("model.dims=2", "model.downsample=null", "model.causal=false"), tmp_path / "d")
