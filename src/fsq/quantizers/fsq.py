"""Finite Scalar Quantization (Mentzer et al., "FSQ: VQ-VAE Made Simple", ICLR 2024, arXiv 2309.15505).

Each of ``d = len(levels)`` channels is bounded so that rounding yields exactly ``L_i`` values; the codebook is
the implicit product of the per-channel grids (``prod(levels)`` codes), never stored. Gradients pass the
rounding straight through.

Numerics are named variants, each pinned by golden tests:

``"paper"`` (default)
    The paper's App. A.1 / official colab code: ``half_l = (L-1)(1-eps)/2``, ``offset = 0.5`` for even ``L``
    (else 0), ``shift = tan(offset/half_l)``, ``bound = tanh(z + shift) * half_l - offset``, round, divide by
    ``L // 2``. Even ``L`` gives the asymmetric grid ``{-1, ..., 1 - 2/L}`` (``L = 8``: -1 ... 0.75).
``"atanh"``
    What vector-quantize-pytorch (>= 2024-01), Cosmos and VidTok compute: ``half_l = (L-1)(1+eps)/2`` and
    ``shift = atanh(offset/half_l)`` (so ``bound(0) = 0`` exactly for even ``L``). Same grid as ``"paper"``;
    about 1% of inputs land on a different code.
``"symmetric"``
    A uniform grid of ``L`` points spanning ``[-1, 1]`` (arXiv 2411.19842 sec. 3.2, vector-quantize-pytorch's
    ``preserve_symmetry``): digit ``k = floor((L-1)(tanh(z)+1)/2 + 0.5)``, code ``2k/(L-1) - 1``.

Indices are mixed-radix integers with channel 0 the least significant digit, built from int64 digits (never by a
float multiply-and-round), so they are exact for any codebook below 2**63.

Two implementations give the same results: the eager torch path below, and fused Triton kernels
(:mod:`fsq.quantizers.fused`), used by default on CUDA tensors when triton is installed (``kernel=`` forces either).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch import nn

from fsq.quantizers import finite, fused
from fsq.quantizers.base import (
    QuantizerOutput,
    as_float_tensor,
    as_index_tensor,
    autocast_off,
    host_checks,
    positive_int,
)

Variant = Literal["paper", "atanh", "symmetric"]
VARIANTS: tuple[str, ...] = ("paper", "atanh", "symmetric")
MAX_CODEBOOK_SIZE = 2**63 - 1  # int64 indices
DEFAULT_CODEBOOK_LIMIT = 2**24  # codebook() refuses to build more rows than this unless asked
VQP_BUFFERS = ("_levels", "_basis", "implicit_codebook", "orthogonal_rot")  # load_state_dict refuses them


def validate_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """Return ``levels`` as a tuple of Python ints, or raise ``ValueError`` naming the problem.

    The one check of FSQ levels (every quantizer built on FSQ levels calls it): a non-empty 1-D sequence (list,
    tuple, integer tensor or numpy array) of integers >= 2 whose product fits an int64 index. Integral floats
    (``8.0``) pass; bools, strings and non-integral numbers are refused, never converted.
    """
    if hasattr(levels, "tolist") and not isinstance(levels, Sequence):  # a torch tensor or numpy array
        shape = tuple(getattr(levels, "shape", ()))
        if len(shape) != 1 or "bool" in str(getattr(levels, "dtype", "")):
            raise ValueError(f"levels must be a 1-D sequence of integers >= 2, got {levels!r}")
        levels = levels.tolist()
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        raise ValueError(f"levels must be a sequence of integers >= 2, got {levels!r}")
    if len(levels) == 0:
        raise ValueError("levels must not be empty: give one integer >= 2 per channel, e.g. [8, 5, 5, 5]")
    out = tuple(positive_int(f"levels[{i}]", value, minimum=2) for i, value in enumerate(levels))
    size = math.prod(out)
    if size > MAX_CODEBOOK_SIZE:
        raise ValueError(f"prod(levels) = {size} exceeds 2**63 - 1, the largest int64 index")
    return out


def mixed_radix_basis(levels: Sequence[int]) -> list[int]:
    """``[1, L0, L0*L1, ...]``: the weight of each channel's digit in the index (channel 0 least significant)."""
    basis, acc = [], 1
    for level in levels:
        basis.append(acc)
        acc *= level
    return basis


