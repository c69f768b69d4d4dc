"""Audio-shaped (1-D) and video-shaped (3-D) signals through the CLI: a tokenizer trains, resumes after a kill
exactly, evaluates (SNR / per-frame PSNR) and exports; MaskGIT trains over its 1-D / 3-D token grids and samples;
bad input (a model of the wrong rank, a crop longer than a clip, a rate mismatch, tokens of another grid) is a
clear error naming what does not match."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fsq import app
from fsq.checkpoint import load_safetensors
from fsq.cli import main
from fsq.config import ConfigError, MaskGITExperiment, TokenizerExperiment, load_config
from fsq.models import Tokenizer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"
SMOKE_MASKGIT = ROOT / "configs" / "presets" / "smoke_maskgit.yaml"
KINDS = {
    "tones_1d": {"clip": (1, 256), "grid": (32,), "metric": "snr_db"},
    "blobs_3d": {"clip": (1, 9, 16, 16), "grid": (3, 4, 4), "metric": "psnr"},
}


def _cfg(name: str, *overrides: str) -> TokenizerExperiment:
    path = ROOT / "configs" / "tokenizer" / f"fsq_{name}.yaml"
    # the config's own model (the smoke preset would shrink it to an image model's multipliers)
    model = load_config(TokenizerExperiment, [path]).model
    keep = [f"model.channel_multipliers={model.channel_multipliers}", "model.num_groups=4", "train.threads=1"]
    return load_config(TokenizerExperiment, [path, SMOKE], [*keep, *overrides])


def _weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_safetensors(run_dir / "checkpoints" / f"step_{step:06d}" / "model.safetensors")


@pytest.mark.parametrize("name", list(KINDS))
def test_tokenizer_trains_resumes_evaluates_and_exports(name, tmp_path):
    kind = KINDS[name]
    cfg = _cfg(name, "train.steps=6", "train.eval_at_end=false")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    app.train(cfg, straight)

    def kill_at_step_5(phase: str, step: int) -> None:
        if step == 4:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        app.train(cfg, resumed, hooks=[kill_at_step_5])
    app.train(cfg, resumed)  # resumes from step 4 by itself
    a, b = _weights(straight, 6), _weights(resumed, 6)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same crops, the same run

    assert main(["eval", str(resumed)]) == 0
    results = json.loads((resumed / "eval" / "step_000006.json").read_text())
    assert results["num_samples"] == 64 and results["token_grid"] == list(kind["grid"])
    assert np.isfinite(results[kind["metric"]]) and results["l1"] < 0.5
    assert "rfid" not in results and "perceptual" in results["image_metrics"]  # fid_samples=0 in the smoke preset
    if name == "tones_1d":  # audio: no image metric at all
        assert "ssim" not in results and "image metrics" in results["image_metrics"]
    else:  # video: SSIM per frame, temporal consistency, the naive codec at equal bits, FVD not computed
        assert 0 < results["ssim"] <= 1 and len(results["ssim_per_frame"]) == 9
        assert results["temporal_l1"] >= 0 and results["naive"]["levels"] and results["fvd"] is None
    assert (resumed / "eval" / "step_000006_grid.png").is_file()

    assert main(["export", str(resumed), str(tmp_path / "bundle")]) == 0
    model = Tokenizer.from_pretrained(tmp_path / "bundle")
    x = torch.rand(2, *kind["clip"])
    assert model.tokenize(x).shape == (2, *kind["grid"]) and model(x)[0].shape == x.shape
    with pytest.raises(ValueError, match=r"expected signals of shape \(B, " + ", ".join(map(str, kind["clip"]))):
        model.tokenize(torch.rand(2, 1, 16, 16))  # an image given to an audio or video model


def test_causal_video_tokenizer_trains_with_the_gan_loss(tmp_path):
    cfg = _cfg("blobs_3d", "loss.adversarial_weight=0.1", "loss.discriminator_channels=8", "train.eval_at_end=false")
    app.train(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("d_loss" in r for r in records)


@pytest.mark.parametrize("name", list(KINDS))
def test_maskgit_trains_and_samples_over_the_token_grid(name, tmp_path):
    kind = KINDS[name]
    tokenizer = tmp_path / "tokenizer"
    app.train(_cfg(name, "train.eval_at_end=false", "data.train_limit=64"), tokenizer)
    path = ROOT / "configs" / "maskgit" / f"fsq_{name}.yaml"
    cfg = load_config(MaskGITExperiment, [path, SMOKE_MASKGIT], [f"data.tokenizer={tokenizer}", "train.threads=1"])
    run = tmp_path / "maskgit"
    result = app.train(cfg, run)
    manifest = json.loads((run / "tokens" / "train" / "manifest.json").read_text())
    assert manifest["token_grid"] == list(kind["grid"]) and manifest["signal"] in ("audio", "video")
    rows = result["eval"]["guidance"]
    assert [r["guidance"] for r in rows] == [0.0, 1.0] and all(0 < r["usage"] <= 1 for r in rows)
    assert rows[0]["sample_shape"] == list(kind["clip"])
    assert main(["sample", str(run), "--num", "3", "--out", str(tmp_path / "samples")]) == 0
    with np.load(tmp_path / "samples" / "samples.npz") as samples:
        assert samples["tokens"].shape == (3, *kind["grid"]) and samples["signals"].shape == (3, *kind["clip"])
    wavs = sorted(p.name for p in (tmp_path / "samples").glob("*.wav"))  # audio: a wav per unconditional clip
    assert wavs == ([f"sample_{k:03d}.wav" for k in range(3)] if len(kind["clip"]) == 2 else [])


def test_bad_signal_input_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"'mnist' gives 2-D image signals \(C, H, W\) but model.dims=3"):
        app.train(load_config(TokenizerExperiment, [SMOKE], ["model.dims=3"]), tmp_path / "a")
    with pytest.raises(ValueError, match=r"a time crop of 40 is longer than the clip .*\(17, 16, 16\)"):
        app.train(_cfg("blobs_3d", "data.length=40"), tmp_path / "b")
    with pytest.raises(ValueError, match="sample-rate mismatch: 'tones' gives audio at 8000 Hz but 16000 Hz"):
        app.train(_cfg("tones_1d", "data.sample_rate=16000"), tmp_path / "c")
    with pytest.raises(ConfigError, match="perceptual loss uses image features .* cannot judge audio"):
        app.train(_cfg("tones_1d", "loss.perceptual_weight=0.1"), tmp_path / "d")
    with pytest.raises(ConfigError, match=r"channels_last=true .* video models \(Conv3d\)"):
        app.train(_cfg("blobs_3d", "train.channels_last=true"), tmp_path / "e")


def test_tokens_of_another_grid_are_refused(tmp_path):
    first, second = tmp_path / "t32", tmp_path / "t64"
    app.train(_cfg("tones_1d", "train.eval_at_end=false", "data.train_limit=32"), first)
    app.train(_cfg("tones_1d", "train.eval_at_end=false", "data.train_limit=32", "data.length=512"), second)
    assert main(["tokenize", str(second), "--split", "train", "--out", str(tmp_path / "tokens64")]) == 0
    path = ROOT / "configs" / "maskgit" / "fsq_tones_1d.yaml"
    overrides = [f"data.tokenizer={first}", f"data.tokens={tmp_path / 'tokens64'}", "train.threads=1"]
    cfg = load_config(MaskGITExperiment, [path, SMOKE_MASKGIT], overrides)
    with pytest.raises(ValueError, match=r"tokens64/manifest.json: token grids of shape \(64,\), .*shape \(32,\)"):
        app.train(cfg, tmp_path / "maskgit")


def test_a_shard_whose_grid_is_not_the_manifests_names_the_file(tmp_path):
    from fsq.checkpoint import save_safetensors_atomic
    from fsq.stages.tokens import _sha256, load_tokens

    save_safetensors_atomic({"tokens": torch.zeros(2, 4, dtype=torch.int16)}, tmp_path / "shard_00000.safetensors")
    shard = {"file": "shard_00000.safetensors", "count": 2, "sha256": _sha256(tmp_path / "shard_00000.safetensors")}
    manifest = {"format": "fsq-tokens", "version": 1, "token_grid": [2, 2], "shards": [shard]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match=r"shard_00000.safetensors: token grids of shape \(4,\) .* expected is \(2, 2\)"
    ):
        load_tokens(tmp_path)
    manifest["token_grid"] = [4]  # the same file under a matching manifest loads
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert load_tokens(tmp_path)[0].shape == (2, 4)


def test_audio_and_video_folders_train_and_evaluate(tmp_path):
    from fsq.data.signal_files import write_wav
    from fsq.data.synthetic_signals import blob_clip, tone_clip

    for split, count in (("train", 8), ("test", 4)):
        (tmp_path / "audio" / split).mkdir(parents=True)
        (tmp_path / "video" / split).mkdir(parents=True)
        for i in range(count):
            write_wav(tmp_path / "audio" / split / f"{i}.wav", tone_clip(len(split), i, length=300 + 7 * i), 8000)
            np.save(tmp_path / "video" / split / f"{i}.npy", blob_clip(len(split), i, frames=11, size=20).numpy())
    audio = _cfg("tones_1d", f"data.source=audio:{tmp_path / 'audio'}", "data.eval_limit=null", "data.workers=1")
    result = app.train(audio, tmp_path / "run_audio")
    assert result["eval"]["num_samples"] == 4 and np.isfinite(result["eval"]["snr_db"])
    video = _cfg("blobs_3d", f"data.source=video:{tmp_path / 'video'}", "data.eval_limit=null", "data.sample_rate=null")
    result = app.train(video, tmp_path / "run_video")
    assert result["eval"]["token_grid"] == [3, 4, 4] and len(result["eval"]["psnr_per_frame"]) == 9
    with pytest.raises(ConfigError, match="clips in a folder may differ in length; set data.length"):
        app.train(_cfg("tones_1d", f"data.source=audio:{tmp_path / 'audio'}", "data.length=null"), tmp_path / "x")
    with pytest.raises(ValueError, match=r"audio/train/\d.wav' gives audio at 8000 Hz but 16000 Hz"):
        app.train(_cfg("tones_1d", f"data.source=audio:{tmp_path / 'audio'}", "data.sample_rate=16000"), tmp_path / "y")


def test_video_tokenizer_two_process_gloo_matches_one_process(tmp_path, run_fsq):
    model = load_config(TokenizerExperiment, [ROOT / "configs/tokenizer/fsq_blobs_3d.yaml"]).model
    common = [
        str(ROOT / "configs/tokenizer/fsq_blobs_3d.yaml"),
        str(SMOKE),
        f"model.channel_multipliers={model.channel_multipliers}",
        "model.num_groups=4",
        "train.threads=1",
        "data.eval_limit=7",
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    run_fsq(["train", "tokenizer", *common, "--run-dir", str(single)]).check_returncode()
    run = run_fsq(["train", "tokenizer", *common, "--run-dir", str(double)], nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = _weights(single, 4), _weights(double, 4)
    for key in a:  # each rank took its half of the same random crops
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    ea = json.loads((single / "eval" / "step_000004.json").read_text())
    eb = json.loads((double / "eval" / "step_000004.json").read_text())
    assert ea["num_samples"] == eb["num_samples"] == 7 and eb["tokens"] == 7 * 3 * 4 * 4
    assert eb["psnr"] == pytest.approx(ea["psnr"], abs=1e-3)


def test_generated_tones_resampled_to_another_rate(tmp_path):
    cfg = _cfg("tones_1d", "data.sample_rate=16000", "data.resample=true", "data.length=512", "train.steps=2")
    result = app.train(cfg, tmp_path)
    assert result["eval"]["rate"] == 16000 and result["eval"]["token_grid"] == [64]
