"""``ResidualFSQ`` and ``GroupedResidualFSQ``: drop-ins for vector-quantize-pytorch 1.32's (no einops, no einx).

Replace ``from vector_quantize_pytorch import ResidualFSQ`` with
``from fsq.compat.vector_quantize_pytorch import ResidualFSQ`` (``GroupedResidualFSQ`` alike). Same keyword-only
constructor, same ``forward(x, return_all_codes=False, rand_quantize_dropout_fixed_seed=None)`` tuples, same
``get_codes_from_indices`` / ``get_output_from_indices`` / ``codebooks``, same strict state dicts (``project_in``,
``project_out``, ``layers.i`` / ``rvqs.g.layers.i``), bit-identical outputs, indices and gradients. The stages are
this package's bit-identical :class:`~fsq.compat.finite_scalar_quantization.FSQ` drop-in, and the residual loop is
theirs, operation for operation (Algorithm 1 of SoundStream, arXiv 2107.03312):

- Stage ``i`` quantizes ``residual / scale_i`` with the symmetric grid (``preserve_symmetry=True``, always), where
  ``scale_i = L ** -i`` per channel (float32); its codes times ``scale_i`` are added to the output and subtracted
  (detached) from the residual.
- Before the stages the input goes through ``project_in`` (when ``dim != len(levels)``) and a soft clamp
  ``tanh(x / c) * c``: by default (``bound_hard_clamp=True``, whose stages clamp to [-1, 1] instead of ``tanh``)
  ``c = 1 + 1 / (L - 1)`` per channel; with ``bound_hard_clamp=False`` the ``soft_clamp_input_value`` given
  (float, list or tensor), or none.
- Quantize dropout (training mode, with gradients, ``num_quantizers > 1``): a seed
  (``rand_quantize_dropout_fixed_seed``, or one integer below 10,000 drawn from torch's RNG on the input's device
  and summed over ranks under DDP) seeds Python's ``random.Random``, whose
  ``randrange(cutoff_index, num_quantizers)`` (rounded up so that the number of stages kept is a multiple of
  ``quantize_dropout_multiple_of``) is the last stage kept; later stages give index -1 (and the indices become
  int64; int32 otherwise). ``get_codes_from_indices`` takes such indices, and fewer
  stages than ``num_quantizers`` when the module has quantize dropout, giving zero codes for them.
- ``is_channel_first``: input ``(b, d, ...)``; the output keeps that layout and the indices are ``(b, q, ...)``
  (the stage axis where the channels were). ``GroupedResidualFSQ(dim, groups, accept_image_fmap)`` splits
  channels (axis 1 with ``accept_image_fmap``, else the last) into ``groups`` ResidualFSQs and stacks their
  indices on a new leading axis; in training mode it draws one seed for all groups, with or without dropout.

Their quirks are kept on purpose (``return_all_codes`` after channel-first input reads the stage axis last, as
theirs does). Only failures differ: where theirs fails an ``assert`` this raises
:class:`~fsq.compat.finite_scalar_quantization.DropInError` (both ``AssertionError`` and ``ValueError``), and
invalid levels (fewer than 2, not integers) raise it at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from fsq.compat.finite_scalar_quantization import FSQ, DropInError
from fsq.quantizers.fsq import validate_levels

SEED_RANGE = 10_000  # quantize dropout's seed: torch.randint(0, SEED_RANGE), summed over ranks


def _is_distributed() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def maybe_sync_seed(device: torch.device) -> int:
    """One seed below 10,000 from torch's RNG on ``device``, summed over ranks under DDP (so all ranks agree)."""
    seed = torch.randint(0, SEED_RANGE, (), device=device)
    if _is_distributed():
        torch.distributed.all_reduce(seed)
    return int(seed.item())


