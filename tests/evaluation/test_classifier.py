"""The class judge: shapes, training on a separable toy problem, determinism, accuracy, the cache, real MNIST.

The ``integration`` test trains the default classifier on MNIST (about a minute on one CPU thread) and is skipped
with the how-to when MNIST is not prepared in the default cache.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from fsq.data import SourceUnavailable, list_sources, load_images
from fsq.evaluation.classifier import (
    DEFAULT_STEPS,
    ImageClassifier,
    _cache_stem,
    accuracy,
    load_or_train_classifier,
    penultimate_features,
    predict,
    random_shift,
    train_classifier,
)


def _quadrants(n: int, size: int, seed: int, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 noise images whose class (0-3) is the quadrant that is bright."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=generator)
    images = torch.randint(0, 60, (n, channels, size, size), generator=generator, dtype=torch.uint8)
    half = size // 2
    for i, label in enumerate(labels.tolist()):
        top, left = (label // 2) * half, (label % 2) * half
        images[i, :, top : top + half, left : left + half] += 180
    return images, labels


# ---- the model ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "classes", "shape"), [(1, 10, (28, 28)), (3, 7, (16, 16)), (3, 2, (8, 8)), (1, 3, (9, 13))]
)
def test_model_shapes(channels, classes, shape):
    model = ImageClassifier(channels, classes).eval()
    logits = model(torch.rand(5, channels, *shape))
    assert logits.shape == (5, classes) and logits.dtype == torch.float32
    assert ImageClassifier(channels, classes, width=32).eval()(torch.rand(2, channels, *shape)).shape == (2, classes)


def test_penultimate_features_feed_the_head_and_separate_classes():
    from fsq.metrics.image import fid_from_features

    images, labels = _quadrants(256, 16, seed=0)
    model = train_classifier(images, labels, num_classes=4, steps=60, batch_size=32, seed=0)
    x = images.float().div(255)
    features = penultimate_features(model, x, batch_size=100)
    assert features.shape == (256, 36 * model.width) and not model.training
    assert torch.allclose(model.head(features), model(x), atol=1e-5)  # the head's input (dropout off in eval)
    same = fid_from_features(features[labels < 2][::2], features[labels < 2][1::2])
    other = fid_from_features(features[labels < 2], features[labels >= 2])
    assert 0 <= same < other  # the judge Frechet distance sees the class mix
    with pytest.raises(ValueError, match="float images"):
        penultimate_features(model, images)


def test_model_rejects_bad_inputs():
    model = ImageClassifier(1, 10)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="at least 8x8"):
        model(torch.rand(2, 1, 7, 28))
    with pytest.raises(ValueError, match="in_channels"):
        ImageClassifier(2, 10)


def test_random_shift_is_a_zero_filled_translation():
    images = torch.zeros(64, 2, 9, 9)
    images[:, :, 3:6, 3:6] = torch.rand(64, 2, 3, 3) + 0.5  # content fits inside any +-2 px shift
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    seen = set()
    for original, out in zip(images, shifted):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out, torch.roll(original, (dy, dx), dims=(1, 2)))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # per-image offsets, not one for the batch
    assert torch.equal(random_shift(images, 0, torch.Generator()), images)


# ---- training, prediction, accuracy -------------------------------------------------------------------------------


def test_learns_bright_quadrant():
    images, labels = _quadrants(512, 16, seed=0, channels=3)
    model = train_classifier(images, labels, num_classes=4, steps=40, batch_size=64, lr=3e-3, seed=0, device="cpu")
    assert not model.training
    test_images, test_labels = _quadrants(256, 16, seed=1, channels=3)
    assert accuracy(model, test_images, test_labels) >= 0.99


def test_same_seed_same_weights_and_global_rng_untouched():
    images, labels = _quadrants(200, 12, seed=0)
    kwargs = dict(num_classes=4, steps=6, batch_size=32, lr=1e-3, device="cpu")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = train_classifier(images, labels, seed=5, **kwargs).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    b = train_classifier(images, labels, seed=5, **kwargs).state_dict()
    c = train_classifier(images, labels, seed=6, **kwargs).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with torch.no_grad():  # an evaluation that trains its judge on a first use calls it under no_grad
        d = train_classifier(images, labels, seed=5, **kwargs).state_dict()
    assert all(torch.equal(a[k], d[k]) for k in a)


def test_train_rejects_bad_labels():
    images, labels = _quadrants(8, 8, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        train_classifier(images, labels + 1, num_classes=3, steps=1, batch_size=4, lr=1e-3, seed=0, device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        train_classifier(images.float(), labels, num_classes=4, steps=1, batch_size=4, lr=1e-3, seed=0, device="cpu")


def _constant_model(label: int, classes: int = 3) -> ImageClassifier:
    """A classifier that always answers ``label``: zero head weights, bias one-hot."""
    model = ImageClassifier(1, classes)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[label] = 1.0
    return model


def test_accuracy_and_predict_hand_made():
    model = _constant_model(2).train()
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([2, 0, 2, 1, 2])
    assert accuracy(model, images, labels) == pytest.approx(3 / 5)
    assert accuracy(model, images, labels, batch_size=2) == pytest.approx(3 / 5)  # batches of 2, 2, 1
    predicted = predict(model, images.float() / 255, batch_size=2)
    assert predicted.dtype == torch.int64 and predicted.tolist() == [2, 2, 2, 2, 2]
    assert model.training  # the caller's mode is restored
    assert predict(model, torch.zeros(0, 1, 8, 8)).shape == (0,)
    with pytest.raises(ValueError, match="float images"):
        predict(model, images)


# ---- load_or_train_classifier on tiny image folders ---------------------------------------------------------------


def _write_folder(root, with_classes: bool) -> None:
    """``root/{train,test}/`` of 12x12 PNGs: class ``bright`` or ``dark`` (sub-folders only ``with_classes``)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 6)):
        for name, level in (("bright", 200), ("dark", 30)):
            folder = root / split / name if with_classes else root / split
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.clip(level + rng.integers(-20, 20, (12, 12)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}_{i}.png")


def test_unlabelled_source_is_a_clear_error(tmp_path):
    _write_folder(tmp_path / "flat", with_classes=False)
    with pytest.raises(ValueError, match="no class labels"):
        load_or_train_classifier(str(tmp_path / "flat"), 12, cache_dir=tmp_path / "cache", steps=2)
    assert not (tmp_path / "cache" / "classifiers").exists()


def test_trains_caches_and_loads(tmp_path):
    source = str(tmp_path / "shades")
    _write_folder(tmp_path / "shades", with_classes=True)
    cache = tmp_path / "cache"
    model, info = load_or_train_classifier(source, 12, channels=1, cache_dir=cache, steps=30, seed=3)
    assert info["cached"] is False and info["test_accuracy"] == 1.0
    assert info["num_test"] == 12 and info["num_classes"] == 2 and info["class_names"] == ["bright", "dark"]
    assert info["source"] == source and info["image_size"] == 12 and info["channels"] == 1
    weights = sorted((cache / "classifiers").glob("shades-*_12px_c1_s30_seed3.safetensors"))
    assert len(weights) == 1
    record = json.loads(weights[0].with_suffix(".json").read_text())
    assert record["test_accuracy"] == 1.0 and record["torch_version"] == torch.__version__ and record["seed"] == 3

    again, info2 = load_or_train_classifier(source, 12, channels=1, cache_dir=cache, steps=30, seed=3)
    assert info2["cached"] is True and info2["test_accuracy"] == info["test_accuracy"] and not again.training
    state, state2 = model.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], state2[k]) for k in state)
    # a folder named by a bare relative path is keyed by its resolved path (two "shades" folders: two judges)
    assert _cache_stem("shades") != _cache_stem(source) and _cache_stem("mnist") == "mnist"
    assert _cache_stem("shades").startswith("shades-")
    # another seed or channel count is another cache entry
    _, info3 = load_or_train_classifier(source, 12, channels=3, cache_dir=cache, steps=30, seed=3)
    assert info3["cached"] is False and info3["channels"] == 3


