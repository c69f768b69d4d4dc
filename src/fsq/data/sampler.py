"""A resumable distributed batch sampler: the batch of any step is a pure function of (seed, step).

The training stream is the concatenation of epoch permutations (epoch ``e`` shuffled by ``seed + e``); step ``s``
takes the global batch ``stream[s*B : (s+1)*B]`` and rank ``r`` of ``W`` takes every W-th item of it, like
``torch.utils.data.DistributedSampler`` but addressed by step, so a resumed run sees exactly the batches an
uninterrupted run would have seen, and W processes together see the same global batch as one.
"""

from __future__ import annotations

import torch


class StepBatchSampler:
    def __init__(self, num_items: int, global_batch: int, *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if num_items < 1:
            raise ValueError("the training set is empty")
        if global_batch < 1 or global_batch % world_size:
            raise ValueError(f"global batch {global_batch} must be a positive multiple of world size {world_size}")
        self.num_items, self.global_batch = num_items, global_batch
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._cache: dict[int, torch.Tensor] = {}

    def _epoch(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.clear()
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cache[epoch] = torch.randperm(self.num_items, generator=generator)
        return self._cache[epoch]

    def global_indices(self, step: int) -> torch.Tensor:
        """Dataset indices of the whole batch of ``step`` (all ranks)."""
        positions = torch.arange(step * self.global_batch, (step + 1) * self.global_batch)
        epochs, offsets = positions // self.num_items, positions % self.num_items
        out = torch.empty_like(positions)
        for epoch in torch.unique(epochs).tolist():
            mask = epochs == epoch
            out[mask] = self._epoch(epoch)[offsets[mask]]
        return out

    def indices(self, step: int) -> torch.Tensor:
        """This rank's part of the batch of ``step``."""
        return self.global_indices(step)[self.rank :: self.world_size]
