"""``data.speed_perturb``: checked at load, applied to audio training crops only, and trained through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsq.config import ConfigError, TokenizerExperiment, load_config

ROOT = Path(__file__).parents[2]
TONES = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"  # a few steps of a small model
SMALL = ["train.threads=1", "train.log_every=1", "data.train_limit=64", "data.eval_limit=4"]


def test_speed_perturbation_is_checked_at_load():
    cfg = load_config(TokenizerExperiment, [TONES], ["data.speed_perturb=[0.9,1.1]"])
    assert cfg.data.speed_perturb == [0.9, 1.1]
    with pytest.raises(ConfigError, match=r"data.speed_perturb must be \[lo, hi\] with 0 < lo <= hi"):
        load_config(TokenizerExperiment, [TONES], ["data.speed_perturb=[1.1,0.9]"])
    with pytest.raises(ConfigError, match=r"data.speed_perturb must be \[lo, hi\]"):
        load_config(TokenizerExperiment, [TONES], ["data.speed_perturb=[0.9]"])
    with pytest.raises(ConfigError, match="data.speed_perturb"):
        load_config(TokenizerExperiment, [TONES], ["data.speed_perturb=[0,1.1]"])
    with pytest.raises(ConfigError, match=r"data.speed_perturb=\[0.9, 1.1\] resamples audio .* model.dims=2"):
        load_config(
            TokenizerExperiment, [ROOT / "configs" / "tokenizer" / "fsq_mnist.yaml"], ["data.speed_perturb=[0.9,1.1]"]
        )


def test_only_the_training_transform_perturbs():
    from fsq.stages.signal_data import open_signal_split, signal_transform

    cfg = load_config(TokenizerExperiment, [TONES, SMOKE], [*SMALL, "data.speed_perturb=[0.9,1.1]"])
    items = open_signal_split(cfg, cfg.data.train_split, 8)
    assert signal_transform(cfg, items, train=True).speed == (0.9, 1.1)
    assert signal_transform(cfg, items, train=False).speed is None


@pytest.mark.integration
def test_a_tokenizer_trains_on_perturbed_crops(tmp_path):
    """Two steps with and without perturbation from the same seed: both train and evaluate, and the first step's
    loss differs (the batch it saw was played at other speeds)."""
    from fsq.cli import main

    losses = []
    for name, extra in (("plain", []), ("perturbed", ["data.speed_perturb=[0.8,1.2]"])):
        run = tmp_path / name
        assert main(["train", "tokenizer", str(TONES), str(SMOKE), *SMALL, *extra, "--run-dir", str(run)]) == 0
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses.append(next(r["loss"] for r in rows if r.get("step") == 1 and "loss" in r))
        assert sorted((run / "eval").glob("step_*.json"))
    assert losses[0] != pytest.approx(losses[1], rel=1e-6)
