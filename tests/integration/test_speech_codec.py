"""The quick speech codec config (``fsq_speech``) trains a few steps on a small speech source with its own model and
recipe, evaluates on 1.5 s crops of the held-out voices (STOI scored) at both depths, and its residual tokens decode
at every depth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.checkpoint import load_safetensors
from fsq.config import TokenizerExperiment, load_config
from fsq.metrics.si_snr import si_snr
from fsq.stages.tokenizer import load_run, open_split

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "tokenizer" / "fsq_speech.yaml"


def test_fsq_speech_trains_and_decodes_every_depth(speech_cache, tmp_path):
    small = ["train.steps=3", "train.checkpoint_every=3", "train.log_every=1", "train.threads=1", "train.batch_size=4"]
    small += [f"data.cache_dir={speech_cache}", "data.eval_limit=4", "eval.batch_size=4"]
    cfg = load_config(TokenizerExperiment, [CONFIG], small)
    app.train(cfg, tmp_path)
    results = json.loads((tmp_path / "eval" / "step_000003.json").read_text())
    assert results["num_samples"] == 4 and results["token_grid"] == [25]  # 4000 samples, hop 160
    # scored on 1.5 s crops (6 chunks of the model's 0.25 s), long enough for STOI; and at depth 1 (half the bits)
    assert results["eval_length"] == 24000 and results["chunk_length"] == 4000
    assert "stoi" in results and results.get("stoi_unscored_clips", 0) == 0, results.get("audio_metrics_skipped")
    (depth1,) = results["depths"]
    assert depth1["depth"] == 1 and depth1["bits_per_second"] == results["bits_per_second"] / 2
    assert "stoi" in depth1 and "mel_distance" in depth1
    # each codebook's (stage's) usage beside the union over stages
    per_stage, union = results["codes_used_per_stage"], results["codes_used"]
    assert len(per_stage) == cfg.quantizer.num_stages and all(n >= 1 for n in per_stage)
    assert max(per_stage) <= union <= sum(per_stage)
    model, _ = load_run(tmp_path)
    items = open_split(cfg, cfg.data.eval_split, 2)
    x = torch.stack([items.read(i)[:, :4000] for i in range(2)])
    tokens = model.tokenize(x)
    assert tokens.shape == (2, 25, cfg.quantizer.num_stages)
    for depth in range(1, cfg.quantizer.num_stages + 1):
        decoded = model.decode_indices(tokens[..., :depth])
        assert decoded.shape == x.shape and torch.isfinite(si_snr(x[:, 0], decoded[:, 0])).all()


TONES = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"
AUDIO_GAN = [  # a tiny codec on tones with every audio loss and the audio GAN (discriminator as the critic)
    "data.length=512",
    "data.train_limit=32",
    "model.architecture=seanet",
    "model.filters=4",
    "model.channel_multipliers=[1,2,4]",
    "model.downsample=[[4],[4]]",
    "loss.l2_weight=100",
    "loss.stft_weight=0.1",
    "loss.stft_windows=[64,128]",
    "loss.mel_weight=0.1",
    "loss.mel_windows=[64,128]",
    "loss.adversarial_weight=1",
    "loss.adversarial_start=1",
    "loss.discriminator=audio",
    "loss.discriminator_channels=4",
    "loss.discriminator_periods=[2,3]",
    "loss.discriminator_windows=[64,128]",
    "loss.feature_matching_weight=2",
    "train.steps=3",
    "train.checkpoint_every=3",
    "train.batch_size=8",
    "train.threads=1",
    "train.eval_at_end=false",
]


SPEED = ["data.speed_perturb=[0.8,1.2]"]
NO_SPECTRAL = ["loss.stft_weight=0", "loss.mel_weight=0"]
EVERY_LOSS_ONE_STEP = ["loss.adversarial_start=0", "train.steps=1", "train.checkpoint_every=1"]


@pytest.mark.parametrize(
    "extra",
    [NO_SPECTRAL, [*NO_SPECTRAL, *SPEED], EVERY_LOSS_ONE_STEP, [*EVERY_LOSS_ONE_STEP, *SPEED]],
    ids=["gan-3-steps", "gan-3-steps-speed-perturbed", "every-loss-1-step", "every-loss-1-step-speed-perturbed"],
)
def test_two_process_gloo_audio_gan_matches_one_process(extra, tmp_path, run_fsq):
    """The audio discriminator trains as the phase's critic under DDP: 2 ranks x 4 == one process x 8 (generator,
    its EMA and the discriminator; no quantize dropout, whose draws are per rank). With speed perturbation on, each
    crop's speed is drawn per item, not per rank, so the two runs see the same batches.

    Three steps of the GAN (L2, adversarial, feature matching), and one step of every loss at once: the STFT and mel
    losses' log magnitudes make a few steps chaotic at float rounding (measured on this codec: one process with 1
    and with 2 threads, every loss on, differs by up to 2% of a tensor's largest value after 3 steps, and by 9e-6
    with the spectral losses off), so after step 1 two runs that add gradients in another order need not agree."""
    runs, steps = {}, 1 if "train.steps=1" in extra else 3
    for name, nproc in (("single", 1), ("double", 2)):
        argv = ["train", "tokenizer", str(TONES), *AUDIO_GAN, *extra, "--run-dir", str(tmp_path / name)]
        run = run_fsq(argv, nproc=nproc)
        assert run.returncode == 0, run.stderr[-3000:]
        folder = tmp_path / name / "checkpoints" / f"step_{steps:06d}"
        runs[name] = {p: load_safetensors(folder / f"{p}.safetensors") for p in ("model", "ema", "discriminator")}
    for part, tensors in runs["single"].items():
        assert any(k.startswith("periods.") for k in runs["single"]["discriminator"])
        for key, value in tensors.items():
            torch.testing.assert_close(value, runs["double"][part][key], rtol=1e-4, atol=1e-5, msg=f"{part}: {key}")
