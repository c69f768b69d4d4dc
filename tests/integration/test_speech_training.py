"""A 1-D tokenizer trains a few steps on ``data.source=speech`` (synthetic speech): random crops of the training
voices, evaluated on the held-out test voices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fsq import app
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.stages.signal_data import signal_shape

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"


def _cfg(cache: Path, *overrides: str) -> TokenizerExperiment:
    model = load_config(TokenizerExperiment, [CONFIG]).model
    speech = ["data.source=speech", f"data.cache_dir={cache}", "data.sample_rate=16000", "data.length=2048"]
    keep = [f"model.channel_multipliers={model.channel_multipliers}", "model.num_groups=4", "train.threads=1"]
    return load_config(TokenizerExperiment, [CONFIG, SMOKE], [*keep, *speech, *overrides])


def test_a_1d_tokenizer_trains_on_synthetic_speech(speech_cache, tmp_path):
    cfg = _cfg(speech_cache, "train.steps=3", "data.eval_limit=8", "eval.batch_size=8")
    assert signal_shape(cfg) == [2048]
    app.train(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("step") == 3 for r in records)
    results = json.loads((tmp_path / "eval" / "step_000003.json").read_text())
    assert results["num_samples"] == 8 and results["token_grid"] == [256] and np.isfinite(results["snr_db"])


def test_speech_needs_a_time_crop(speech_cache):
    with pytest.raises(ConfigError, match=r"data.source='speech': its clips differ in length; set data.length"):
        signal_shape(_cfg(speech_cache, "data.length=null"))
