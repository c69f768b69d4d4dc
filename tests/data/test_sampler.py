"""StepBatchSampler: batches are a pure function of (seed, step); ranks split the global batch exactly."""

from __future__ import annotations

import pytest
import torch

from fsq.data.sampler import StepBatchSampler
from fsq.optim import lr_at


def test_each_epoch_is_a_permutation_and_steps_are_reproducible():
    sampler = StepBatchSampler(10, 4, seed=3)
    stream = torch.cat([sampler.global_indices(s) for s in range(5)])  # 20 items = 2 epochs
    assert sorted(stream[:10].tolist()) == list(range(10)) and sorted(stream[10:].tolist()) == list(range(10))
    fresh = StepBatchSampler(10, 4, seed=3)
    assert torch.equal(fresh.global_indices(3), sampler.global_indices(3))  # no hidden state
    assert not torch.equal(StepBatchSampler(10, 4, seed=4).global_indices(0), sampler.global_indices(0))


def test_ranks_partition_the_global_batch():
    full = StepBatchSampler(100, 8, seed=0)
    parts = [StepBatchSampler(100, 8, seed=0, rank=r, world_size=2) for r in range(2)]
    for step in range(5):
        merged = torch.stack([p.indices(step) for p in parts], 1).reshape(-1)
        assert torch.equal(merged, full.global_indices(step))


def test_invalid_sampler_arguments():
    with pytest.raises(ValueError, match="multiple of world size"):
        StepBatchSampler(10, 3, seed=0, world_size=2)
    with pytest.raises(ValueError, match="empty"):
        StepBatchSampler(0, 4, seed=0)


def test_lr_schedule():
    assert lr_at(0, base_lr=1.0, total_steps=100, warmup_steps=10) == pytest.approx(0.1)
    assert lr_at(10, base_lr=1.0, total_steps=100, warmup_steps=10) == pytest.approx(1.0)
    assert lr_at(100, base_lr=1.0, total_steps=100, warmup_steps=10) == pytest.approx(0.0)
    assert lr_at(50, base_lr=2.0, total_steps=100, schedule="constant") == 2.0
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(0, base_lr=1.0, total_steps=10, schedule="linear")