TILE = 64  # channel-last inputs are viewed as rows of TILE * channels so per-channel constants vectorise


def _tile_factor(rows: int) -> int:
    """Largest power of two <= TILE that divides ``rows`` (1 for odd counts)."""
    k = TILE
    while k > 1 and rows % k:
        k //= 2
    return k


class _BoundRound(torch.autograd.Function):
    """Bound, round and normalise in one autograd node, with the straight-through gradient.

    Forward, for ``z`` of shape (A, D, B) and per-channel constants of shape (D, 1):
    ``paper``/``atanh``: ``level = round(tanh(z + shift) * scale - offset)``, ``codes = level / divisor``;
    ``symmetric``: ``level = floor(scale * (tanh(z) + 1) / 2 + 0.5)``, ``codes = level * divisor - 1``.
    The operation order is the reference code's, so results match it bit for bit.
    Backward: ``grad * grad_scale * (1 - tanh^2)``, i.e. d(bound)/dz divided by ``L // 2`` (the STE). That slope
    is computed in the forward pass, in place of ``tanh`` once it is no longer needed, so the node saves one
    tensor and its backward is one multiplication: less time and memory than autograd through the unfused ops.
    The int64 indices (built from the integer levels before they become codes) are returned without gradient.
    """

    @staticmethod
    def forward(ctx, z, shift, scale, offset, divisor, grad_scale, symmetric, index_spec):  # noqa: D102
        t = torch.tanh(z) if shift is None else (z + shift).tanh_()
        if symmetric:
            u = t + 1
            u *= scale
            u /= 2
            u += 0.5
            u.floor_()
        else:
            u = t * scale
            u -= offset
            u.round_()
        indices = _levels_to_indices(u, *index_spec)
        codes = u.mul_(divisor).sub_(1) if symmetric else u.div_(divisor)
        slope = t.mul_(t).neg_().add_(1).mul_(grad_scale)  # grad_scale * (1 - tanh^2), reusing t's memory
        ctx.save_for_backward(slope)
        ctx.mark_non_differentiable(indices)
        ctx.set_materialize_grads(False)  # no zeros tensor for the indices' (absent) gradient
        return codes, indices

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_codes, grad_levels):  # noqa: D102
        (slope,) = ctx.saved_tensors
        grad_z = None if grad_codes is None else grad_codes * slope
        return grad_z, None, None, None, None, None, None, None


def _levels_to_indices(
    levels: torch.Tensor, shape: tuple[int, ...], basis: tuple[int, ...], offset: int, dtype: torch.dtype
) -> torch.Tensor:
    """Mixed-radix indices (int64, shape (A, num_codebooks, B)) of integer-valued float ``levels``.

    ``levels`` is viewed as ``shape`` = (A, num_codebooks, code_dim, B); each channel's level is converted to an
    integer and accumulated as ``offset + sum_i basis_i * level_i`` in ``dtype`` (int32 when the codebook has fewer
    than 2**31 codes, else int64): integer arithmetic throughout, one column at a time to keep memory low.
    """
    view = levels.view(shape)
    indices = view[:, :, 0].to(dtype)
    if offset:
        indices += offset
    for i in range(1, shape[2]):
        indices.add_(view[:, :, i].to(dtype), alpha=basis[i])
    return indices.long()


