"""Stage II tokens of codes that are not one small index per position: residual stages and digit groups.

MaskGIT predicts one token per grid position from one vocabulary. A residual quantizer gives ``S`` indices per
position (one per stage), and a wide FSQ code has a vocabulary too large for a softmax (``speech-fsq``: 8 channels
of 5 levels, 390,625 codes a stage). A :class:`TokenLayout` turns such indices into tokens of a small vocabulary on
a grid with one more axis, and back, exactly:

- ``stages``: the leading stages of a residual quantizer kept (the lower bitrates one model serves with quantize
  dropout); each becomes a slot of the new axis, as SoundStorm lays out residual codes.
- ``groups``: each FSQ index written as ``groups`` digits of ``group_size`` values, one per block of consecutive
  channels whose level products are equal (``[5] * 8`` in 2 groups: two tokens of 625 values, channels 0-3 and
  4-7). An FSQ index is ``sum_i level_i * basis_i`` with channel 0 least significant (``basis_i = prod(levels[:i])``),
  so block ``j``'s digit is ``(index // group_size**j) % group_size``: the token of a block is the FSQ index of its
  channels alone, and the MaskGIT predicts blocks of the code, not arbitrary pieces of an integer.

Tokens are ``(N, *grid, stages * groups)``, stage-major (stage 0's groups first); a layout of one token per position
keeps the grid ``(N, *grid)``. :meth:`TokenLayout.to_indices` inverts :meth:`TokenLayout.to_tokens`.
:func:`layout_for` builds and checks a layout from a quantizer's levels, codebook size and stages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TokenLayout:
    """How a tokenizer's indices become Stage II tokens (see the module docstring).

    Attributes:
        stages: the leading stages kept (1 for a quantizer without stages).
        groups: digits each index is written as (1: the index itself).
        group_size: the values of one digit: the token vocabulary (the codebook size when ``groups == 1``).
        residual: whether the tokenizer's indices carry a trailing stage axis ``(N, *grid, S)``.
    """

    stages: int = 1
    groups: int = 1
    group_size: int = 2
    residual: bool = False

    def __post_init__(self) -> None:
        if self.stages < 1 or self.groups < 1 or self.group_size < 2:
            raise ValueError(f"a token layout needs stages, groups >= 1 and group_size >= 2, got {self}")
        if self.stages > 1 and not self.residual:
            raise ValueError(f"stages={self.stages}: only a residual quantizer's indices have stages")

    @property
    def slots(self) -> int:
        """Tokens per grid position: ``stages * groups`` (1: no extra axis)."""
        return self.stages * self.groups

    @property
    def vocabulary(self) -> int:
        """Values a token takes: ``group_size``."""
        return self.group_size

    def grid(self, tokenizer_grid: Sequence[int]) -> tuple[int, ...]:
        """The token grid of a tokenizer grid: one more axis of :attr:`slots` when there is more than one."""
        return (*tokenizer_grid, self.slots) if self.slots > 1 else tuple(tokenizer_grid)

    def to_tokens(self, indices: torch.Tensor) -> torch.Tensor:
        """Tokens ``(N, *grid[, slots])`` int64 of a tokenizer's indices ``(N, *grid)`` (``(N, *grid, S)`` when
        residual, ``S >= stages``)."""
        indices = indices.long()
        if self.residual:
            if indices.ndim < 2 or indices.shape[-1] < self.stages:
                raise ValueError(
                    f"expected residual indices (N, *grid, S) with S >= {self.stages} stages, "
                    f"got {tuple(indices.shape)}"
                )
            indices = indices[..., : self.stages]
        else:
            indices = indices.unsqueeze(-1)
        top = self.group_size**self.groups
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= top):
            raise ValueError(
                f"indices must lie in [0, {top - 1}] for this layout, got [{indices.min()}, {indices.max()}]"
            )
        powers = self.group_size ** torch.arange(self.groups, device=indices.device)
        digits = torch.div(indices.unsqueeze(-1), powers, rounding_mode="floor") % self.group_size
        tokens = digits.flatten(-2)  # (..., stages * groups), stage-major
        return tokens if self.slots > 1 else tokens.squeeze(-1)

    def to_indices(self, tokens: torch.Tensor) -> torch.Tensor:
        """The tokenizer's indices (``(N, *grid)``, or ``(N, *grid, stages)`` when residual) of tokens
        ``(N, *grid[, slots])``: the inverse of :meth:`to_tokens`."""
        tokens = tokens.long()
        if self.slots > 1:
            if tokens.ndim < 2 or tokens.shape[-1] != self.slots:
                raise ValueError(f"expected tokens (N, *grid, {self.slots}), got {tuple(tokens.shape)}")
        else:
            tokens = tokens.unsqueeze(-1)
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.group_size):
            low, high = int(tokens.min()), int(tokens.max())
            raise ValueError(f"tokens must lie in [0, {self.group_size - 1}] for this layout, got [{low}, {high}]")
        digits = tokens.unflatten(-1, (self.stages, self.groups))
        powers = self.group_size ** torch.arange(self.groups, device=tokens.device)
        indices = (digits * powers).sum(-1)  # (..., stages)
        return indices if self.residual else indices.squeeze(-1)

    @property
    def recorded(self) -> dict[str, Any] | None:
        """What a token manifest and a MaskGIT spec record of it: None for tokens that are the indices themselves
        (no stages, no groups), else :meth:`to_dict`."""
        return None if not self.residual and self.groups == 1 else self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenLayout:
        unknown = sorted(set(data) - {"stages", "groups", "group_size", "residual"})
        if unknown:
            raise ValueError(f"unknown token layout keys {unknown}")
        return cls(**data)


def layout_for(
    codebook_size: int,
    *,
    levels: Sequence[int] | None = None,
    num_stages: int | None = None,
    stages: int | None = None,
    groups: int = 1,
    grid_rank: int = 2,
    describe: str = "this tokenizer's quantizer",
) -> TokenLayout:
    """The layout of a quantizer of ``codebook_size`` codes (per stage), FSQ ``levels`` (None: not a product of
    levels), ``num_stages`` (None: no stages) on a token grid of ``grid_rank`` axes; ``stages`` (None: all) and
    ``groups`` as :class:`TokenLayout`. A ValueError naming ``describe`` and the setting for what cannot be laid out:
    stages of a quantizer without them, groups of codes that are not a product of levels or whose levels cannot be
    cut into ``groups`` consecutive blocks of equal size, or a grid with no room for another axis (MaskGIT grids have
    at most 3)."""
    if num_stages is None and stages not in (None, 1):
        raise ValueError(f"stages={stages}: {describe} has no residual stages (one index per position)")
    if num_stages is not None and stages is not None and not 1 <= stages <= num_stages:
        raise ValueError(f"stages={stages}: {describe} has {num_stages} stages (give 1 to {num_stages})")
    kept = (num_stages or 1) if stages is None else stages
    if groups < 1:
        raise ValueError(f"groups={groups} must be at least 1")
    group_size = codebook_size
    if groups > 1:
        if levels is None:
            raise ValueError(
                f"groups={groups} writes FSQ indices as digits of channel blocks; {describe} has no levels (its codes "
                "are not a product of per-channel levels)"
            )
        group_size = _equal_blocks(list(levels), groups, describe)
    layout = TokenLayout(kept, groups, group_size, num_stages is not None)
    if layout.slots > 1 and grid_rank >= 3:
        raise ValueError(
            f"stages={kept}, groups={groups} add a token axis of {layout.slots} to a {grid_rank}-D grid: MaskGIT grids "
            "have at most 3 axes (video grids have no room; keep one token per position)"
        )
    return layout


def _equal_blocks(levels: list[int], groups: int, describe: str) -> int:
    """The level product of each of ``groups`` consecutive blocks of ``levels``, when they are all equal."""
    total = math.prod(levels)
    size = round(total ** (1 / groups))
    size = next((s for s in (size - 1, size, size + 1) if s >= 2 and s**groups == total), None)
    products, acc = [], 1
    for level in levels:
        acc *= level
        if size is not None and acc == size:
            products.append(acc)
            acc = 1
    if size is None or len(products) != groups or acc != 1:
        raise ValueError(
            f"groups={groups}: the levels {levels} of {describe} cannot be cut into {groups} consecutive channel "
            "blocks with equal level products"
        )
    return size


def layout_of(spec: Any) -> TokenLayout | None:
    """The layout a MaskGIT spec records (its ``token_layout``), or None for tokens that are the indices."""
    data = getattr(spec, "token_layout", None)
    return TokenLayout.from_dict(data) if data else None
