"""One data path: in-memory tensors (MaskGIT's tokens, UViM's pairs and codes) batched by ``StepLoader`` over
``TensorItems`` give exactly the batches the stages took by indexing with ``StepBatchSampler`` before, bit for
bit, for every seed, global batch, rank / world size and step, after a resume too, with no draw from torch's RNG."""

from __future__ import annotations

import itertools

import pytest
import torch

from fsq.data.datasets import MemoryItems
from fsq.data.images import ImageSet
from fsq.data.loader import StepLoader
from fsq.data.sampler import StepBatchSampler
from fsq.data.tensors import TensorItems
from fsq.data.transforms import ItemTransform

SEEDS = (0, 3, 1234)
SIZES = (37, 64)  # 37: epochs end inside a batch
BATCHES = ((1, (1,)), (6, (1, 2, 3)), (16, (1, 2, 4)))  # (global batch, world sizes it divides by)
STEPS = 12


def _cases():
    for seed, n, (batch, worlds) in itertools.product(SEEDS, SIZES, BATCHES):
        for world in worlds:
            for rank in range(world):
                yield seed, n, batch, rank, world


def _data(n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return {
        "tokens": torch.randint(1000, (n, 7, 7), generator=g),  # int64 token grids
        "labels": torch.randint(10, (n,), generator=g),
        "image": torch.rand(n, 3, 16, 16, generator=g),  # float32
        "target": torch.randint(255, (n, 1, 16, 16), generator=g, dtype=torch.uint8),
        "codes": torch.randint(64, (n, 4), generator=g, dtype=torch.int32),
    }


def _loader(items: TensorItems, seed: int, batch: int, rank: int, world: int) -> StepLoader:
    return StepLoader(
        items, ItemTransform("none"), global_batch=batch, seed=seed, stop=STEPS, rank=rank, world_size=world
    )


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize(("seed", "n", "batch", "rank", "world"), list(_cases()))
def test_token_batches_equal_the_sampler_indexing(seed, n, batch, rank, world):
    """MaskGIT: ``tokens[index]`` and ``labels[index]`` with ``index = sampler.indices(step)``, as before."""
    data = _data(n)
    tokens, labels = data["tokens"], data["labels"]
    sampler = StepBatchSampler(n, batch, seed=seed, rank=rank, world_size=world)
    loader = _loader(TensorItems(tokens, labels, source="tokens"), seed, batch, rank, world)
    unlabelled = _loader(TensorItems(tokens, source="tokens"), seed, batch, rank, world)
    resumed = _loader(TensorItems(tokens, labels, source="tokens"), seed, batch, rank, world)
    for step in range(STEPS):
        index = sampler.indices(step)
        rng = torch.get_rng_state()
        grids, grid_labels = loader.batch(step)
        assert torch.equal(rng, torch.get_rng_state())  # the training step's random numbers do not move
        assert _same(grids, tokens[index]) and _same(grid_labels, labels[index])
        assert _same(grids.flatten(1), tokens[index].flatten(1))
        assert _same(unlabelled.batch(step)[1], torch.full_like(index, -1))
        if step >= STEPS // 2:  # a loader built at a middle step (a resumed run) serves the same batches
            again, again_labels = resumed.batch(step)
            assert _same(again, grids) and _same(again_labels, grid_labels)


@pytest.mark.parametrize(("seed", "n", "batch", "rank", "world"), list(_cases()))
def test_dict_batches_equal_the_sampler_indexing(seed, n, batch, rank, world):
    """UViM: ``{k: v[index]}`` of the pairs (oracle) and, beside them, ``codes[index]`` (language model)."""
    data = _data(n)
    pairs = {"image": data["image"], "target": data["target"]}
    sampler = StepBatchSampler(n, batch, seed=seed, rank=rank, world_size=world)
    oracle = _loader(TensorItems(pairs, source="pairs"), seed, batch, rank, world)
    lm = _loader(TensorItems({**pairs, "codes": data["codes"]}, source="pairs"), seed, batch, rank, world)
    for step in [*range(STEPS // 2, STEPS), *range(STEPS)]:  # resume in the middle, then from scratch
        index = sampler.indices(step)
        rows = oracle.batch(step)[0]
        assert list(rows) == list(pairs)  # same keys, same order
        assert all(_same(rows[k], v[index]) for k, v in pairs.items())
        with_codes = lm.batch(step)[0]
        assert _same(with_codes.pop("codes"), data["codes"][index])
        assert list(with_codes) == list(pairs) and all(_same(with_codes[k], v[index]) for k, v in pairs.items())


def test_ranks_together_give_the_global_batch():
    data = _data(37)["tokens"]
    whole = _loader(TensorItems(data, source="tokens"), 5, 6, 0, 1)
    parts = [_loader(TensorItems(data, source="tokens"), 5, 6, r, 3) for r in range(3)]
    for step in range(STEPS):
        merged = torch.stack([p.batch(step)[0] for p in parts], 1).flatten(0, 1)
        assert torch.equal(merged, whole.batch(step)[0])


def test_image_batches_unchanged():
    """The tokenizer's in-memory path (``MemoryItems``) still gives ``images[index]`` and ``labels[index]`` (or -1)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(256, (37, 1, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.randint(10, (37,), generator=g)
    for lab in (labels, None):
        items = MemoryItems(ImageSet(images, lab, None, "mnist", "train"))
        loader = StepLoader(items, ItemTransform("none"), global_batch=6, seed=2, stop=STEPS, rank=1, world_size=2)
        sampler = StepBatchSampler(37, 6, seed=2, rank=1, world_size=2)
        for step in range(STEPS):
            index = sampler.indices(step)
            got, got_labels = loader.batch(step)
            assert _same(got, images[index])
            assert _same(got_labels, lab[index] if lab is not None else torch.full_like(index, -1))


def test_bad_tensor_items_are_named():
    with pytest.raises(ValueError, match=r"tokens: every tensor needs the same number of rows.*\(5, 2\).*\(4,\)"):
        TensorItems({"a": torch.zeros(5, 2), "b": torch.zeros(4)}, source="tokens")
    with pytest.raises(ValueError, match=r"pairs: labels must be \(5,\), one per row, got \(4,\)"):
        TensorItems(torch.zeros(5, 2), torch.zeros(4, dtype=torch.long), source="pairs")
    with pytest.raises(ValueError, match="no tensors"):
        TensorItems({}, source="pairs")
    with pytest.raises(ValueError, match="the training set is empty"):
        _loader(TensorItems(torch.zeros(0, 3), source="tokens"), 0, 2, 0, 1)
