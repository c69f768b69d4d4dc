"""MaskGIT over video token grids (t, h, w), the smoke runs of the two Moving MNIST configs: frame prediction (the
first latent frame given) trains, evaluates and samples through the CLI with PSNR against the real frames and the
repeat-frame baseline; the clips' labels (first digit's class; or a video folder's class sub-folders) flow through
`fsq tokenize` into a class-conditional MaskGIT; video samples come out as PNG strips, GIFs and (with PyAV) MP4s
that read back. The tokenizer: a 4-step causal 3-D tokenizer on 9-frame 16 px Moving MNIST clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from fsq import app
from fsq.cli import main
from fsq.clips import mp4_available
from fsq.config import MaskGITExperiment, TokenizerExperiment, load_config, read_run_config
from fsq.inference.frame_prediction import frame_psnr
from fsq.inference.sampling import MaskGITPipeline
from fsq.models import Tokenizer
from fsq.stages.tokenizer import open_split
from fsq.stages.tokens import load_tokens

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"
SMOKE_MASKGIT = ROOT / "configs" / "presets" / "smoke_maskgit.yaml"
BLOBS = ROOT / "configs" / "tokenizer" / "fsq_blobs_3d.yaml"
CLIP, GRID = (1, 9, 16, 16), (3, 4, 4)


def _tokenizer_cfg(*overrides: str) -> TokenizerExperiment:
    model = load_config(TokenizerExperiment, [BLOBS]).model  # its own 3-D model, not the image smoke multipliers
    keep = [f"model.channel_multipliers={model.channel_multipliers}", "model.num_groups=4", "train.threads=1"]
    return load_config(TokenizerExperiment, [BLOBS, SMOKE], [*keep, "train.eval_at_end=false", *overrides])


def _maskgit_cfg(name: str, tokenizer: Path, *overrides: str) -> MaskGITExperiment:
    path = ROOT / "configs" / "maskgit" / f"{name}.yaml"
    fixed = [f"data.tokenizer={tokenizer}", "train.threads=1", "data.train_limit=64", "eval.num_samples=6"]
    return load_config(MaskGITExperiment, [path, SMOKE_MASKGIT], [*fixed, *overrides])


@pytest.fixture(scope="module")
def mm_tokenizer(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("moving_mnist_tokenizer")
    app.train(_tokenizer_cfg("data.source=moving_mnist", "data.length=9", "data.train_limit=64"), run)
    return run


def _gif_duration(path: Path) -> tuple[int, tuple[int, int]]:
    """Total duration in ms (Pillow stores identical consecutive frames once, their durations added) and size."""
    with Image.open(path) as image:
        return sum(frame.info["duration"] for frame in ImageSequence.Iterator(image)), image.size


def test_frame_prediction_trains_evaluates_and_samples(mm_tokenizer, tmp_path, capsys):
    run = tmp_path / "predict"
    result = app.train(_maskgit_cfg("fsq_moving_mnist_predict", mm_tokenizer), run)
    ev = result["eval"]
    assert ev["task"] == "frame_prediction" and ev["condition_frames"] == 1
    row = ev["guidance"][0]
    assert row["given_frames"] == 1 and row["frames"] == 9 and len(row["psnr_per_frame"]) == 8  # causal: frame 0
    assert all(np.isfinite(ev[k]) for k in ("psnr", "repeat_psnr", "tokenizer_psnr"))
    assert (run / "eval" / "step_000004_prediction.png").is_file()
    assert _gif_duration(run / "eval" / "step_000004_prediction.gif")[0] == 9 * 100  # 10 fps, 9 frames

    out = tmp_path / "samples"
    assert main(["sample", str(run), "--num", "3", "--out", str(out)]) == 0
    report = json.loads((out / "prediction.json").read_text())
    assert report["clips"] == 3 and report["split"] == "test" and report["given_frames"] == 1
    with np.load(out / "samples.npz") as samples:
        tokens, predicted, real = (torch.from_numpy(samples[k]) for k in ("tokens", "signals", "real"))
    assert tokens.shape == (3, *GRID) and predicted.shape == real.shape == (3, *CLIP)
    tokenizer = Tokenizer.from_pretrained(run / "tokenizer")
    real_tokens = tokenizer.tokenize(real)
    assert torch.equal(tokens[:, 0], real_tokens[:, 0])  # the given latent frame, unchanged
    assert report["token_accuracy"] == pytest.approx((tokens[:, 1:] == real_tokens[:, 1:]).double().mean().item())
    # the reported numbers are those of the written clips: predicted frames 1..8 against the real ones
    assert report["psnr"] == pytest.approx(frame_psnr(real[:, :, 1:], predicted[:, :, 1:]).mean().item(), abs=1e-4)
    repeat = real[:, :, :1].expand_as(real[:, :, 1:])
    assert report["repeat_psnr"] == pytest.approx(frame_psnr(real[:, :, 1:], repeat).mean().item(), abs=1e-4)
    with Image.open(out / "prediction.png") as strip:  # a row per clip (real, predicted, ...), a column per frame
        assert strip.size[0] / strip.size[1] == pytest.approx(9 / 6)  # 6 rows of 9 equal tiles
    duration, size = _gif_duration(out / "prediction.gif")
    assert duration == 9 * 100 and size[0] * 3 == size[1] * 2  # 2 columns (real | predicted) x 3 clips
    if mp4_available():
        import av

        with av.open(str(out / "prediction.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 9

    pipeline = MaskGITPipeline.from_run(run)  # unconditional samples of a frame predictor: refused, not made up
    with pytest.raises(ValueError, match=r"predicts frames \(condition_frames=1\): give the token grids"):
        pipeline.generate(None, 2)
    kept = pipeline.generate(None, 3, steps=2, condition=real_tokens)
    assert torch.equal(kept[:, 0], real_tokens[:, 0])

    # a bundle records that it predicts frames but not the tokenizer's data: a clear error, not unconditional samples
    assert main(["export", str(run), str(tmp_path / "bundle")]) == 0
    assert json.loads((tmp_path / "bundle" / "config.json").read_text())["sampling"]["condition_frames"] == 1
    assert (
        "A frame-prediction MaskGIT (the first 1 latent frame(s) given)"
        in (tmp_path / "bundle" / "README.md").read_text()
    )
    assert main(["sample", str(tmp_path / "bundle"), "--out", str(tmp_path / "nope")]) == 2
    assert "frame prediction conditions on held-out clips" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_condition_frames_must_leave_a_frame_to_predict(mm_tokenizer, tmp_path):
    cfg = _maskgit_cfg("fsq_moving_mnist_predict", mm_tokenizer, "masking.condition_frames=3", "data.train_limit=8")
    with pytest.raises(ValueError, match=r"masking.condition_frames=3 leaves nothing to predict: .*\(3, 4, 4\)"):
        app.train(cfg, tmp_path / "run")


def test_class_conditional_moving_mnist_smoke(mm_tokenizer, tmp_path):
    run, out = tmp_path / "run", tmp_path / "samples"
    overrides = [f"data.tokenizer={mm_tokenizer}", "train.threads=1", "data.train_limit=64", "eval.num_samples=10"]
    assert main(["train", "maskgit", "fsq_moving_mnist", "smoke_maskgit", *overrides, "--run-dir", str(run)]) == 0
    tokens, labels, manifest = load_tokens(run / "tokens" / "train")
    assert manifest["source"] == "moving_mnist" and manifest["class_names"] == [str(c) for c in range(10)]
    clips = open_split(read_run_config(mm_tokenizer), "train", 64)
    assert labels is not None and torch.equal(labels, clips.labels)  # each clip's first digit's class
    results = json.loads((run / "eval" / "step_000004.json").read_text())
    assert results["num_classes"] == 10 and [r["guidance"] for r in results["guidance"]] == [0.0, 1.0]
    assert main(["sample", str(run), "--classes", "3", "7", "--num", "2", "--out", str(out)]) == 0
    with np.load(out / "samples.npz") as samples:
        assert samples["labels"].tolist() == [3, 3, 7, 7] and samples["signals"].shape == (4, *CLIP)
    for c in (3, 7):
        with Image.open(out / f"class_{c}.png") as strip:  # 2 clips: 2 rows of 9 frames
            assert strip.size[0] / strip.size[1] == pytest.approx(9 / 2)
        assert _gif_duration(out / f"class_{c}.gif")[0] == 9 * 100  # 10 fps, the source's rate
        assert (out / f"class_{c}.mp4").is_file() == mp4_available()
    assert not (out / "class_0.png").exists()


def test_video_folder_class_folders_label_the_token_manifest(tmp_path):
    from fsq.data.synthetic_signals import blob_clip

    for split, count in (("train", 3), ("test", 1)):
        for c, name in enumerate(("left", "right")):
            folder = tmp_path / "video" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                np.save(folder / f"{i}.npy", blob_clip(c, i, frames=9, size=16).numpy())
    tokenizer = tmp_path / "tokenizer"
    app.train(_tokenizer_cfg(f"data.source=video:{tmp_path / 'video'}", "data.sample_rate=null"), tokenizer)
    assert main(["tokenize", str(tokenizer), "--split", "train", "--out", str(tmp_path / "tokens")]) == 0
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    assert manifest["has_labels"] and manifest["class_names"] == ["left", "right"] and manifest["signal"] == "video"
    assert tokens.shape == (6, *GRID) and labels is not None and labels.tolist() == [0, 0, 0, 1, 1, 1]
