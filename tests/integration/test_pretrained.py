"""The shipped models load offline by name and do what their cards say.

* ``Tokenizer.from_pretrained("mnist-fsq")`` reconstructs the whole MNIST test set (10k) at >= 24 dB PSNR (the
  evaluation's measure: the mean of per-image PSNR).
* ``fsq sample mnist-maskgit-fsq`` (12 steps, no guidance) gives samples that the project's class judge
  (:mod:`fsq.evaluation.classifier`, the one MaskGIT evaluation uses, 1000 steps) calls their class >= 90% of the
  time. Measured on 500 samples (50 per class) to keep the test short; the card's number is the run's own
  evaluation on 1000 samples.

Both run with the network cut off (socket connections refused, ``HF_HUB_OFFLINE=1``): loading by name must never
reach for the hub.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fsq import hub
from fsq.cli import main
from fsq.data import SourceUnavailable, load_images
from fsq.evaluation.classifier import load_or_train_classifier, predict
from fsq.metrics.image import psnr
from fsq.models.autoencoder import Tokenizer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mnist_test():
    try:
        return load_images("mnist", "test")
    except SourceUnavailable as error:
        pytest.skip(str(error))


def test_the_shipped_models_are_bundles_with_cards():
    assert {"mnist-fsq", "mnist-maskgit-fsq"} <= set(hub.shipped_names())
    for name, kind in (("mnist-fsq", "fsq-tokenizer"), ("mnist-maskgit-fsq", "fsq-maskgit")):
        folder = hub.shipped_root() / name
        assert hub.bundle_format(folder) == kind
        card = (folder / "README.md").read_text()
        assert card.startswith(f"# {name}\n") and "## Measured" in card
        assert json.loads((folder / "eval.json").read_text())["step"] > 0
        assert sum(p.stat().st_size for p in folder.rglob("*")) < 10 * 2**20  # small enough for a wheel


def test_mnist_fsq_reconstructs_the_test_set(no_network, mnist_test):
    tokenizer = Tokenizer.from_pretrained("mnist-fsq")
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in mnist_test.images.split(1000):
            x = batch.float().div(255)
            reconstruction = tokenizer.decode_indices(tokenizer.tokenize(x)).clamp(0, 1)
            total += psnr(reconstruction, x).double().clamp(max=100.0).sum().item()
            count += x.shape[0]
    assert count == 10_000
    assert total / count >= 24.0, total / count


def test_mnist_maskgit_samples_are_their_class(no_network, mnist_test, tmp_path):
    out = tmp_path / "samples"
    assert (
        main(["sample", "mnist-maskgit-fsq", "--num", "50", "--steps", "12", "--guidance", "0", "--out", str(out)]) == 0
    )
    data = np.load(out / "samples.npz")
    assert data["images"].shape == (500, 1, 28, 28) and sorted(set(data["labels"].tolist())) == list(range(10))
    judge, record = load_or_train_classifier("mnist", 28)
    assert record["test_accuracy"] > 0.98
    predicted = predict(judge, torch.from_numpy(data["images"]).float().div(255))
    accuracy = (predicted == torch.from_numpy(data["labels"])).double().mean().item()
    assert accuracy >= 0.90, accuracy
