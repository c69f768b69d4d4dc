"""Voice-conditioned MaskGIT over 1-D speech tokens, the smoke run: a 1-D tokenizer trains a few steps on the small
synthetic speech source, `fsq tokenize` carries the clips' voice ids into the token manifest, the MaskGIT of
configs/maskgit/fsq_speech_voices.yaml trains a few steps on them, and its evaluation reports the voice judge (its
accuracy on real held-out clips and on their reconstructions, chance) and the samples' voice accuracy, and writes
wav files per voice; `fsq sample` writes a wav file per clip, named by voice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.cli import main
from fsq.config import TokenizerExperiment, load_config, read_run_config
from fsq.data.signal_files import read_wav
from fsq.data.speech import split_voices, voices
from fsq.inference.codec import model_fingerprint
from fsq.stages.tokenizer import load_run, open_split
from fsq.stages.tokens import load_tokens

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
TONES = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"
LENGTH, TOKENS = 1024, 64


def _train_speech_tokenizer(speech_cache: Path, run: Path, quantizer: list[str]) -> Path:
    """A 1-D tokenizer of 1,024-sample crops of synthetic speech (64 tokens) with ``quantizer`` overrides, trained
    3 steps into ``run``."""
    model = load_config(TokenizerExperiment, [TONES]).model
    overrides = [
        f"model.channel_multipliers={model.channel_multipliers}",
        "model.num_groups=4",
        "model.downsample=[[4],[4]]",
        *quantizer,
        "train.threads=1",
        "train.steps=3",
        "train.eval_at_end=false",
        "data.source=speech",
        f"data.cache_dir={speech_cache}",
        "data.sample_rate=16000",
        f"data.length={LENGTH}",
    ]
    app.train(load_config(TokenizerExperiment, [TONES, SMOKE], overrides), run)
    return run


@pytest.fixture(scope="module")
def speech_tokenizer(speech_cache, tmp_path_factory) -> Path:
    """The config's own quantizer (one index per position)."""
    return _train_speech_tokenizer(speech_cache, tmp_path_factory.mktemp("speech_tokenizer"), [])


def test_voice_ids_flow_through_fsq_tokenize(speech_tokenizer, tmp_path):
    assert main(["tokenize", str(speech_tokenizer), "--split", "train", "--out", str(tmp_path / "tokens")]) == 0
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    assert manifest["source"] == "speech" and manifest["has_labels"] and manifest["signal"] == "audio"
    assert manifest["class_names"] == [v.name for v in voices()] and manifest["rate"] == 16000
    clips = open_split(read_run_config(speech_tokenizer), "train", None)
    assert labels is not None and torch.equal(labels, clips.labels) and tokens.shape == (len(clips), TOKENS)
    assert set(labels.tolist()) == {v.id for v in split_voices("train")}  # the training voices alone
    assert manifest["windows"] is None


