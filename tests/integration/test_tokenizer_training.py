"""End to end: every tokenizer config trains through the smoke preset; resume is exact; DDP (gloo) matches one
process; bad checkpoints are refused; a folder with a corrupt image and a text file trains and reports both."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.checkpoint import CheckpointError, load_safetensors
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, cache_dir, load_images, speech, videos
from fsq.data.synthetic_signals import SOURCES as SIGNAL_SOURCES
from fsq.rundir import read_metrics
from fsq.stages import NonFiniteLossError

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
# fsq_folder_256 trains on one's own folder (a placeholder source): tests/integration/test_folder_config.py;
# fsq_speech on the prepared speech source (a 4-stride codec the smoke preset's widths do not fit):
# tests/integration/test_speech_codec.py; the GPU presets (*_gpu) train at a reduced size that keeps their factors:
# tests/test_video_gpu_preset.py
ELSEWHERE = {"fsq_folder_256", "fsq_speech"}
CONFIGS = sorted(
    p
    for p in (ROOT / "configs" / "tokenizer").glob("*.yaml")
    if p.stem not in ELSEWHERE and not p.stem.endswith("_gpu")
)
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"


def _need(source: str) -> None:
    if source in SIGNAL_SOURCES or source.startswith("frames:"):  # generated: always there
        return
    if source == "videos":  # real video: the prepared opencv-doc files, decoded with PyAV
        pytest.importorskip("av", reason="the videos source needs PyAV: pip install av (the video extra)")
        try:
            videos.verify(cache_dir() / "videos")
        except SourceUnavailable as error:
            pytest.skip(str(error))
        return
    if source == "speech":  # synthetic speech: the prepared espeak-ng clips (audio, not images)
        try:
            speech.read_manifest(cache_dir() / "speech", ())
        except SourceUnavailable as error:
            pytest.skip(str(error))
        return
    try:
        load_images(source, "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))


def _cfg(path: Path, *overrides: str) -> TokenizerExperiment:
    return load_config(TokenizerExperiment, [path, SMOKE], ["train.threads=1", *overrides])


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_each_config_trains_through_smoke_preset(path, tmp_path):
    whole = load_config(TokenizerExperiment, [path])
    own = whole.model
    # a config with its own per-axis downsampling keeps its depth (the smoke preset's 3 widths would not fit it)
    keep = [f"model.channel_multipliers={own.channel_multipliers}"] if own.downsample is not None else []
    # a fine-tune of a bundle starts here from scratch: the smoke preset's smaller model cannot take the bundle's
    # weights (the fine-tune itself runs at the real size in its own test, e.g. tests/integration/test_photo_configs.py)
    keep += ["train.init_from=null"] if whole.train.init_from else []
    cfg = _cfg(path, *keep)
    _need(cfg.data.source)
    result = app.train(cfg, tmp_path)
    for name in (
        "config.yaml",
        "meta.json",
        "metrics.jsonl",
        "checkpoints/step_000004/model.safetensors",
        "checkpoints/step_000004/optimizer.pt",
        "eval/step_000004.json",
        "eval/step_000004_grid.png",
    ):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert [r["step"] for r in read_metrics(tmp_path)] == [2, 4]
    evaluation = result["eval"]
    assert evaluation["num_samples"] == 64 and 0 < evaluation["usage"] <= 1
    assert evaluation["parameters"]["quantizer"] == (0 if cfg.quantizer.kind == "fsq" else 1024 * 256)


def _weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_safetensors(run_dir / "checkpoints" / f"step_{step:06d}" / "model.safetensors")


def test_stop_and_resume_equals_uninterrupted(tmp_path):
    _need("mnist")
    cfg = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "train.steps=6", "train.eval_at_end=false")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    app.train(cfg, straight)

    def crash_at_step_5(phase: str, step: int) -> None:
        if step == 4:  # the 5th step: checkpoints at steps 2 and 4 are on disk, step 5's work is lost
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        app.train(cfg, resumed, hooks=[crash_at_step_5])
    assert (resumed / "checkpoints" / "step_000004").is_dir()
    app.train(cfg, resumed)  # resumes from step 4 by itself

    a, b = _weights(straight, 6), _weights(resumed, 6)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit on the CPU

    def without_timing(records):
        return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in records]

    assert without_timing(read_metrics(straight)) == without_timing(read_metrics(resumed))
    assert len(json.loads((resumed / "meta.json").read_text())["runs"]) == 2


def test_run_dir_with_other_config_is_refused(tmp_path):
    _need("mnist")
    cfg = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "train.eval_at_end=false")
    app.train(cfg, tmp_path)
    other = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "quantizer.levels=[5,5,5]")
    with pytest.raises(ConfigError, match=r"different config \(changed: \['quantizer.levels'\]\)"):
        app.train(other, tmp_path)


def test_pickled_or_truncated_checkpoint_is_refused(tmp_path):
    """A pickled or truncated checkpoint is refused, never unpickled, and named; with an intact one before it the
    run falls back to that one (with a warning) and still ends where an uninterrupted run ends; with none left the
    refusal is the error. No message suggests loading unsafely."""
    _need("mnist")
    cfg = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "train.eval_at_end=false")
    longer = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "train.eval_at_end=false", "train.steps=8")
    straight, run = tmp_path / "straight", tmp_path / "run"
    app.train(longer, straight)
    app.train(cfg, run)
    with open(run / "checkpoints/step_000004/model.safetensors", "wb") as handle:
        pickle.dump({"encoder.stem.weight": [0.0]}, handle)
    with pytest.warns(UserWarning, match="using step_000002 instead: .*not a valid safetensors file"):
        app.train(longer, run)
    a, b = _weights(straight, 8), _weights(run, 8)
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed from step 2: the same run, exactly

    broken = tmp_path / "broken"
    app.train(cfg, broken)
    good_weights = (broken / "checkpoints/step_000004/model.safetensors").read_bytes()
    for folder in (broken / "checkpoints").iterdir():  # every checkpoint unusable: a pickle, a truncated file
        with open(folder / "model.safetensors", "wb") as handle:
            pickle.dump({"encoder.stem.weight": [0.0]}, handle)
    data = (broken / "checkpoints/step_000004/optimizer.pt").read_bytes()
    (broken / "checkpoints/step_000004/optimizer.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a valid safetensors file") as refused:
        app.train(longer, broken)
    assert "weights_only=False" not in str(refused.value)
    (broken / "checkpoints/step_000004/model.safetensors").write_bytes(good_weights)  # only optimizer.pt is bad
    with pytest.raises(CheckpointError, match="cannot be loaded safely.*nothing in it was executed") as refused:
        app.train(longer, broken)
    assert "weights_only=False" not in str(refused.value) and "will likely succeed" not in str(refused.value)


def test_folder_with_corrupt_image_and_text_file_trains_and_reports(tmp_path, caplog):
    from PIL import Image

    folder = tmp_path / "images"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(12):
            color = (40 * i % 255, 100 if cls == "a" else 200, 30)
            Image.new("RGB", (20, 20), color).save(folder / cls / f"{i}.png")
    (folder / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "b" / "notes.txt").write_text("not an image")
    cfg = load_config(
        TokenizerExperiment,
        [SMOKE],
        [
            f"data.source={folder}",
            "data.image_size=16",
            "data.train_split=all",
            "data.eval_split=all",
            "data.eval_limit=null",
            "train.threads=1",
        ],
    )
    with caplog.at_level("WARNING"):
        result = app.train(cfg, tmp_path / "run")
    assert result["eval"]["num_samples"] == 24
    report = caplog.text
    assert "broken.jpg" in report and "notes.txt" in report
    listed = json.loads((tmp_path / "run" / "skipped_files.json").read_text())  # the run dir keeps the list
    assert {(Path(e["path"]).name, e["found"]) for e in listed["skipped"]} == {
        ("notes.txt", "listing"),
        ("broken.jpg", "decoding"),
    }
    strict = load_config(
        TokenizerExperiment,
        [SMOKE],
        [f"data.source={folder}", "data.image_size=16", "data.train_split=all", "data.on_error=raise"],
    )
    with pytest.raises(ValueError, match="broken.jpg"):
        app.train(strict, tmp_path / "strict")


def test_two_process_gloo_matches_one_process(tmp_path, run_fsq):
    _need("mnist")
    common = [
        str(ROOT / "configs/tokenizer/fsq_mnist.yaml"),
        str(SMOKE),
        "train.threads=1",
        "train.steps=4",
        "eval.fid_samples=0",
        "data.eval_limit=63",
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    run_fsq(["train", "tokenizer", *common, "--run-dir", str(single)]).check_returncode()
    run = run_fsq(["train", "tokenizer", *common, "--run-dir", str(double)], nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = _weights(single, 4), _weights(double, 4)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    ma, mb = read_metrics(single), read_metrics(double)
    assert [r["step"] for r in ma] == [r["step"] for r in mb]
    for ra, rb in zip(ma, mb):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-4)
    ea = json.loads((single / "eval" / "step_000004.json").read_text())
    eb = json.loads((double / "eval" / "step_000004.json").read_text())
    assert ea["num_samples"] == eb["num_samples"] == 63  # odd count: every sample exactly once over 2 ranks
    assert eb["tokens"] == 63 * 49
    assert eb["psnr"] == pytest.approx(ea["psnr"], abs=1e-3)


def test_eval_cli_and_token_export(tmp_path):
    _need("mnist")
    run = tmp_path / "run"
    cfg = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "train.eval_at_end=false")
    app.train(cfg, run)
    from fsq.cli import main
    from fsq.stages.tokens import load_tokens

    assert main(["eval", str(run), "--fid-samples", "8"]) == 0
    evaluation = json.loads((run / "eval" / "step_000004.json").read_text())
    assert evaluation["num_samples"] == 64 and evaluation["fid_samples"] == 8 and evaluation["rfid"] >= 0
    assert (
        main(["tokenize", str(run), "--split", "test", "--out", str(tmp_path / "tokens"), "--shard-size", "4000"]) == 0
    )
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    assert manifest["dtype"] == "int16" and manifest["codebook_size"] == 1000  # smallest type that fits 1000 codes
    assert tokens.shape == (10000, 7, 7) and tokens.dtype == torch.int64 and len(manifest["shards"]) == 3
    assert labels.shape == (10000,) and labels.bincount().tolist()[0] == 980  # the official test set, held out
    assert tokens.min() >= 0 and tokens.max() < 1000
    # the tokens are the EMA tokenizer's: decoding them reproduces the model's own reconstruction
    from fsq.stages.tokenizer import load_run

    model, _ = load_run(run)
    x = load_images("mnist", "test", limit=5).images.float() / 255
    assert torch.equal(model.tokenize(x), tokens[:5])
    shard = tmp_path / "tokens" / "shard_00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(CheckpointError, match="checksum"):
        load_tokens(tmp_path / "tokens")


def test_perceptual_and_gan_losses_train(tmp_path):
    _need("mnist")
    cfg = _cfg(
        ROOT / "configs/tokenizer/vq_mnist.yaml",
        "loss.perceptual_weight=0.1",
        "loss.adversarial_weight=0.1",
        "loss.adversarial_start=2",
        "loss.discriminator_channels=8",
        "train.eval_at_end=false",
    )
    app.train(cfg, tmp_path)
    records = read_metrics(tmp_path)
    assert "perceptual_loss" in records[0] and records[0]["perceptual_loss"] > 0
    assert "d_loss" in records[-1] and "r1" in records[-1] and "g_adv_loss" in records[-1]  # from step 2 on
    assert "d_loss" not in records[0]  # the GAN starts at loss.adversarial_start
    assert (tmp_path / "checkpoints" / "step_000004" / "discriminator.safetensors").is_file()


def test_non_finite_loss_stops_naming_the_step(tmp_path):
    _need("mnist")
    cfg = _cfg(ROOT / "configs/tokenizer/fsq_mnist.yaml", "optim.lr=1e30", "train.eval_at_end=false")
    with pytest.raises(NonFiniteLossError, match=r"non-finite (loss|encoder output) .*at step \d+"):
        app.train(cfg, tmp_path)