class FSQ(nn.Module):
    """Finite Scalar Quantizer.

    Args:
        levels: number of levels per channel, each an integer >= 2 (may differ per channel).
        dim: width of the input's channel axis. Defaults to ``len(levels) * num_codebooks``; when it differs,
            learned linear projections map ``dim -> len(levels) * num_codebooks`` and back.
        num_codebooks: split the (projected) channels into this many groups of ``len(levels)``, each quantized
            with the same levels and given its own index (indices gain a trailing axis of this size).
        variant: the bounding numerics, one of ``"paper"`` (default), ``"atanh"``, ``"symmetric"``.
        eps: the paper's ``eps`` (1e-3); ignored by ``"symmetric"``.
        channel_axis: the axis holding channels (default -1; use 1 for ``(B, C, H, W)``). Never guessed.
        check_finite: raise :class:`~fsq.quantizers.finite.NonFiniteInputError` (a ``ValueError``) on NaN/Inf
            input. ``True`` (default): at the call for CPU tensors; for CUDA tensors at a later call or at
            :func:`fsq.check_pending`, without stopping the GPU (``"deferred"``); ``"sync"`` always raises at
            the call (on CUDA it waits for the GPU); ``False`` skips the check (indices of non-finite inputs are
            then unspecified). Under ``torch.compile`` a raise would break the graph, so compiled code marks such
            positions with index -1 instead. See :mod:`fsq.quantizers.finite`.
        projection_bias: use a bias in the projections.
        kernel: ``"auto"`` (default) runs fused Triton kernels on CUDA tensors when triton is installed and the
            eager torch path otherwise; ``"eager"`` always uses the torch path; ``"triton"`` always the kernels (on
            CPU tensors only under Triton's interpreter, ``TRITON_INTERPRET=1``). Same indices, bit-identical codes.

    ``forward(z)`` returns :class:`QuantizerOutput`: ``quantized`` (input shape and dtype), ``indices`` (int64,
    input shape without the channel axis, plus ``(num_codebooks,)`` when ``num_codebooks > 1``) and ``aux_loss``
    (a float32 zero: FSQ needs no auxiliary loss). Quantization always runs in float32, also under autocast.
    """

    # buffers registered in __init__ (declared here for the type checker)
    _shift: torch.Tensor
    _scale: torch.Tensor
    _offset: torch.Tensor
    _divisor: torch.Tensor
    _grad_scale: torch.Tensor
    _shift_tiled: torch.Tensor
    _scale_tiled: torch.Tensor
    _offset_tiled: torch.Tensor
    _divisor_tiled: torch.Tensor
    _grad_scale_tiled: torch.Tensor
    _levels_t: torch.Tensor
    _basis_t: torch.Tensor
    _digit_offset: torch.Tensor
    _kernel_floats: torch.Tensor
    _kernel_ints: torch.Tensor

    # state-dict version torch records in a state dict's metadata: 2 tells ours from vector-quantize-pytorch's (1)
    _version = 2

    def __init__(
        self,
        levels: Sequence[int],
        *,
        dim: int | None = None,
        num_codebooks: int = 1,
        variant: Variant = "paper",
        eps: float = 1e-3,
        channel_axis: int = -1,
        check_finite: bool | str = True,
        projection_bias: bool = True,
        kernel: str = "auto",
    ) -> None:
        super().__init__()
        self.levels = validate_levels(levels)
        self.kernel = fused.check_kernel(kernel)
        if variant not in VARIANTS:
            raise ValueError(f"unknown FSQ variant {variant!r}; choose one of {VARIANTS}")
        if variant == "paper" and not 0 <= eps < 1:
            raise ValueError(f"eps must be in [0, 1) for the paper variant, got {eps}")
        self.variant = variant
        self.eps = float(eps)
        self.num_codebooks = positive_int("num_codebooks", num_codebooks)
        self.code_dim = len(self.levels)  # channels per codebook
        self.codebook_dim = self.code_dim * self.num_codebooks
        self.dim = self.codebook_dim if dim is None else positive_int("dim", dim)
        self.channel_axis = int(channel_axis)
        self.check_finite = finite.check_mode(check_finite)
        self._pending_checks = finite.PendingChecks("FSQ")
        self.codebook_size: int = math.prod(self.levels)  # per codebook; a Python int, exact
        self.basis: tuple[int, ...] = tuple(mixed_radix_basis(self.levels))

        needs_projection = self.dim != self.codebook_dim
        self.project_in = nn.Linear(self.dim, self.codebook_dim, bias=projection_bias) if needs_projection else None
        self.project_out = nn.Linear(self.codebook_dim, self.dim, bias=projection_bias) if needs_projection else None

        # Per-channel constants, computed in float64 (as the reference does in numpy) and stored in float32:
        # (code_dim,) for the helpers, and tiled TILE * num_codebooks times as (n, 1) columns for the kernel.
        constants = [self._channel_constants(level) for level in self.levels]
        self._has_shift = any(c[0] != 0.0 for c in constants)
        for name, column in zip(("_shift", "_scale", "_offset", "_divisor", "_grad_scale"), zip(*constants)):
            self.register_buffer(name, torch.tensor(column, dtype=torch.float32), persistent=False)
            tiled = torch.tensor(column * (TILE * self.num_codebooks), dtype=torch.float32).unsqueeze(-1)
            self.register_buffer(name + "_tiled", tiled, persistent=False)
        self.register_buffer("_levels_t", torch.tensor(self.levels, dtype=torch.int64), persistent=False)
        self.register_buffer("_basis_t", torch.tensor(self.basis, dtype=torch.int64), persistent=False)
        digit_offset = [0 if variant == "symmetric" else level // 2 for level in self.levels]
        self.register_buffer("_digit_offset", torch.tensor(digit_offset, dtype=torch.int64), persistent=False)
        # index = sum_i rounded_i * basis_i + sum_i digit_offset_i * basis_i; int32 arithmetic is exact below 2**31
        self._index_offset = sum(o * b for o, b in zip(digit_offset, self.basis))
        self._index_dtype = torch.int32 if self.codebook_size < 2**31 else torch.int64
        # the fused kernels' constants, (5, code_dim) float32 and (3, code_dim) int64 (see fused.quantize)
        floats = torch.stack([self._shift, self._scale, self._offset, self._divisor, self._grad_scale])
        self.register_buffer("_kernel_floats", floats, persistent=False)
        ints = torch.stack([self._basis_t, self._digit_offset, self._levels_t])
        self.register_buffer("_kernel_ints", ints, persistent=False)

    def _channel_constants(self, level: int) -> tuple[float, float, float, float, float]:
        """(shift, scale, offset, divisor, grad_scale) of one channel, as used by :class:`_BoundRound`."""
        if self.variant == "symmetric":
            return 0.0, float(level - 1), 0.5, 2.0 / (level - 1), 1.0
        offset = 0.5 if level % 2 == 0 else 0.0
        if self.variant == "paper":
            half_l = (level - 1) * (1 - self.eps) / 2
            shift = math.tan(offset / half_l)
        else:
            half_l = (level - 1) * (1 + self.eps) / 2
            shift = math.atanh(offset / half_l)
        return shift, half_l, offset, float(level // 2), half_l / (level // 2)

    def extra_repr(self) -> str:
        return (
            f"levels={list(self.levels)}, variant={self.variant!r}, codebook_size={self.codebook_size}, "
            f"num_codebooks={self.num_codebooks}, dim={self.dim}, channel_axis={self.channel_axis}"
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Refuse state dicts of vector-quantize-pytorch's FSQ: they need that library's numerics, not this FSQ's.

        Recognised by their buffers (``_levels``, ``_basis``, ``implicit_codebook``, ``orthogonal_rot``: never in
        ours) or, for their plain dicts (empty, or only ``project_in``/``project_out``, the same names as ours),
        by the state-dict version torch records for every module: this class saves version 2 (see ``_version``),
        theirs (and the drop-in :class:`fsq.compat.vector_quantize_pytorch.FSQ`) nn.Module's default 1. A dict
        without that record (a safetensors file, a dict comprehension) carries no origin and loads as ours.
        """
        theirs = [prefix + name for name in VQP_BUFFERS if prefix + name in state_dict]
        if theirs:
            raise RuntimeError(
                f"state dict holds vector-quantize-pytorch FSQ buffers ({', '.join(theirs)}): load it into "
                "fsq.compat.vector_quantize_pytorch.FSQ, which reproduces that library bit for bit"
            )
        version = (local_metadata or {}).get("version")
        if version is not None and version < self._version:
            where = f"at {prefix[:-1]!r} " if prefix else ""
            raise RuntimeError(
                f"state dict {where}comes from a module of state-dict version {version}, not fsq.FSQ (version "
                f"{self._version}): vector-quantize-pytorch's FSQ or fsq.compat.vector_quantize_pytorch.FSQ, whose "
                f"numerics are not this FSQ's (variant={self.variant!r}; theirs are variant 'atanh', or 'symmetric' "
                "with preserve_symmetry=True, computed in float32, so a few inputs per million still round "
                "differently). Load it into fsq.compat.vector_quantize_pytorch.FSQ (bit-identical), or convert it on "
                "purpose with fsq.compat.vector_quantize_pytorch.native_state_dict(state_dict) and load that into "
                "fsq.FSQ(..., variant='atanh' or 'symmetric')"
            )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    # ----------------------------------------------------------------------------------------------- layout
    def _to_last(self, x: torch.Tensor, width: int, what: str) -> torch.Tensor:
        axis = self._axis(x, width, what)
        return x if axis == x.ndim - 1 else x.movedim(axis, -1)

    def _from_last(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.channel_axis if self.channel_axis >= 0 else x.ndim + self.channel_axis
        return x if axis == x.ndim - 1 else x.movedim(-1, axis)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (..., nc*d) -> (..., nc, d)
        return x.unflatten(-1, (self.num_codebooks, self.code_dim))

    def _squeeze_codebooks(self, indices: torch.Tensor) -> torch.Tensor:  # (..., nc) -> (...) when nc == 1
        return indices.squeeze(-1) if self.num_codebooks == 1 else indices

    # ---------------------------------------------------------------------------------------------- forward
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z``; see the class docstring for shapes."""
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise TypeError(f"FSQ input must be a floating-point tensor, got {getattr(z, 'dtype', type(z).__name__)}")
        if not torch.compiler.is_compiling() and self._pending_checks:
            self._pending_checks.poll()  # raises for an earlier call's NaN/Inf (deferred check)
        in_dtype = z.dtype
        if self.project_in is not None:
            z = self.project_in(self._to_last(z, self.dim, "FSQ input"))
            axis = z.ndim - 1
        else:
            axis = self._axis(z, self.dim, "FSQ input")
        with autocast_off(z.device.type):
            if fused.use_triton(self.kernel, z):  # codes come back in z's dtype unless they go through project_out
                codes, indices = self._quantize_fused(z if self.project_out is None else z.float(), axis)
            else:
                codes, indices = self._quantize(z.float(), axis)
            if self.project_out is not None:
                codes = self._from_last(self.project_out(codes.to(self.project_out.weight.dtype)))
        aux_loss = torch.zeros((), device=codes.device, dtype=torch.float32)
        return QuantizerOutput(codes.to(in_dtype), indices, aux_loss)

    def _axis(self, x: torch.Tensor, width: int, what: str) -> int:
        """The non-negative channel axis of ``x``, checked to hold ``width`` channels."""
        if x.ndim < 1:
            raise ValueError(f"{what} must have at least one axis (the channel axis)")
        axis = self.channel_axis if self.channel_axis >= 0 else x.ndim + self.channel_axis
        if not 0 <= axis < x.ndim:
            raise ValueError(f"channel_axis={self.channel_axis} is out of range for {what} of shape {tuple(x.shape)}")
        if x.shape[axis] != width:
            raise ValueError(
                f"{what} has {x.shape[axis]} channels on axis {self.channel_axis} (shape {tuple(x.shape)}), "
                f"expected {width}"
            )
        return axis

    def _quantize(self, z: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (float32, shape of ``z``) and int64 indices of float32 ``z`` with channels on ``axis``.

        Works in the input's own layout: ``z`` is viewed as (A, C, B) (C channels, B positions after them), so
        per-channel constants broadcast along long inner loops. Channel-last input (B = 1) is viewed as rows of
        ``k * C`` values with the constants tiled ``k`` times, which keeps the loops vectorised as well.
        """
        shape = z.shape
        rows, channels = math.prod(shape[:axis]), shape[axis]
        after = math.prod(shape[axis + 1 :])
        tile = _tile_factor(rows) if after == 1 else 1
        z3 = z.reshape(rows // tile, tile * channels, after)
        check = finite.effective_mode(self.check_finite, z3)
        if check == "sync":
            self._raise_if_nonfinite(z3)
        elif check == "deferred":
            self._pending_checks.add(torch.isfinite(z3).all())
        n = tile * channels
        shift = self._shift_tiled[:n] if self._has_shift else None
        codes, indices = _BoundRound.apply(
            z3,
            shift,
            self._scale_tiled[:n],
            self._offset_tiled[:n],
            self._divisor_tiled[:n],
            self._grad_scale_tiled[:n],
            self.variant == "symmetric",
            ((rows, self.num_codebooks, self.code_dim, after), self.basis, self._index_offset, self._index_dtype),
        )
        if self.check_finite != "off" and torch.compiler.is_compiling():  # no raise inside a graph: mark with -1
            ok = torch.isfinite(z3).reshape(rows, self.num_codebooks, self.code_dim, after).all(2)
            indices = torch.where(ok, indices, -1)
        # (A, nc, B) -> shape without the channel axis, plus (nc,) when grouped
        indices = indices.movedim(1, -1).reshape(*shape[:axis], *shape[axis + 1 :], self.num_codebooks)
        return codes.reshape(shape), self._squeeze_codebooks(indices)

    def _quantize_fused(self, z: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_quantize` by the fused kernels: codes in ``z``'s dtype (float32 for dtypes they do not read).

        The kernels read channel-last rows of ``code_dim`` values: other layouts are copied there and back.
        Non-finite rows come back with index -1 (what compiled code documents); eager code raises on them.
        """
        if z.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            z = z.float()
        last = z if axis == z.ndim - 1 else z.movedim(axis, -1)
        rows = last.reshape(-1, self.code_dim).contiguous()
        codes, indices = fused.quantize_eager(
            rows, self._kernel_floats, self._kernel_ints, self.variant == "symmetric", self._has_shift
        )
        check = finite.effective_mode(self.check_finite, rows) if indices.numel() else "off"
        if check == "sync" and int(indices.min()) < 0:
            self._raise_if_nonfinite(rows)
        elif check == "deferred":  # the kernel gives non-finite rows index -1
            self._pending_checks.add(indices.amin() >= 0)
        codes = codes.view(last.shape)
        codes = codes if axis == z.ndim - 1 else codes.movedim(-1, axis).contiguous()
        return codes, self._squeeze_codebooks(indices.view(*last.shape[:-1], self.num_codebooks))

    @staticmethod
    def _raise_if_nonfinite(z: torch.Tensor) -> None:
        # One cheap reduction; the exact check only runs when the sum is not finite (NaN/Inf, or overflow).
        if not bool(torch.isfinite(z.sum())):
            bad = int((~torch.isfinite(z)).sum())
            if bad:
                raise finite.NonFiniteInputError(
                    f"FSQ input contains {bad} non-finite value(s) (NaN or Inf); fix the encoder "
                    "(or pass check_finite=False to skip this check)"
                )

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """The continuous value that rounding turns into a level (``z``: (..., code_dim), channels last).

        ``paper``/``atanh``: ``tanh(z + shift) * half_l - offset`` (rounded to nearest);
        ``symmetric``: ``(L - 1) * (tanh(z) + 1) / 2`` (rounded half up).
        """
        t = torch.tanh(z.float() + self._shift)
        if self.variant == "symmetric":
            return self._scale * (t + 1) / 2
        return t * self._scale - self._offset

    def continuous_codes(self, z: torch.Tensor) -> torch.Tensor:
        """The un-rounded codes (float32, channels last, (..., code_dim)): what rounding moves onto the grid.

        ``bound(z) / (L // 2)`` for ``paper``/``atanh`` and ``tanh(z)`` for ``symmetric``; the STE gradient of
        ``forward`` is the gradient of this function.
        """
        if self.variant == "symmetric":
            return torch.tanh(z.float())
        return self.bound(z) / self._divisor

    # ------------------------------------------------------------------------------------ codes <-> indices
    # Public methods take tensors or (nested) lists and check their input (values are read on the host, so each
    # check waits for the GPU once; never while compiling, never on the meta device). ``forward`` and the
    # decoders call the unchecked helpers (``_digits_to_indices``, ``_digits_to_codes``) on digits they built.
    def _check_indices(self, indices: torch.Tensor) -> torch.Tensor:
        indices = as_index_tensor(indices, "indices", self._basis_t.device)
        if not host_checks(indices):
            return indices
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"indices out of range: found values in [{int(indices.min())}, {int(indices.max())}], "
                f"valid range is [0, {self.codebook_size - 1}] (codebook_size = {self.codebook_size})"
            )
        return indices

    def _check_digits(self, digits: torch.Tensor) -> torch.Tensor:
        digits = as_index_tensor(digits, "digits", self._basis_t.device)
        if digits.ndim == 0 or digits.shape[-1] != self.code_dim:
            raise ValueError(
                f"digits need a last axis of size {self.code_dim} (one digit per channel of levels "
                f"{list(self.levels)}), got shape {tuple(digits.shape)}"
            )
        if not host_checks(digits) or not digits.numel():
            return digits
        bad = (digits < 0) | (digits >= self._levels_t)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            channel = where[-1]
            raise ValueError(
                f"{int(bad.sum())} digit(s) out of range: digits[{', '.join(map(str, where))}] = "
                f"{int(digits[where])}, but channel {channel} has {self.levels[channel]} levels "
                f"(valid digits 0..{self.levels[channel] - 1})"
            )
        return digits

    def indices_to_digits(self, indices: torch.Tensor) -> torch.Tensor:
        """Per-channel digits in ``{0, ..., L_i - 1}``: int64 of shape ``indices.shape + (code_dim,)``.

        Layout-free: the digit axis is always last. ``ValueError`` for indices outside ``[0, codebook_size)``.
        """
        indices = self._check_indices(indices)
        return (indices.long().unsqueeze(-1) // self._basis_t) % self._levels_t

    def digits_to_indices(self, digits: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`indices_to_digits` (digit axis last, of size ``code_dim``).

        ``ValueError`` for a digit outside its channel's ``{0, ..., L_i - 1}`` (it would alias another index).
        """
        return self._digits_to_indices(self._check_digits(digits))

    def _digits_to_indices(self, digits: torch.Tensor) -> torch.Tensor:
        return (digits.long() * self._basis_t).sum(-1)

    def digits_to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        """Grid values (float32) of per-channel digits (digit axis last); same arithmetic as ``forward``.

        ``ValueError`` for a digit outside its channel's ``{0, ..., L_i - 1}`` (its value would be off the grid).
        """
        return self._digits_to_codes(self._check_digits(digits))

    def _digits_to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        rounded = (digits.long() - self._digit_offset).float()
        if self.variant == "symmetric":
            return rounded * self._divisor - 1
        return rounded / self._divisor

    def codes_to_digits(self, codes: torch.Tensor, *, snap: bool = False) -> torch.Tensor:
        """Digits of grid values (digit axis last, of size ``code_dim``).

        Codes must be finite and on the grid, up to the precision of their dtype (a bf16 code is the grid value
        rounded to bf16); anything else raises ``ValueError`` naming the first bad value. ``snap=True`` maps
        finite off-grid values to the nearest level instead (values beyond the grid to its ends); non-finite
        values always raise. While compiling no check runs (off-grid values snap, non-finite ones give
        unspecified digits).
        """
        codes = as_float_tensor(codes, "codes", self._basis_t.device)
        if codes.ndim == 0 or codes.shape[-1] != self.code_dim:
            raise ValueError(f"codes need a last axis of size {self.code_dim}, got shape {tuple(codes.shape)}")
        dtype, codes = codes.dtype, codes.float()
        if self.variant == "symmetric":
            scaled = (codes + 1) / self._divisor
        else:
            scaled = codes * self._divisor
        limit = self._levels_t.float()  # in level units; keeps huge codes (3e38 * L // 2 = inf) finite and off-range
        rounded = torch.round(torch.maximum(torch.minimum(scaled, limit), -limit))
        if host_checks(codes) and codes.numel():
            self._check_on_grid(codes, scaled, rounded, dtype, snap)
        digits = rounded.to(torch.int64) + self._digit_offset
        return torch.minimum(torch.clamp(digits, min=0), self._levels_t - 1)

    def _check_on_grid(
        self, codes: torch.Tensor, scaled: torch.Tensor, rounded: torch.Tensor, dtype: torch.dtype, snap: bool
    ) -> None:
        """Raise unless every code is finite (and, without ``snap``, within its dtype's precision of the grid)."""
        finite_codes = torch.isfinite(codes)
        bad = ~finite_codes
        if not snap:
            digits = rounded + self._digit_offset
            level_units = (self._levels_t - 1).float() / 2  # one grid step is one level unit
            tolerance = (1e-3 + torch.finfo(dtype).eps * level_units).clamp(max=0.49)
            bad |= ((scaled - rounded).abs() > tolerance) | (digits < 0) | (digits > self._levels_t - 1)
        if not bool(bad.any()):
            return
        where = tuple(int(i) for i in bad.nonzero()[0])
        value, channel = float(codes[where]), where[-1]
        if not bool(finite_codes.all()):
            count = int((~finite_codes).sum())
            raise ValueError(
                f"codes contain {count} non-finite value(s) (NaN or Inf), e.g. {value} in channel {channel}"
            )
        ends = self._digits_to_codes(torch.stack([torch.zeros_like(self._levels_t), self._levels_t - 1]))
        low, high = ends[:, channel].tolist()
        raise ValueError(
            f"{int(bad.sum())} code value(s) are not on the FSQ grid, e.g. {value:.9g} in channel {channel}, which "
            f"takes {self.levels[channel]} values from {low:g} to {high:g} in steps of "
            f"{(high - low) / (self.levels[channel] - 1):g} (variant {self.variant!r}). Pass snap=True to map "
            "values to the nearest level"
        )

    def codes_to_indices(self, codes: torch.Tensor, *, snap: bool = False) -> torch.Tensor:
        """Indices of grid codes with ``codebook_dim`` channels on ``channel_axis`` (before ``project_out``).

        Codes off the grid or non-finite raise ``ValueError``; see :meth:`codes_to_digits` (and its ``snap``).
        """
        codes = as_float_tensor(codes, "codes", self._basis_t.device)
        codes = self._split(self._to_last(codes, self.codebook_dim, "codes"))
        return self._squeeze_codebooks(self._digits_to_indices(self.codes_to_digits(codes, snap=snap)))

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Grid codes (float32, ``codebook_dim`` channels on ``channel_axis``) of ``indices``; no projection.

        ``indices``: an integer tensor or a (nested) list of ints, each in ``[0, codebook_size)``.
        """
        indices = as_index_tensor(indices, "indices", self._basis_t.device)
        if self.num_codebooks == 1:
            indices = indices.unsqueeze(-1)
        elif indices.ndim == 0 or indices.shape[-1] != self.num_codebooks:
            raise ValueError(
                f"indices of a {self.num_codebooks}-codebook FSQ need a trailing axis of size {self.num_codebooks}, "
                f"got shape {tuple(indices.shape)}"
            )
        if fused.use_triton(self.kernel, indices):
            self._check_indices(indices)
            flat = fused.indices_to_codes(
                indices.reshape(-1).long(), self._kernel_floats, self._kernel_ints, self.variant == "symmetric"
            )
            codes = flat.view(*indices.shape[:-1], self.codebook_dim)
        else:
            codes = self._digits_to_codes(self.indices_to_digits(indices)).flatten(-2)
        return self._from_last(codes)

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returned as ``quantized`` for these indices (``project_out`` applied), float32."""
        codes = self.indices_to_codes(indices)
        if self.project_out is None:
            return codes
        codes = self._to_last(codes, self.codebook_dim, "codes")
        return self._from_last(self.project_out(codes.to(self.project_out.weight.dtype)))

    # ---------------------------------------------------------------------------------- implicit codebook
    def iter_codebook(self, chunk_size: int = 65536) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(first_index, codes)`` chunks of the implicit codebook, codes of shape (n, code_dim), float32.

        Memory is bounded by ``chunk_size`` rows, whatever the codebook size.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        device = self._basis_t.device
        for start in range(0, self.codebook_size, chunk_size):
            stop = min(start + chunk_size, self.codebook_size)
            idx = torch.arange(start, stop, dtype=torch.int64, device=device)
            yield start, self._digits_to_codes((idx.unsqueeze(-1) // self._basis_t) % self._levels_t)

    def codebook(self, max_size: int = DEFAULT_CODEBOOK_LIMIT) -> torch.Tensor:
        """The implicit codebook, shape (codebook_size, code_dim), row ``i`` = code of index ``i``.

        Refuses (``ValueError``) to build more than ``max_size`` rows; use :meth:`iter_codebook` for large ones.
        """
        if self.codebook_size > max_size:
            raise ValueError(
                f"codebook has {self.codebook_size} rows ({self.codebook_size * self.code_dim * 4 / 2**30:.1f} GiB "
                f"as float32), above max_size={max_size}; iterate with iter_codebook() or raise max_size"
            )
        return torch.cat([codes for _, codes in self.iter_codebook()], dim=0)
