"""Codebook statistics for any quantizer: usage, perplexity, entropy, and FSQ per-channel level histograms.

``CodebookUsage`` keeps running counts of code indices. Counts are dense (one int64 per code) up to
``dense_limit`` codes and sparse (sorted unique indices with counts) above it, so statistics work for codebooks far
beyond memory; for FSQ, per-channel level histograms come from the index digits without building the codebook.
Under ``torch.distributed`` call :meth:`CodebookUsage.all_reduce` (every rank) before reading global statistics.

Definitions (``p`` the empirical code distribution over the tokens seen):
    usage fraction = codes used at least once / codebook size
    entropy (bits/token) = -sum p log2 p;   perplexity = 2 ** entropy (the effective number of codes)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist

from fsq.quantizers.fsq import mixed_radix_basis, validate_levels

DEFAULT_DENSE_LIMIT = 2**22


@dataclass(frozen=True)
class UsageSummary:
    """Codebook statistics over the tokens counted so far."""

    codebook_size: int
    tokens: int
    codes_used: int
    usage_fraction: float
    entropy_bits: float
    perplexity: float
    max_code_fraction: float  # share of tokens taken by the most frequent code

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class CodebookUsage:
    """Running code counts and the statistics derived from them.

    Args:
        codebook_size: number of codes (per codebook; a Python int, any size).
        levels: FSQ levels, to also keep per-channel level histograms (optional).
        dense_limit: keep a dense count vector up to this many codes, sparse counts above.
        device: where counts live (default CPU).
    """

    def __init__(
        self,
        codebook_size: int,
        *,
        levels: Sequence[int] | None = None,
        dense_limit: int = DEFAULT_DENSE_LIMIT,
        device: torch.device | str = "cpu",
    ) -> None:
        if int(codebook_size) != codebook_size or codebook_size < 1:
            raise ValueError(f"codebook_size must be a positive integer, got {codebook_size!r}")
        self.codebook_size = int(codebook_size)
        self.device = torch.device(device)
        self.levels = validate_levels(levels) if levels is not None else None
        if self.levels is not None and math.prod(self.levels) != self.codebook_size:
            raise ValueError(f"prod(levels) = {math.prod(self.levels)} does not match codebook_size {codebook_size}")
        self.dense = self.codebook_size <= dense_limit
        self.reset()

    def reset(self) -> None:
        """Forget all counts."""
        if self.dense:
            self._counts = torch.zeros(self.codebook_size, dtype=torch.int64, device=self.device)
        else:
            self._ids = torch.zeros(0, dtype=torch.int64, device=self.device)
            self._counts = torch.zeros(0, dtype=torch.int64, device=self.device)
        if self.levels is not None:
            self._level_counts = [torch.zeros(level, dtype=torch.int64, device=self.device) for level in self.levels]

    @torch.no_grad()
    def update(self, indices: torch.Tensor) -> None:
        """Count ``indices`` (any shape, integer, values in ``[0, codebook_size)``; -1 entries are rejected)."""
        if indices.is_floating_point() or indices.is_complex():
            raise TypeError(f"indices must be integers, got {indices.dtype}")
        flat = indices.reshape(-1).to(device=self.device, dtype=torch.int64)
        if flat.numel() == 0:
            return
        low, high = int(flat.min()), int(flat.max())
        if low < 0 or high >= self.codebook_size:
            raise ValueError(f"indices in [{low}, {high}] fall outside the codebook [0, {self.codebook_size - 1}]")
        if self.dense:
            self._counts += torch.bincount(flat, minlength=self.codebook_size)
        else:
            ids, counts = torch.unique(flat, return_counts=True)
            self._merge_sparse(ids, counts)
        if self.levels is not None:
            for channel, (level, base) in enumerate(zip(self.levels, mixed_radix_basis(self.levels))):
                digits = torch.div(flat, base, rounding_mode="floor") % level
                self._level_counts[channel] += torch.bincount(digits, minlength=level)

    def _merge_sparse(self, ids: torch.Tensor, counts: torch.Tensor) -> None:
        all_ids = torch.cat([self._ids, ids])
        all_counts = torch.cat([self._counts, counts])
        self._ids, inverse = torch.unique(all_ids, return_inverse=True)
        self._counts = torch.zeros_like(self._ids).index_add_(0, inverse, all_counts)

    def counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(code ids, counts) of every code seen at least once, ids ascending."""
        if self.dense:
            ids = torch.nonzero(self._counts, as_tuple=True)[0]
            return ids, self._counts[ids]
        keep = self._counts > 0
        return self._ids[keep], self._counts[keep]

    def level_histograms(self) -> list[torch.Tensor]:
        """Per FSQ channel, the count of each level digit ``0 .. L_i - 1`` (needs ``levels``)."""
        if self.levels is None:
            raise ValueError("level histograms need the FSQ levels: construct CodebookUsage(..., levels=...)")
        return [counts.clone() for counts in self._level_counts]

    def summary(self) -> UsageSummary:
        """Usage, entropy and perplexity of the counts so far."""
        _, counts = self.counts()
        tokens = int(counts.sum())
        if tokens == 0:
            return UsageSummary(self.codebook_size, 0, 0, 0.0, 0.0, 0.0, 0.0)
        p = counts.double() / tokens
        entropy = float(-(p * torch.log2(p)).sum())
        return UsageSummary(
            codebook_size=self.codebook_size,
            tokens=tokens,
            codes_used=int(counts.numel()),
            usage_fraction=counts.numel() / self.codebook_size,
            entropy_bits=entropy,
            perplexity=2.0**entropy,
            max_code_fraction=float(p.max()),
        )

    @torch.no_grad()
    def all_reduce(self, group=None) -> None:
        """Sum counts over all ranks (a no-op without an initialised process group). Call on every rank."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        if self.dense:
            dist.all_reduce(self._counts, group=group)
        else:
            ids, counts = self.counts()
            sizes = [torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(dist.get_world_size(group))]
            dist.all_gather(sizes, torch.tensor([ids.numel()], device=self.device), group=group)
            longest = max(int(s) for s in sizes)
            padded = torch.full((2, longest), -1, dtype=torch.int64, device=self.device)
            padded[0, : ids.numel()], padded[1, : ids.numel()] = ids, counts
            gathered = [torch.empty_like(padded) for _ in sizes]
            dist.all_gather(gathered, padded, group=group)
            self._ids = torch.zeros(0, dtype=torch.int64, device=self.device)
            self._counts = torch.zeros(0, dtype=torch.int64, device=self.device)
            for block, size in zip(gathered, sizes):
                self._merge_sparse(block[0, : int(size)], block[1, : int(size)])
        if self.levels is not None:
            for counts in self._level_counts:
                dist.all_reduce(counts, group=group)