# ---- real MNIST ---------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_mnist_judge_is_accurate_and_cached(tmp_path):
    status = {s.name: s for s in list_sources()}["mnist"]
    try:
        load_images("mnist", "test", limit=1)  # a missing source raises SourceUnavailable (a failure under CI)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    (tmp_path / "mnist").symlink_to(status.location, target_is_directory=True)  # data from the default cache

    start = time.perf_counter()
    model, info = load_or_train_classifier("mnist", 28, cache_dir=tmp_path, steps=DEFAULT_STEPS)
    seconds = time.perf_counter() - start
    assert info["cached"] is False and info["num_test"] == 10_000 and info["channels"] == 1
    assert info["test_accuracy"] >= 0.98, info
    assert (tmp_path / "classifiers" / f"mnist_28px_c1_s{DEFAULT_STEPS}_seed0.safetensors").is_file()
    print(f"MNIST judge: {info['test_accuracy']:.4f} test accuracy, trained in {seconds:.1f} s")

    again, info2 = load_or_train_classifier("mnist", 28, cache_dir=tmp_path, steps=DEFAULT_STEPS)
    assert info2["cached"] is True and info2["test_accuracy"] == info["test_accuracy"]
    test = load_images("mnist", "test", cache_dir=tmp_path, limit=2000)
    images = test.images.float() / 255
    assert torch.equal(predict(model, images), predict(again, images))
