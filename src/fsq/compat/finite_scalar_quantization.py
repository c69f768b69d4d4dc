"""``FSQ``: a drop-in for vector-quantize-pytorch 1.32's ``FSQ`` (needs neither that package nor einops).

Replace ``from vector_quantize_pytorch import FSQ`` with ``from fsq.compat.vector_quantize_pytorch import FSQ``.
The constructor takes the same arguments, ``forward(z)`` returns the same plain ``(quantized, indices)`` tuple,
and a state dict saved from their module loads strictly (same parameter and buffer names: an empty dict without
projections or rotation). Outputs, int32 indices, ``indices_to_codes`` and gradients are bit-identical, in
training and eval mode, for fp16/bf16/fp32/fp64 input. Their behaviour is kept on purpose, surprises included:

- Layout: 4-D and 5-D input (``(b, d, h, w)``, ``(b, d, t, h, w)``) is always channel-first; 2-D and 3-D input
  is channel-first only with ``channel_first=True``; otherwise 3-D input is ``(b, n, d)`` and 2-D input raises.
- Numerics: ``preserve_symmetry=False`` is :class:`fsq.quantizers.FSQ`'s ``"atanh"`` variant (even levels give
  the asymmetric grid, L = 8: -1 ... 0.75), ``preserve_symmetry=True`` its ``"symmetric"`` variant. The
  arithmetic is redone here in vector-quantize-pytorch's float32 operation order: :class:`fsq.quantizers.FSQ`
  computes its constants in float64 (``half_l`` and ``shift`` differ in the last bit for many levels, moving a
  few inputs per million to the neighbouring code) and fuses the straight-through gradient (last-bit
  differences), so delegating to it would not be bit-identical.
- Indices are computed from the float codes (level index times basis, summed, rounded, cast to int32), as theirs
  are, so they agree even where that float sum is inexact (above 2**24 codes).
- ``scale`` is stored and never used. ``codebook_size`` counts one codebook; it and ``implicit_codebook`` exist
  only with ``return_indices=True``.
- ``indices_to_codes`` applies ``project_out`` and returns channel-first output for index tensors with at least
  3 axes (4 with ``keep_num_codebooks_dim``) or on a ``channel_first`` module.
- ``noise_dropout`` (training mode only) perturbs the output, not the indices, and draws its random numbers in
  the same order, so seeded runs match. Construction also draws from the RNG in the same order: the same seed
  gives the same projections and ``orthogonal_rot``.

:class:`fsq.FSQ` refuses their state dicts (and this drop-in's): its default ``"paper"`` grid is not theirs.
:func:`native_state_dict` converts one on purpose for ``fsq.FSQ(..., variant="atanh")`` (or ``"symmetric"``).

Differences, all of them errors rather than different numbers: where theirs fails an ``assert`` this raises
:class:`DropInError` (a ``ValueError`` that is also an ``AssertionError``); bad input ranks raise ``ValueError``
(theirs: ``EinopsError``); levels below 2 raise ``ValueError``; ``return_indices`` with ``prod(levels) >= 2**31``
(no int32 index can hold them) raises ``NotImplementedError``. ``orthogonal_rotation`` with unequal levels does
not print their advice to use equal levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import torch
from torch import nn

from fsq.quantizers.fsq import mixed_radix_basis, validate_levels

INT32_CODEBOOK_LIMIT = 2**31  # return_indices needs every index to fit in int32


def native_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Their ``FSQ`` state dict (or this drop-in's), converted on purpose for :class:`fsq.FSQ`.

    :class:`fsq.FSQ` refuses their state dicts (it recognises them by the state-dict version torch records),
    because its default ``"paper"`` variant is not their grid. Build ``fsq.FSQ(levels, dim=..., variant="atanh")``
    for their default (``variant="symmetric"`` for ``preserve_symmetry=True``; ``bound_hard_clamp`` has no
    native variant) and load what this returns: the same tensors in a plain dict, which carries no origin. Their
    constants are float32 and ours float64, so a few inputs per million still round to a neighbouring code: keep
    the drop-in where bit-identity matters. A rotation (``orthogonal_rot``) has no native counterpart: refused.
    """
    rotations = [key for key in state_dict if key == "orthogonal_rot" or key.endswith(".orthogonal_rot")]
    if rotations:
        raise ValueError(
            f"state dict holds an orthogonal rotation ({', '.join(rotations)}), which fsq.FSQ does not have: "
            "keep it in fsq.compat.vector_quantize_pytorch.FSQ(..., orthogonal_rotation=True)"
        )
    return dict(state_dict)


