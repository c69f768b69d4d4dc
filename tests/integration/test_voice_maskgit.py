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


@pytest.fixture(scope="module")
def speech_tokenizer(speech_cache, tmp_path_factory) -> Path:
    """A 1-D tokenizer of 1,024-sample crops of synthetic speech (64 tokens), trained 3 steps."""
    model = load_config(TokenizerExperiment, [TONES]).model
    overrides = [
        f"model.channel_multipliers={model.channel_multipliers}",
        "model.num_groups=4",
        "model.downsample=[[4],[4]]",
        "train.threads=1",
        "train.steps=3",
        "train.eval_at_end=false",
        "data.source=speech",
        f"data.cache_dir={speech_cache}",
        "data.sample_rate=16000",
        f"data.length={LENGTH}",
    ]
    run = tmp_path_factory.mktemp("speech_tokenizer")
    app.train(load_config(TokenizerExperiment, [TONES, SMOKE], overrides), run)
    return run


def test_voice_ids_flow_through_fsq_tokenize(speech_tokenizer, tmp_path):
    assert main(["tokenize", str(speech_tokenizer), "--split", "train", "--out", str(tmp_path / "tokens")]) == 0
    tokens, labels, manifest = load_tokens(tmp_path / "tokens")
    assert manifest["source"] == "speech" and manifest["has_labels"] and manifest["signal"] == "audio"
    assert manifest["class_names"] == [v.name for v in voices()] and manifest["rate"] == 16000
    clips = open_split(read_run_config(speech_tokenizer), "train", None)
    assert labels is not None and torch.equal(labels, clips.labels) and tokens.shape == (len(clips), TOKENS)
    assert set(labels.tolist()) == {v.id for v in split_voices("train")}  # the training voices alone


def test_voice_conditioned_maskgit_smoke(speech_tokenizer, tmp_path):
    run, out = tmp_path / "run", tmp_path / "samples"
    overrides = [f"data.tokenizer={speech_tokenizer}", "train.threads=1", "eval.num_samples=56", "eval.batch_size=56"]
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
