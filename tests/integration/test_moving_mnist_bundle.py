"""The shipped ``moving-mnist-fsq`` bundle: it loads offline by name, its card and evaluation are those of a real
run of the x2-in-time ``configs/tokenizer/fsq_moving_mnist_t2.yaml``'s earlier, longer recipe (1400 steps x 16
clips; the config now trains 1200 x 8 to stay under 10 CPU minutes) (256 held-out test clips: per-frame PSNR
31.42 dB; the issue's aim is 22 dB, and the thresholds below are the measured values rounded down, not the aim), it
decodes its own tokens of test clips back to that quality, and it encodes an image as a one-frame video."""

from __future__ import annotations

import json

import pytest
import torch

from fsq import hub
from fsq.data import SourceUnavailable
from fsq.data.moving_mnist import digit_pool, moving_mnist_items
from fsq.evaluation.signals import frame_psnr
from fsq.models.autoencoder import Tokenizer

NAME = "moving-mnist-fsq"


def test_the_bundle_is_shipped_small_with_its_card_and_measured_psnr():
    assert NAME in hub.shipped_names()
    folder = hub.shipped_root() / NAME
    assert hub.bundle_format(folder) == "fsq-tokenizer"
    card = (folder / "README.md").read_text()
    assert f"\n# {NAME}\n" in card and "## Measured" in card and "moving_mnist" in card
    results = json.loads((folder / "eval.json").read_text())
    assert results["step"] > 0 and results["source"] == "moving_mnist" and results["split"] == "test"
    assert results["step"] == 1400 and results["psnr"] >= 31.4, results["psnr"]  # measured 31.42 (aim: 22)
    assert results["naive"]["psnr"] < results["psnr"] - 5  # the naive codec at equal bits: 20.27
    assert sum(p.stat().st_size for p in folder.rglob("*")) < 10 * 2**20  # small enough for a wheel


@pytest.mark.integration
def test_the_bundle_loads_offline_and_decodes_its_own_tokens(no_network):
    tokenizer = Tokenizer.from_pretrained(NAME)
    spec = tokenizer.spec
    assert spec.dims == 3 and spec.causal
    assert spec.time_padding == "zeros" and spec.time_to_depth and spec.factorized  # its config's choices on val
    assert spec.time_init == "identity"
    frames, size = spec.input_shape[0], spec.input_shape[1]
    try:
        digit_pool("test", size)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    clips = moving_mnist_items("test", seed=0, count=64, image_size=size, frames=20).clips
    start = (20 - frames) // 2  # the evaluation's centred crop
    x = clips[:, :, start : start + frames].float().div(255)
    with torch.no_grad():
        tokens = tokenizer.tokenize(x)
        assert tokens.shape == (64, *spec.grid_shape)
        reconstruction = tokenizer.decode_indices(tokens).clamp(0, 1)
        value = frame_psnr(x, reconstruction).mean().item()  # the evaluation's per-frame PSNR
        assert value >= 31.5, value  # 64 clips: measured 31.50; the bundle's own 256-clip figure is 31.42
        image = x[:, :, :1]  # the first frame as an image: a one-frame video
        assert torch.equal(tokenizer.tokenize(image), tokens[:, :1])
        assert tokenizer.decode_indices(tokens[:, :1]).shape == (64, 1, 1, size, size)