def test_windows_tokenize_every_whole_crop_of_each_clip(speech_tokenizer, tmp_path, capsys):
    """``--windows``: each clip gives every crop of 1,024 samples side by side (first one at the clip's start),
    labelled by its clip's voice; a MaskGIT refuses tokens cut another way than its ``data.windows``."""
    args = ["tokenize", str(speech_tokenizer), "--split", "train", "--out", str(tmp_path / "tokens"), "--windows"]
    assert main(args) == 0
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    clips = open_split(read_run_config(speech_tokenizer), "train", None)
    counts = torch.tensor([clips.length(k) // LENGTH for k in range(len(clips))])
    assert manifest["windows"] == {"length": LENGTH, "hop": LENGTH} and tokens.shape == (int(counts.sum()), TOKENS)
    assert len(tokens) > 2 * len(clips)  # synthetic speech clips hold several crops each
    assert labels is not None and torch.equal(labels, clips.labels.repeat_interleave(counts))
    model, _ = load_run(speech_tokenizer)
    first = clips.read(0)[None, :, :LENGTH]  # the first window of the first clip (in [0, 1], as the loader's)
    assert torch.equal(model.eval().tokenize(first)[0], tokens[0].long())
    run = ["train", "maskgit", "fsq_speech_voices", "smoke_maskgit", f"data.tokenizer={speech_tokenizer}"]
    run += [f"data.tokens={tmp_path / 'tokens'}", "data.groups=1", "--run-dir", str(tmp_path / "run")]
    capsys.readouterr()
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "tokens of every window of 1024 samples of each clip, but data.windows=false" in err


def test_voice_conditioned_maskgit_smoke(speech_tokenizer, tmp_path):
    run, out = tmp_path / "run", tmp_path / "samples"
    overrides = [f"data.tokenizer={speech_tokenizer}", "train.threads=1", "eval.num_samples=56", "eval.batch_size=56"]
    overrides += ["data.groups=1", "eval.judge_data=clips"]  # one token per index; the judge of real clips
    args = ["train", "maskgit", "fsq_speech_voices", "smoke_maskgit", *overrides, "--run-dir", str(run)]
    assert main(args) == 0
    results = json.loads((run / "eval" / "step_000004.json").read_text())
    assert results["num_classes"] == 40 and results["token_grid"] == [TOKENS] and results["signal"] == "audio"
    judge = results["voice_judge"]
    assert judge["num_heldout"] == 28 and judge["chance"] == pytest.approx(1 / 28) and judge["length"] == LENGTH
    assert 0.0 <= judge["heldout_accuracy"] <= 1.0 and 0.0 <= judge["reconstructed_accuracy"] <= 1.0
    assert judge["steps"] == 20  # smoke_maskgit's eval.classifier_steps
    assert [row["guidance"] for row in results["guidance"]] == [0.0, 1.0]
    for row in results["guidance"]:
        assert 0.0 <= row["voice_accuracy"] <= 1.0 and row["chance"] == judge["chance"]
        assert sorted(map(int, row["per_voice_accuracy"])) == list(range(28))
        assert row["sample_shape"] == [1, LENGTH]
        wavs = sorted((run / "eval" / row["wav_dir"]).glob("*.wav"))
        assert len(wavs) == 28 * 2 and wavs[0].name == "voice_00_0.wav"  # 2 samples per voice, grid_per_class=2
        audio, rate = read_wav(wavs[0])
        assert rate == 16000 and tuple(audio.shape) == (1, LENGTH)

    # the judge trained on the tokenizer's reconstructions instead: its own cache entry, named by the tokenizer
    assert main(["eval", str(run), "eval.judge_data=reconstructions", "eval.guidance=[0.0]"]) == 0
    again = json.loads((run / "eval" / "step_000004.json").read_text())["voice_judge"]
    assert judge["trained_on"] == "clips" and judge["through"] is None
    assert again["trained_on"] == "reconstructions" and again["path"] != judge["path"]
    assert again["through"] == model_fingerprint(load_run(speech_tokenizer)[0])
    assert 0.0 <= again["reconstructed_accuracy"] <= 1.0 and again["num_train"] == judge["num_train"]

    assert main(["sample", str(run), "--classes", "3", "7", "--num", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == [f"class_{c}_{k:03d}.wav" for c in (3, 7) for k in range(2)]
    assert read_wav(out / "class_7_001.wav")[1] == 16000


@pytest.fixture(scope="module")
def residual_speech_tokenizer(speech_cache, tmp_path_factory) -> Path:
    """A residual FSQ of 2 stages of [4, 4, 4, 4] (256 codes a stage)."""
    residual = ["quantizer.kind=residual_fsq", "quantizer.levels=[4,4,4,4]", "quantizer.num_stages=2"]
    return _train_speech_tokenizer(speech_cache, tmp_path_factory.mktemp("residual_speech_tokenizer"), residual)


def test_a_maskgit_over_residual_stages_in_digit_groups(residual_speech_tokenizer, tmp_path, capsys):
    """Both stages, each index as 2 tokens of 16 values (channels 0-1, 2-3): grids (64, 4); the samples decode
    through the layout the MaskGIT records, from the run and from its exported bundle."""
    args = ["tokenize", str(residual_speech_tokenizer), "--split", "train", "--out", str(tmp_path / "tokens")]
    assert main([*args, "--groups", "2"]) == 0
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    assert manifest["token_grid"] == [TOKENS, 4] and manifest["codebook_size"] == 16 and manifest["dtype"] == "uint8"
    assert manifest["token_layout"] == {"stages": 2, "groups": 2, "group_size": 16, "residual": True}
    assert main([*args[:-1], str(tmp_path / "whole")]) == 0  # whole indices: the stages alone as the new axis
    indices, _, whole = load_tokens(tmp_path / "whole")
    assert whole["token_grid"] == [TOKENS, 2] and whole["codebook_size"] == 256 and indices.shape[0] == len(tokens)
    assert torch.equal(tokens[..., 0] + 16 * tokens[..., 1], indices[..., 0])  # stage 0: channels 0-1, then 2-3
    assert torch.equal(tokens[..., 2] + 16 * tokens[..., 3], indices[..., 1])
    assert main([*args[:-1], str(tmp_path / "bad"), "--groups", "3"]) == 2  # 256 codes: no 3 equal blocks

    run, out = tmp_path / "run", tmp_path / "samples"
    overrides = [
        f"data.tokenizer={residual_speech_tokenizer}",
        "data.groups=2",
        "data.stages=2",
        "train.threads=1",
        "eval.num_samples=28",
        "eval.batch_size=28",
        "eval.guidance=[0.0]",
    ]
    assert main(["train", "maskgit", "fsq_speech_voices", "smoke_maskgit", *overrides, "--run-dir", str(run)]) == 0
    results = json.loads((run / "eval" / "step_000004.json").read_text())
    assert results["token_grid"] == [TOKENS, 4] and results["codebook_size"] == 16
    assert results["guidance"][0]["sample_shape"] == [1, LENGTH]
    assert main(["sample", str(run), "--classes", "3", "--num", "2", "--out", str(out)]) == 0
    assert tuple(read_wav(out / "class_3_001.wav")[0].shape) == (1, LENGTH)
    assert main(["export", str(run), str(tmp_path / "bundle")]) == 0
    from fsq.inference.sampling import MaskGITPipeline

    pipeline = MaskGITPipeline.from_pretrained(tmp_path / "bundle")
    assert pipeline.model.spec.token_layout == manifest["token_layout"]
    assert pipeline.sample([5, 6]).shape == (2, 1, LENGTH)
    # tokens in another layout than the config's are refused before training
    wrong = [*overrides[:1], f"data.tokens={tmp_path / 'tokens'}", "data.stages=1", *overrides[3:]]
    args = ["train", "maskgit", "fsq_speech_voices", "smoke_maskgit", *wrong, "--run-dir", str(tmp_path / "w")]
    capsys.readouterr()
    assert main(args) == 2
    assert "makes grids of shape (64, 2) (data.stages=1, data.groups=2): tokens of another" in capsys.readouterr().err
    # the same grid (64, 2) in another layout: both stages as whole indices, not stage 0 in two digits
    whole_tokens = [f"data.tokens={tmp_path / 'whole'}" if w.startswith("data.tokens=") else w for w in wrong]
    args = ["train", "maskgit", "fsq_speech_voices", "smoke_maskgit", *whole_tokens, "--run-dir", str(tmp_path / "v")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "whole/manifest.json: tokens in the layout" in err and "export them again with the same settings" in err


def test_the_smoke_overlay_over_a_bundle_tokenizer_says_to_name_the_bundle(tmp_path, capsys):
    """smoke_maskgit links data.tokenizer to "{previous}_smoke", the smoke run of a trained tokenizer; the config's
    tokenizer is the shipped speech-fsq bundle, which has no smoke run: the error says what to add."""
    assert main(["train", "maskgit", "fsq_speech_voices", "smoke_maskgit", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "data.tokenizer=speech-fsq_smoke: the smoke overlay" in err and "add data.tokenizer=speech-fsq" in err
