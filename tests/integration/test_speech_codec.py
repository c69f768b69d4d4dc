"""The quick speech codec config (``fsq_speech``) trains a few steps on a small speech source with its own model and
recipe, evaluates on the held-out voices, and its residual tokens decode at every depth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsq import app
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
    assert results["num_samples"] == 4 and results["token_grid"] == [13]  # 4000 samples, hop 320
    model, _ = load_run(tmp_path)
    items = open_split(cfg, cfg.data.eval_split, 2)
    x = torch.stack([items.read(i)[:, :4000] for i in range(2)])
    tokens = model.tokenize(x)
    assert tokens.shape == (2, 13, cfg.quantizer.num_stages)
    for depth in range(1, cfg.quantizer.num_stages + 1):
        decoded = model.decode_indices(tokens[..., :depth])
        assert decoded.shape == x.shape and torch.isfinite(si_snr(x[:, 0], decoded[:, 0])).all()