class ResidualFSQ(nn.Module):
    """vector-quantize-pytorch 1.32's ``ResidualFSQ``, argument for argument (see the module docstring).

    Args:
        levels: levels per channel of every stage (ints >= 2).
        num_quantizers: number of stages.
        dim: input width; ``len(levels)`` by default, else linear projections in and out.
        is_channel_first: input ``(b, d, ...)`` instead of ``(b, n, d)``.
        quantize_dropout: in training mode, keep a random number of leading stages (needs ``num_quantizers > 1``).
        quantize_dropout_cutoff_index: the first stage dropout may stop at (``randrange(cutoff, num_quantizers)``).
        quantize_dropout_multiple_of: round the number of stages kept up to a multiple of this.
        soft_clamp_input_value: ``c`` of the soft clamp ``tanh(x / c) * c`` (only with ``bound_hard_clamp=False``).
        bound_hard_clamp: stages clamp to [-1, 1] instead of ``tanh``; the soft clamp is then ``1 + 1 / (L - 1)``.
        **kwargs: passed to every stage's ``FSQ`` (e.g. ``noise_dropout``, ``orthogonal_rotation``).
    """

    # buffers set in __init__ (declared here for the type checker)
    scales: torch.Tensor
    soft_clamp_input_value: torch.Tensor | None

    def __init__(
        self,
        *,
        levels: Sequence[int],
        num_quantizers: int,
        dim: int | None = None,
        is_channel_first: bool = False,
        quantize_dropout: bool = False,
        quantize_dropout_cutoff_index: int = 0,
        quantize_dropout_multiple_of: int = 1,
        soft_clamp_input_value: float | list[float] | torch.Tensor | None = None,
        bound_hard_clamp: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        try:
            checked = validate_levels(levels)
        except ValueError as error:
            raise DropInError(str(error)) from error
        codebook_dim = len(checked)
        dim = codebook_dim if dim is None else dim
        # construction order (project_in, project_out, then each stage) fixes the RNG draws: same seed, same weights
        requires_projection = codebook_dim != dim
        self.project_in: nn.Module = nn.Linear(dim, codebook_dim) if requires_projection else nn.Identity()
        self.project_out: nn.Module = nn.Linear(codebook_dim, dim) if requires_projection else nn.Identity()
        self.has_projections = requires_projection
        self.is_channel_first = is_channel_first
        self.num_quantizers = num_quantizers
        self.levels = levels
        self.layers = nn.ModuleList([])
        levels_tensor = torch.tensor(list(checked))
        scales = []
        for ind in range(num_quantizers):
            scales.append(levels_tensor.float() ** -ind)
            fsq = FSQ(
                levels=levels, dim=codebook_dim, preserve_symmetry=True, bound_hard_clamp=bound_hard_clamp, **kwargs
            )
            self.layers.append(fsq)
        if any(fsq.has_projections for fsq in self.layers):
            raise DropInError(
                "the stages of ResidualFSQ must not project (their FSQ's num_codebooks must be 1), "
                "as in vector-quantize-pytorch"
            )
        if not self.layers:
            raise DropInError(f"num_quantizers must be at least 1, got {num_quantizers!r}")
        self.codebook_size = self.layers[0].codebook_size
        self.register_buffer("scales", torch.stack(scales), persistent=False)
        self.quantize_dropout = quantize_dropout and num_quantizers > 1
        if not quantize_dropout_cutoff_index >= 0:
            raise DropInError(f"quantize_dropout_cutoff_index must be >= 0, got {quantize_dropout_cutoff_index}")
        self.quantize_dropout_cutoff_index = quantize_dropout_cutoff_index
        self.quantize_dropout_multiple_of = quantize_dropout_multiple_of
        if bound_hard_clamp:
            if soft_clamp_input_value is not None:
                raise DropInError("soft_clamp_input_value needs bound_hard_clamp=False (as in vector-quantize-pytorch)")
            soft_clamp_input_value = 1 + (1 / (levels_tensor - 1))
        if isinstance(soft_clamp_input_value, (list, float)):
            soft_clamp_input_value = torch.tensor(soft_clamp_input_value)
        self.register_buffer("soft_clamp_input_value", soft_clamp_input_value, persistent=False)

    def extra_repr(self) -> str:
        return (
            f"levels={list(self.levels)}, num_quantizers={self.num_quantizers}, "
            f"quantize_dropout={self.quantize_dropout}, is_channel_first={self.is_channel_first}"
        )

    @property
    def codebooks(self) -> torch.Tensor:
        """Every stage's implicit codebook, unscaled: (num_quantizers, codebook_size, len(levels))."""
        return torch.stack([cast(FSQ, layer).implicit_codebook for layer in self.layers], dim=0)

    def get_codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Scaled codes of every stage, (num_quantizers, b, ..., len(levels)), from indices (b, ..., q).

        Index -1 (a dropped stage) gives zero codes; fewer than ``num_quantizers`` stages are padded with -1 (only
        for a module with quantize dropout).
        """
        quantize_dim = indices.shape[-1]
        middle = indices.shape[1:-1]
        indices = indices.reshape(indices.shape[0], -1, quantize_dim)
        if quantize_dim < self.num_quantizers:
            if not self.quantize_dropout > 0.0:
                raise DropInError(
                    "quantize dropout must be greater than 0 if you wish to reconstruct from a signal with less "
                    "fine quantizations"
                )
            pad = indices.new_full((*indices.shape[:-1], self.num_quantizers - quantize_dim), -1)
            indices = torch.cat([indices, pad], dim=-1)
        elif quantize_dim > self.num_quantizers:
            raise DropInError(f"indices hold {quantize_dim} stages, the module has {self.num_quantizers}")
        mask = indices == -1
        indices = indices.masked_fill(mask, 0)  # a dummy code, masked out below
        codebooks = self.codebooks
        stage = torch.arange(self.num_quantizers, device=indices.device)[:, None, None]
        all_codes = codebooks[stage, indices.permute(2, 0, 1).long()]  # (q, b, n, d)
        all_codes = all_codes.masked_fill(mask.permute(2, 0, 1).unsqueeze(-1), 0.0)
        all_codes = all_codes * self.scales[:, None, None, :]
        return all_codes.reshape(*all_codes.shape[:2], *middle, all_codes.shape[-1])

    def get_output_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returned as ``quantized`` for these indices (channels last): summed codes, projected."""
        codes = self.get_codes_from_indices(indices)
        return self.project_out(codes.sum(dim=(0,)))

    def forward(
        self,
        x: torch.Tensor,
        return_all_codes: bool = False,
        rand_quantize_dropout_fixed_seed: int | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """``(quantized, indices)`` (plus ``all_codes`` with ``return_all_codes``); see the module docstring."""
        num_quant, multiple_of, device = self.num_quantizers, self.quantize_dropout_multiple_of, x.device
        if self.is_channel_first:
            x = x.movedim(1, -1)
            middle = x.shape[1:-1]
            x = torch.cat([x.reshape(x.shape[0], -1, x.shape[-1])], dim=1)  # a contiguous copy, as einops.pack
        x = self.project_in(x)
        if self.soft_clamp_input_value is not None:
            clamp_value = self.soft_clamp_input_value
            x = (x / clamp_value).tanh() * clamp_value
        quantized_out: torch.Tensor | float = 0.0
        residual = x
        all_indices = []
        should_quantize_dropout = self.training and self.quantize_dropout and torch.is_grad_enabled()
        if should_quantize_dropout:
            if rand_quantize_dropout_fixed_seed is None:
                rand_quantize_dropout_fixed_seed = maybe_sync_seed(device)
            rand = random.Random(rand_quantize_dropout_fixed_seed)
            dropout_index = rand.randrange(self.quantize_dropout_cutoff_index, num_quant)
            if multiple_of != 1:
                dropout_index = math.ceil((dropout_index + 1) / multiple_of) * multiple_of - 1
            null_indices = torch.full(x.shape[:2], -1.0, device=device, dtype=torch.long)
        with torch.autocast("cuda", enabled=False):
            for quantizer_index, (layer, scale) in enumerate(zip(self.layers, self.scales)):
                if should_quantize_dropout and quantizer_index > dropout_index:
                    all_indices.append(null_indices)
                    continue
                quantized, indices = layer(residual / scale)
                quantized = quantized * scale
                residual = residual - quantized.detach()
                quantized_out = quantized_out + quantized
                all_indices.append(indices)
        assert isinstance(quantized_out, torch.Tensor)  # stage 0 always runs (dropout keeps >= 1 stage)
        out: torch.Tensor = self.project_out(quantized_out)
        stacked = torch.stack(all_indices, dim=-1)
        if self.is_channel_first:
            out = out.reshape(out.shape[0], *middle, -1).movedim(-1, 1)
            stacked = stacked.reshape(stacked.shape[0], *middle, -1).movedim(-1, 1)
        if not return_all_codes:
            return out, stacked
        return out, stacked, self.get_codes_from_indices(stacked)


class GroupedResidualFSQ(nn.Module):
    """vector-quantize-pytorch 1.32's ``GroupedResidualFSQ``: ``groups`` ResidualFSQs over equal channel slices.

    Args:
        dim: input width, divisible by ``groups``.
        groups: number of ResidualFSQs, each over ``dim // groups`` channels.
        accept_image_fmap: split channels on axis 1 (``(b, d, ...)``; pass ``is_channel_first=True`` too), else on
            the last axis.
        **kwargs: passed to every :class:`ResidualFSQ` (``levels``, ``num_quantizers``, ...).

    ``forward(x, return_all_codes=False)`` returns ``(quantized, indices)`` with indices stacked on a new leading
    group axis, plus, with ``return_all_codes``, a tuple of each group's codes.
    """

    def __init__(self, *, dim: int, groups: int = 1, accept_image_fmap: bool = False, **kwargs: Any) -> None:
        super().__init__()
        self.dim = dim
        self.groups = groups
        if dim % groups != 0:
            raise DropInError(f"dim = {dim} is not divisible by groups = {groups}")
        dim_per_group = dim // groups
        self.accept_image_fmap = accept_image_fmap
        self.rvqs = nn.ModuleList([ResidualFSQ(dim=dim_per_group, **kwargs) for _ in range(groups)])
        self.codebook_size = self._groups[0].codebook_size

    @property
    def _groups(self) -> list[ResidualFSQ]:
        return [cast(ResidualFSQ, rvq) for rvq in self.rvqs]

    @property
    def codebooks(self) -> torch.Tensor:
        """(groups, num_quantizers, codebook_size, len(levels))."""
        return torch.stack(tuple(rvq.codebooks for rvq in self._groups))

    @property
    def split_dim(self) -> int:
        return 1 if self.accept_image_fmap else -1

    def get_codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Each group's :meth:`ResidualFSQ.get_codes_from_indices`, stacked: indices (groups, b, ..., q)."""
        return torch.stack(tuple(rvq.get_codes_from_indices(chunk) for rvq, chunk in zip(self._groups, indices)))

    def get_output_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Each group's output from its indices, concatenated on the split axis."""
        outputs = tuple(rvq.get_output_from_indices(chunk) for rvq, chunk in zip(self._groups, indices))
        return torch.cat(outputs, dim=self.split_dim)

    def forward(self, x: torch.Tensor, return_all_codes: bool = False) -> tuple[Any, ...]:
        """``(quantized, indices)`` (plus a tuple of each group's codes with ``return_all_codes``)."""
        if x.shape[self.split_dim] != self.dim:
            raise DropInError(f"expected {self.dim} channels on axis {self.split_dim}, got shape {tuple(x.shape)}")
        chunks = x.chunk(self.groups, dim=self.split_dim)
        seed = maybe_sync_seed(x.device) if self.training else None  # drawn in training mode, dropout or not
        out = tuple(
            rvq(chunk, return_all_codes=return_all_codes, rand_quantize_dropout_fixed_seed=seed)
            for rvq, chunk in zip(self.rvqs, chunks)
        )
        quantized, all_indices, *maybe_all_codes = tuple(zip(*out))
        return (torch.cat(quantized, dim=self.split_dim), torch.stack(all_indices), *maybe_all_codes)
