"""The audio codec trains through the one loop: the seanet model, the audio losses and the audio discriminator as
the phase's critic (checkpointed beside the model), deterministically; audio-only settings on images are refused."""

from __future__ import annotations

import json

import pytest
import torch

from fsq.checkpoint import load_safetensors
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.stages.tokenizer import STAGE
from fsq.training import loop

CODEC = [
    "data.source=tones",
    "data.length=512",
    "data.train_limit=16",
    "model.architecture=seanet",
    "model.dims=1",
    "model.filters=4",
    "model.channel_multipliers=[1,2,4]",
    "model.downsample=[[4],[4]]",
    "quantizer.kind=residual_fsq",
    "quantizer.levels=[5,5,5]",
    "quantizer.num_stages=2",
    "quantizer.quantize_dropout=0.5",
    "loss.l2_weight=0",
    "loss.l1_weight=1",
    "loss.stft_weight=1",
    "loss.complex_stft_weight=1",
    "loss.stft_windows=[64,128]",
    "loss.mel_weight=1",
    "loss.mel_windows=[64,256]",
    "loss.adversarial_weight=1",
    "loss.adversarial_start=1",
    "loss.discriminator=audio",
    "loss.discriminator_channels=4",
    "loss.discriminator_periods=[2,3]",
    "loss.discriminator_windows=[64,128]",
    "loss.feature_matching_weight=2",
    "train.steps=3",
    "train.batch_size=4",
    "train.log_every=1",
    "train.checkpoint_every=3",
    "train.ema_decay=0",
    "train.eval_at_end=false",
    "train.progress=false",
    "train.device=cpu",
    "eval.fid_samples=0",
]


def test_codec_trains_with_audio_losses_and_its_discriminator(tmp_path) -> None:
    cfg = load_config(TokenizerExperiment, [], CODEC)
    logs = []
    for run in ("a", "b"):
        loop.train(STAGE, cfg, tmp_path / run)
        logs.append([json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()])
    rows = [row for row in logs[0] if "loss" in row]
    assert len(rows) == 3
    for key in ("l1_loss", "stft_loss", "mel_loss", "rec_loss", "aux_loss"):
        assert all(key in row for row in rows), key
    assert "g_adv_loss" not in rows[0] and "d_loss" not in rows[0]  # the GAN starts at step 1
    assert all(k in rows[-1] for k in ("g_adv_loss", "feature_matching_loss", "d_loss"))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "sec_per_step"} for r in rows]  # noqa: E731
    assert strip(logs[0]) == strip(logs[1])  # a pure function of the seed
    weights = load_safetensors(tmp_path / "a" / "checkpoints" / "step_000003" / "discriminator.safetensors")
    assert any(key.startswith("periods.") for key in weights) and any(k.startswith("resolutions.") for k in weights)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["loss.mel_weight=1"], "audio loss"),
        (["loss.discriminator=audio", "loss.adversarial_weight=0.1"], "1-D waveforms"),
        (["model.architecture=seanet"], "1-D audio codec"),
        (CODEC[:-1] + ["loss.feature_matching_weight=1", "loss.adversarial_weight=0"], "feature_matching_weight"),
        (CODEC[:-1] + ["loss.stft_weight=0"], "complex_stft_weight"),
    ],
)
def test_audio_settings_where_they_do_not_apply_are_refused(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(TokenizerExperiment, [], overrides)


def test_images_keep_the_plain_l2_loss() -> None:
    """The defaults add no term to the image tokenizer's loss (its step is pinned by the demo's values)."""
    cfg = load_config(TokenizerExperiment, [], [])
    lw = cfg.loss
    assert (lw.l2_weight, lw.l1_weight, lw.stft_weight, lw.mel_weight, lw.discriminator) == (1, 0, 0, 0, "stylegan")
    assert cfg.model.architecture == "vqgan"
    assert torch.get_default_dtype() == torch.float32
