"""Moving MNIST generated from the real MNIST digits: determinism, split separation, range, labels, bounces, the
step loader (workers, exact resume) and the tokenizer stage's data checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq.data import SourceUnavailable
from fsq.data.loader import StepLoader
from fsq.data.moving_mnist import (
    STEP,
    clip_plan,
    digit_pool,
    digit_size,
    moving_mnist_items,
    render,
    trajectory,
)
from fsq.data.signals import VIDEO, SignalTransform
from fsq.data.synthetic_signals import generated_items


def _pool(split: str, size: int = 64):
    try:
        return digit_pool(split, size)
    except SourceUnavailable as error:
        pytest.skip(str(error))


def _items(split: str, **kwargs):
    _pool(split, kwargs.get("image_size", 64))
    return moving_mnist_items(split, **kwargs)


def test_clips_are_deterministic_from_seed_and_index():
    a = _items("train", seed=3, count=6)
    assert a.clips.shape == (6, 1, 20, 64, 64) and a.clips.dtype == torch.uint8  # the benchmark's default
    assert a.kind is VIDEO and a.rate == 10 and a.has_labels and a.class_names == [str(k) for k in range(10)]
    b = _items("train", seed=3, count=3)
    assert torch.equal(a.clips[:3], b.clips) and torch.equal(a.labels[:3], b.labels)  # a prefix of a longer split
    assert not torch.equal(_items("train", seed=4, count=1).clips[0], a.clips[0])  # another seed, another clip
    assert (a.clips[:, :, 1:] != a.clips[:, :, :-1]).any()  # the digits move
    assert a.clips.max() == 255 and a.clips.min() == 0  # uint8 over the whole range: real MNIST strokes, black


def test_sizes_and_frame_counts_are_configurable():
    small = _items("val", seed=0, count=2, image_size=32, frames=9)
    assert small.clips.shape == (2, 1, 9, 32, 32)
    assert digit_size(64) == 28 and digit_size(32) == 14 and digit_size(16) == 7
    one = _items("val", seed=0, count=2, image_size=32, num_digits=1)
    assert one.clips.shape == (2, 1, 20, 32, 32)
    with pytest.raises(ValueError, match="splits train, val, test"):
        moving_mnist_items("all", seed=0, count=1)
    with pytest.raises(ValueError, match="num_digits=0"):
        moving_mnist_items("train", seed=0, count=1, num_digits=0)


def test_labels_are_the_class_of_the_first_digit():
    pool, classes = _pool("test")
    items = moving_mnist_items("test", seed=1, count=40)
    for i in range(40):
        plan = clip_plan(1, "test", i, len(pool), 20, 64, 2)
        assert items.label(i) == classes[plan.digits[0]]
        assert np.array_equal(items.clips[i, 0].numpy(), render(plan, pool, 64))
    assert len(set(items.labels.tolist())) >= 8  # the classes vary


@pytest.mark.parametrize("split", ["test", "val"])
def test_held_out_clips_show_only_digits_of_their_own_split(split):
    """One-digit clips: the first frame's square at the digit's corner is exactly a digit of the clip's split of
    MNIST, never a training digit."""
    own, _ = _pool(split)
    train, _ = _pool("train")
    train_bytes = {image.tobytes() for image in train}
    own_bytes = {image.tobytes() for image in own}
    items = moving_mnist_items(split, seed=0, count=60, num_digits=1)
    for i in range(60):
        (y, x) = clip_plan(0, split, i, len(own), 20, 64, 1).corners[0, 0]
        patch = items.clips[i, 0, 0, y : y + 28, x : x + 28].numpy().tobytes()
        assert patch in own_bytes and patch not in train_bytes
    # and the split's clips differ from the training split's at the same seed and index
    assert not torch.equal(items.clips[0], moving_mnist_items("train", seed=0, count=1, num_digits=1).clips[0])


def test_a_bouncing_digit_stays_inside_the_frame():
    rng = np.random.default_rng(0)
    bounced = 0
    for _ in range(200):
        path = trajectory(rng, 40)
        assert path.min() >= 0.0 and path.max() <= 1.0
        steps = np.abs(np.diff(path, axis=0))
        assert (steps <= STEP + 1e-12).all()  # never a jump: at most one step per axis per frame
        bounced += int((np.diff(np.sign(np.diff(path, axis=0)), axis=0) != 0).any())
    assert bounced > 150  # in 40 frames most digits hit a border and turn back
    # a full white digit keeps all its pixels in every frame: nothing is cut at the border
    square = np.full((1, 14, 14), 255, dtype=np.uint8)
    for i in range(50):
        plan = clip_plan(0, "train", i, 1, 40, 32, 1)
        assert ((render(plan, square, 32) == 255).sum(axis=(1, 2)) == 14 * 14).all()


@pytest.mark.parametrize("workers", [0, 2])
def test_step_loader_serves_moving_mnist_with_workers_and_exact_resume(workers):
    _pool("train", 32)
    items = generated_items("moving_mnist", "train", seed=0, count=16, image_size=32, length=9)
    assert items.clips.shape == (16, 1, 20, 32, 32)  # a shorter crop: clips keep the benchmark's 20 frames
    transform = SignalTransform("random", VIDEO, length=9)
    loader = StepLoader(items, transform, global_batch=4, seed=1, stop=4, workers=workers)
    batches = [loader.batch(s) for s in range(4)]
    loader.close()
    assert batches[0][0].shape == (4, 1, 9, 32, 32) and batches[0][0].dtype == torch.uint8
    assert all(((labels >= 0) & (labels <= 9)).all() for _, labels in batches)  # labels flow with the clips
    resumed = StepLoader(items, transform, global_batch=4, seed=1, stop=4, workers=workers)  # resumed at step 2
    for step in (2, 3):
        images, labels = resumed.batch(step)
        assert torch.equal(images, batches[step][0]) and torch.equal(labels, batches[step][1])
    resumed.close()
    longer = generated_items("moving_mnist", "test", seed=0, count=2, image_size=32, length=25)
    assert longer.clips.shape == (2, 1, 25, 32, 32)  # a longer crop: clips as long as it
    with pytest.raises(ValueError, match="grey"):
        generated_items("moving_mnist", "train", seed=0, count=2, channels=3)
