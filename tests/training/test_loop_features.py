"""The loop's features: gradient accumulation (k micro-batches == one batch k times the size), torch.compile on
the CPU, EMA warm-up (auto/true/false and the warning for a too-short run), fp16 refused on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.checkpoint import load_safetensors
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, load_images
from fsq.optim import ModelEMA
from fsq.training.loop import ema_warmup_on

ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"


def _cfg(*overrides: str) -> TokenizerExperiment:
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    base = ["train.threads=1", "train.eval_at_end=false"]
    return load_config(TokenizerExperiment, [ROOT / "configs/tokenizer/fsq_mnist.yaml", SMOKE], [*base, *overrides])


def _weights(run: Path, step: int = 4) -> dict[str, torch.Tensor]:
    return load_safetensors(run / "checkpoints" / f"step_{step:06d}" / "model.safetensors")


@pytest.mark.integration
def test_accumulating_micro_batches_equals_one_big_batch(tmp_path):
    app.train(_cfg("train.batch_size=16"), tmp_path / "one")
    app.train(_cfg("train.batch_size=16", "train.accumulate=4"), tmp_path / "four")
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "four")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    with pytest.raises(ValueError, match="multiple of ranks x train.accumulate"):
        app.train(_cfg("train.batch_size=16", "train.accumulate=3"), tmp_path / "three")


@pytest.mark.integration
def test_compiled_model_trains_like_eager_on_cpu(tmp_path):
    app.train(_cfg("train.steps=2", "train.checkpoint_every=2"), tmp_path / "eager")
    app.train(_cfg("train.steps=2", "train.checkpoint_every=2", "train.compile=true"), tmp_path / "compiled")
    a, b = _weights(tmp_path / "eager", 2), _weights(tmp_path / "compiled", 2)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)


def test_ema_warmup_decay_and_auto_rule():
    ema = ModelEMA(torch.nn.Linear(2, 2), 0.999)
    assert ema.decay_at(None) == 0.999 and ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(10**6) == 0.999
    assert ema_warmup_on(None, 0.999, 1000, "x")  # short run: on
    assert not ema_warmup_on(None, 0.99, 1300, "x")  # the demo configs: off, their numbers unchanged
    with pytest.warns(UserWarning, match="still hold"):
        assert not ema_warmup_on(False, 0.999, 300, "x")


def test_ema_warmup_follows_the_weights_in_a_short_run():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():  # both averages start at 0 (a random initial weight near 1 made this test flaky)
        model.weight.fill_(0.0)
    plain, warm = ModelEMA(model, 0.999), ModelEMA(model, 0.999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for n in range(50):
        plain.update(model)
        warm.update(model, n)
    assert warm.shadow.weight.item() > 0.9 > plain.shadow.weight.item()


def test_fp16_is_refused_on_the_cpu(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        app.train(_cfg("train.precision=fp16", "train.device=cpu"), tmp_path)