class DropInError(ValueError, AssertionError):
    """An invalid argument or input where vector-quantize-pytorch fails an ``assert``: catch it as either."""


def _straight_through(x: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    """``rounded``'s value with ``x``'s gradient. Exact: ``rounded - x`` is exact for x within 1 of ``rounded``."""
    return x + (rounded - x).detach()


class FSQ(nn.Module):
    """vector-quantize-pytorch 1.32's ``FSQ``, argument for argument (see the module docstring).

    Args:
        levels: levels per channel (ints; 2 only with ``preserve_symmetry``).
        dim: input feature size; ``len(levels) * num_codebooks`` by default, else linear projections in and out.
        num_codebooks: groups of ``len(levels)`` channels, one index each.
        keep_num_codebooks_dim: keep the indices' trailing codebook axis (default: ``num_codebooks > 1``).
        scale: stored, unused (as in vector-quantize-pytorch).
        allowed_dtypes: dtypes quantized as they are; others are quantized in float32.
        channel_first: read 2-D/3-D input as ``(b, d)`` / ``(b, d, n)``.
        projection_has_bias: bias of both projections.
        return_indices: ``False`` returns ``(quantized, None)``.
        force_quantization_f32: quantize outside CUDA autocast, upcasting dtypes not in ``allowed_dtypes``.
        preserve_symmetry: the symmetric grid (L points spanning [-1, 1]).
        noise_dropout: in training mode, add U(-0.5, 0.5) to this fraction of codes (needs ``preserve_symmetry``).
        bound_hard_clamp: bound with ``clamp(-1, 1)`` instead of ``tanh``.
        orthogonal_rotation: rotate each group by a random orthogonal matrix (persistent ``orthogonal_rot``).
    """

    # buffers and modules set in __init__ (declared here for the type checker); implicit_codebook and
    # orthogonal_rot exist only with return_indices / orthogonal_rotation
    _levels: torch.Tensor
    _basis: torch.Tensor
    implicit_codebook: torch.Tensor
    orthogonal_rot: torch.Tensor
    project_in: nn.Module
    project_out: nn.Module

    def __init__(
        self,
        levels: Sequence[int],
        dim: int | None = None,
        num_codebooks: int = 1,
        keep_num_codebooks_dim: bool | None = None,
        scale: float | None = None,
        allowed_dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
        channel_first: bool = False,
        projection_has_bias: bool = True,
        return_indices: bool = True,
        force_quantization_f32: bool = True,
        preserve_symmetry: bool = False,
        noise_dropout: float = 0.0,
        bound_hard_clamp: bool = False,
        orthogonal_rotation: bool = False,
    ) -> None:
        super().__init__()
        levels = list(validate_levels(levels))
        if 2 in levels and not preserve_symmetry:
            raise DropInError("levels of 2 need preserve_symmetry=True (as in vector-quantize-pytorch)")
        if noise_dropout > 0 and not preserve_symmetry:
            raise DropInError("noise_dropout needs preserve_symmetry=True (as in vector-quantize-pytorch)")
        if isinstance(num_codebooks, bool) or int(num_codebooks) != num_codebooks or num_codebooks < 1:
            raise DropInError(f"num_codebooks must be a positive integer, got {num_codebooks!r}")
        keep = num_codebooks > 1 if keep_num_codebooks_dim is None else bool(keep_num_codebooks_dim)
        if num_codebooks > 1 and not keep:
            raise DropInError("keep_num_codebooks_dim=False needs num_codebooks == 1")
        if return_indices and math.prod(levels) >= INT32_CODEBOOK_LIMIT:
            raise NotImplementedError(
                f"return_indices=True with prod(levels) = {math.prod(levels)} >= 2**31 codes: int32 indices cannot "
                "hold them (vector-quantize-pytorch overflows); use return_indices=False or fewer levels"
            )

        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.int32), persistent=False)
        basis = torch.tensor(mixed_radix_basis(levels), dtype=torch.int64).to(torch.int32)  # wraps as theirs does
        self.register_buffer("_basis", basis, persistent=False)
        self.scale = scale
        self.preserve_symmetry = bool(preserve_symmetry)
        self.noise_dropout = noise_dropout
        self.codebook_dim = len(levels)
        self.num_codebooks = int(num_codebooks)
        self.effective_codebook_dim = self.codebook_dim * self.num_codebooks
        self.keep_num_codebooks_dim = keep
        self.dim = self.effective_codebook_dim if dim is None else int(dim)
        self.channel_first = channel_first
        # construction order (project_in, project_out, then the rotation) fixes the RNG draws: same seed, same weights
        self.has_projections = self.dim != self.effective_codebook_dim
        if self.has_projections:
            self.project_in = nn.Linear(self.dim, self.effective_codebook_dim, bias=projection_has_bias)
            self.project_out = nn.Linear(self.effective_codebook_dim, self.dim, bias=projection_has_bias)
        else:
            self.project_in, self.project_out = nn.Identity(), nn.Identity()
        self.return_indices = return_indices
        if return_indices:
            self.codebook_size = math.prod(levels)
            codebook = self._level_indices_to_codes(self.indices_to_level_indices(torch.arange(self.codebook_size)))
            self.register_buffer("implicit_codebook", codebook, persistent=False)
        self.allowed_dtypes = allowed_dtypes
        self.force_quantization_f32 = force_quantization_f32
        self.bound_hard_clamp = bound_hard_clamp
        self.orthogonal_rotation = orthogonal_rotation
        if orthogonal_rotation:
            rotation = torch.empty(self.codebook_dim, self.codebook_dim)
            nn.init.orthogonal_(rotation)
            self.register_buffer("orthogonal_rot", rotation)

    def extra_repr(self) -> str:
        return (
            f"levels={self._levels.tolist()}, num_codebooks={self.num_codebooks}, dim={self.dim}, "
            f"preserve_symmetry={self.preserve_symmetry}, channel_first={self.channel_first}"
        )

    # ------------------------------------------------------------------------------------------- quantization
    def bound(self, z: torch.Tensor, eps: float = 1e-3, hard_clamp: bool = False) -> torch.Tensor:
        """Codes of the asymmetric grid (``"atanh"`` variant) for ``z`` (..., codebook_dim), straight-through.

        ``round(squash(z + shift) * half_l - offset) / (L // 2)`` with ``half_l = (L - 1)(1 + eps) / 2``,
        ``offset = 0.5`` for even L, ``shift = atanh(offset / half_l)`` (``offset / half_l`` with the hard
        clamp); the constants are float32 tensors built from the int32 levels, as in vector-quantize-pytorch.
        """
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = offset / half_l if hard_clamp else torch.atanh(offset / half_l)
        squashed = (z + shift).clamp(-1.0, 1.0) if hard_clamp else torch.tanh(z + shift)
        bounded = squashed * half_l - offset
        return _straight_through(bounded, bounded.round()) / (self._levels // 2)

    def symmetry_preserving_bound(self, z: torch.Tensor, hard_clamp: bool = False) -> torch.Tensor:
        """Codes of the symmetric grid (``"symmetric"`` variant), straight-through.

        ``2 / (L - 1) * floor((L - 1)(squash(z) + 1) / 2 + 0.5) - 1``; the bracket stays in ``z``'s dtype
        (bf16 input quantized without upcasting decides its digits in bf16, as theirs does).
        """
        squashed = z.clamp(-1.0, 1.0) if hard_clamp else torch.tanh(z)
        steps = self._levels - 1
        bracket = steps * (squashed + 1) / 2.0 + 0.5
        return (2.0 / steps) * _straight_through(bracket, bracket.floor()) - 1.0

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Grid codes of ``z`` (..., codebook_dim), with the straight-through gradient."""
        if self.preserve_symmetry:
            return self.symmetry_preserving_bound(z, hard_clamp=self.bound_hard_clamp)
        return self.bound(z, hard_clamp=self.bound_hard_clamp)

    def maybe_apply_noise(self, codes: torch.Tensor) -> torch.Tensor:
        """In training mode with ``noise_dropout = p``: add U(-0.5, 0.5) to a fraction p of codes, clamp to [-1, 1].

        Draws a Bernoulli mask, then the uniform offsets, each shaped like ``codes`` (vector-quantize-pytorch's
        order, so a seeded run gives the same noise).
        """
        if not self.training or self.noise_dropout == 0:
            return codes
        mask = torch.full_like(codes, self.noise_dropout).bernoulli_().bool()
        jitter = torch.rand_like(codes) - 0.5
        return torch.where(mask, codes + jitter, codes).clamp(-1.0, 1.0)

    # ---------------------------------------------------------------------------------------- codes <-> indices
    def _level_indices_to_codes(self, level_indices: torch.Tensor) -> torch.Tensor:
        if self.preserve_symmetry:
            return level_indices * (2.0 / (self._levels - 1)) - 1.0
        half_width = self._levels // 2
        return (level_indices - half_width) / half_width

    def indices_to_level_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Per-channel level indices (0 .. L-1, trailing axis ``codebook_dim``); out-of-range indices wrap."""
        return (indices.unsqueeze(-1) // self._basis) % self._levels

    def codes_to_indices(self, zhat: torch.Tensor) -> torch.Tensor:
        """int32 indices of codes (..., codebook_dim) (for num_codebooks > 1: (..., c, codebook_dim)).

        Float arithmetic, rounding only the sum, exactly as vector-quantize-pytorch: off-grid or bf16 codes can
        map to wrong indices there and here alike; the forward's indices are the reliable ones.
        """
        if zhat.shape[-1] != self.codebook_dim:
            raise DropInError(f"codes need a last axis of size {self.codebook_dim}, got shape {tuple(zhat.shape)}")
        if self.preserve_symmetry:
            level_indices = (zhat + 1.0) / (2.0 / (self._levels - 1))
        else:
            half_width = self._levels // 2
            level_indices = zhat * half_width + half_width
        return (level_indices * self._basis).sum(dim=-1).round().to(torch.int32)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returned for ``indices``: grid codes, un-rotated, merged, through ``project_out``.

        Float32 (torch's default dtype). Channel-first when ``indices.ndim >= 3 + keep_num_codebooks_dim`` or on a
        ``channel_first`` module (so any 3-D index tensor comes back channel-first, as in vector-quantize-pytorch).
        """
        image_like = indices.ndim >= 3 + int(self.keep_num_codebooks_dim)
        codes = self._level_indices_to_codes(self.indices_to_level_indices(indices))
        if self.orthogonal_rotation:
            codes = codes @ self.orthogonal_rot.t()
        if self.keep_num_codebooks_dim:
            codes = codes.flatten(-2)
        codes = self.project_out(codes)
        return codes.movedim(-1, 1) if image_like or self.channel_first else codes

    # -------------------------------------------------------------------------------------------------- forward
    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(quantized, indices)``: quantized in ``z``'s shape and dtype, int32 indices (see the module docstring)."""
        move = z.ndim >= 4 or self.channel_first
        if move:
            if z.ndim < 2:
                raise ValueError(f"channel-first FSQ input needs (b, d, ...), got shape {tuple(z.shape)}")
            z = z.movedim(1, -1)
            spatial = z.shape[1:-1]
            z = z.reshape(z.shape[0], math.prod(spatial), z.shape[-1])
        if z.shape[-1] != self.dim:
            raise DropInError(f"expected dimension of {self.dim} but found dimension of {z.shape[-1]}")
        if z.ndim != 3:
            raise ValueError(
                f"FSQ input must be (b, n, d), (b, d, h, w) or (b, d, t, h, w) (2-D (b, d) needs channel_first=True), "
                f"got shape {tuple(z.shape)}"
            )
        z = self.project_in(z).unflatten(-1, (self.num_codebooks, self.codebook_dim))
        if self.orthogonal_rotation:
            z = z @ self.orthogonal_rot
        upcast = self.force_quantization_f32
        with torch.autocast("cuda", enabled=False) if upcast else nullcontext():
            in_dtype = z.dtype
            if upcast and in_dtype not in self.allowed_dtypes:
                z = z.float()
            codes = self.quantize(z)
            indices = self.codes_to_indices(codes) if self.return_indices else None
            codes = self.maybe_apply_noise(codes)
            if self.orthogonal_rotation:
                codes = codes @ self.orthogonal_rot.t()
            codes = codes.flatten(-2).to(in_dtype)
        out = self.project_out(codes)
        if move:
            out = out.reshape(out.shape[0], *spatial, out.shape[-1]).movedim(-1, 1)
            if indices is not None:
                indices = indices.reshape(indices.shape[0], *spatial, indices.shape[-1])
        if indices is not None and not self.keep_num_codebooks_dim:
            indices = indices.squeeze(-1)
        return out, indices
