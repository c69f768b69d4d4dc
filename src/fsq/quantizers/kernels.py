"""Triton kernels for FSQ: fused quantize, its straight-through backward, and fused index decoding.

Imported only when a fused path is used (:mod:`fsq.quantizers.fused` guards the import), so triton stays optional.

One forward program reads a block of rows of ``z`` (any of float32/bfloat16/float16, computed in float32) and writes
the codes (in ``z``'s dtype) and one int64 index per row; nothing else is stored. The backward recomputes ``tanh``
from ``z`` instead of saving the slope, so a fwd+bwd moves ``20 d + 8`` bytes per float32 vector of ``d`` channels
and saves only ``z`` (usually a view of the input). Every operation follows the eager :class:`fsq.FSQ` order, so
results are bit-identical to it (see below for ``tanh``):

- ``b = t * scale - offset`` is two roundings: kernels launch with ``enable_fp_fusion=False`` (no FMA contraction);
- ``codes = q / divisor`` is an IEEE division (``div_rn``; a plain ``/`` lowers to an approximate division on GPU);
- rounding is half-to-even, built from ``floor`` and keeping the sign of zero (``torch.round(-0.3)`` is ``-0.0``);
- a bfloat16 store rounds to nearest even (the Triton interpreter's own cast truncates);
- indices are built from int64 digits, never by a float multiply-and-round.

``tanh``: under the interpreter (``TRITON_INTERPRET=1``, CPU tensors) it is an exp formula in float64, rounded once
to float32 (correctly rounded for practically all inputs; ``torch.tanh`` on the CPU is within about half an ulp,
so the two differ in the last bit for a small fraction of inputs). Compiled for a GPU it is libdevice's ``tanhf``.
A different last ``tanh`` bit can only change a code where the bounded value sits within about an ulp of a rounding
boundary: tests/quantizers/test_kernels.py pins identical codes and indices, including inputs within 64 ulp of every
boundary, and tests/gpu/test_cuda.py allows differences only at such near-ties.

Rows whose input holds NaN or Inf get index -1 (their codes are whatever the arithmetic gives).

The GPU launch settings (``GPU_BLOCK``, ``GPU_WARPS``) are untuned first choices: the kernels were written and
tested without a GPU (under the interpreter, and compiled to sm_90 PTX to check the lowering).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"  # triton decides this when the kernels below are defined
TANH = 1 if INTERPRET else 2  # 1: float64 exp formula (interpreter), 2: libdevice tanhf (GPU)
MAX_BLOCK = 2**20  # Triton's largest block (elements); the interpreter runs fastest with the fewest programs
GPU_BLOCK = 4096  # elements per program on a GPU
GPU_WARPS = 8
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@triton.jit
def _tanh(x, TANH: tl.constexpr):
    if TANH == 1:
        e = tl.exp(-2.0 * tl.abs(x.to(tl.float64)))
        t = ((1.0 - e) / (1.0 + e)).to(tl.float32)
        t = tl.where(x < 0, -t, t)
        t = tl.where(x == 0.0, x, t)  # tanh(-0.0) is -0.0
    else:
        t = libdevice.tanh(x)
    return t


@triton.jit
def _round_half_even(b):
    f = tl.floor(b)
    r = b - f
    odd = (f - 2.0 * tl.floor(f * 0.5)) == 1.0
    q = f + tl.where((r > 0.5) | ((r == 0.5) & odd), 1.0, 0.0)
    return tl.where(q == 0.0, b * 0.0, q)


@triton.jit
def _to_bf16_rne(x):
    bits = x.to(tl.uint32, bitcast=True)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    bits = tl.where(x != x, 0x7FC00000, bits)  # NaN -> the canonical NaN, as torch does
    return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _store(ptr, value, mask, OUT_BF16: tl.constexpr):
    if OUT_BF16:
        tl.store(ptr, _to_bf16_rne(value), mask=mask)
    else:
        tl.store(ptr, value, mask=mask)  # float32, or float16 (round to nearest even)


@triton.jit
def _fsq_fwd(
    z_ptr,
    fc_ptr,
    ic_ptr,
    codes_ptr,
    idx_ptr,
    n_rows,
    D: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_R: tl.constexpr,
    SYMMETRIC: tl.constexpr,
    HAS_SHIFT: tl.constexpr,
    OUT_BF16: tl.constexpr,
    TANH: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    ch = tl.arange(0, BLOCK_D)
    rmask = rows < n_rows
    cmask = ch < D
    m = rmask[:, None] & cmask[None, :]
    offs = rows[:, None] * D + ch[None, :]
    z = tl.load(z_ptr + offs, mask=m, other=0.0).to(tl.float32)
    scale = tl.load(fc_ptr + D + ch, mask=cmask, other=1.0)[None, :]
    divisor = tl.load(fc_ptr + 3 * D + ch, mask=cmask, other=1.0)[None, :]
    basis = tl.load(ic_ptr + ch, mask=cmask, other=0)[None, :]
    if HAS_SHIFT:
        x = z + tl.load(fc_ptr + ch, mask=cmask, other=0.0)[None, :]
    else:
        x = z
    t = _tanh(x, TANH)
    if SYMMETRIC:
        q = tl.floor((t + 1.0) * scale * 0.5 + 0.5)
        codes = q * divisor - 1.0
        digit = q
    else:
        offset = tl.load(fc_ptr + 2 * D + ch, mask=cmask, other=0.0)[None, :]
        q = _round_half_even(t * scale - offset)
        codes = tl.math.div_rn(q, divisor)
        digit = q + tl.load(ic_ptr + D + ch, mask=cmask, other=0)[None, :].to(tl.float32)
    finite = tl.abs(z) <= 3.4028234663852886e38  # false for NaN and +-Inf
    digit = tl.where(finite & m, digit, 0.0)
    idx = tl.sum(digit.to(tl.int64) * basis, axis=1)
    bad = tl.sum(tl.where(finite | ~m, 0, 1), axis=1)
    idx = tl.where(bad > 0, -1, idx)
    _store(codes_ptr + offs, codes, m, OUT_BF16)
    tl.store(idx_ptr + rows, idx, mask=rmask)


@triton.jit
def _fsq_bwd(
    g_ptr,
    z_ptr,
    fc_ptr,
    out_ptr,
    n,
    D: tl.constexpr,
    BLOCK: tl.constexpr,
    HAS_SHIFT: tl.constexpr,
    OUT_BF16: tl.constexpr,
    TANH: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    ch = offs % D
    z = tl.load(z_ptr + offs, mask=m, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(tl.float32)
    if HAS_SHIFT:
        x = z + tl.load(fc_ptr + ch, mask=m, other=0.0)
    else:
        x = z
    t = _tanh(x, TANH)
    slope = (1.0 - t * t) * tl.load(fc_ptr + 4 * D + ch, mask=m, other=0.0)
    _store(out_ptr + offs, g * slope, m, OUT_BF16)


@triton.jit
def _fsq_decode(
    idx_ptr,
    fc_ptr,
    ic_ptr,
    codes_ptr,
    n_rows,
    D: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_R: tl.constexpr,
    SYMMETRIC: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    ch = tl.arange(0, BLOCK_D)
    rmask = rows < n_rows
    cmask = ch < D
    m = rmask[:, None] & cmask[None, :]
    idx = tl.load(idx_ptr + rows, mask=rmask, other=0)[:, None]
    basis = tl.load(ic_ptr + ch, mask=cmask, other=1)[None, :]
    levels = tl.load(ic_ptr + 2 * D + ch, mask=cmask, other=1)[None, :]
    divisor = tl.load(fc_ptr + 3 * D + ch, mask=cmask, other=1.0)[None, :]
    digit = (idx // basis) % levels
    if SYMMETRIC:
        codes = digit.to(tl.float32) * divisor - 1.0
    else:
        rounded = (digit - tl.load(ic_ptr + D + ch, mask=cmask, other=0)[None, :]).to(tl.float32)
        codes = tl.math.div_rn(rounded, divisor)
    tl.store(codes_ptr + rows[:, None] * D + ch[None, :], codes, mask=m)


def _row_block(n_rows: int, block_d: int) -> int:
    """Rows per program: as many as fit under the interpreter, a fixed GPU-sized block otherwise."""
    if INTERPRET:
        return max(1, min(triton.next_power_of_2(max(n_rows, 1)), MAX_BLOCK // block_d))
    return max(1, GPU_BLOCK // block_d)


def quantize(
    z: torch.Tensor, constants: torch.Tensor, index_constants: torch.Tensor, symmetric: bool, has_shift: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (``z``'s dtype and shape) and int64 indices (``z.shape[0]``) of ``z`` of shape (rows, d).

    ``constants`` is float32 (5, d): shift, scale, offset, divisor, grad_scale; ``index_constants`` is int64
    (3, d): mixed-radix basis, digit offset, levels. ``z`` must be float32, bfloat16 or float16.
    """
    z = z.contiguous()
    n_rows, d = z.shape
    codes = torch.empty_like(z)
    indices = torch.empty(n_rows, dtype=torch.int64, device=z.device)
    if n_rows:
        block_d = triton.next_power_of_2(d)
        block_r = _row_block(n_rows, block_d)
        _fsq_fwd[(triton.cdiv(n_rows, block_r),)](
            z,
            constants,
            index_constants,
            codes,
            indices,
            n_rows,
            D=d,
            BLOCK_D=block_d,
            BLOCK_R=block_r,
            SYMMETRIC=symmetric,
            HAS_SHIFT=has_shift,
            OUT_BF16=z.dtype == torch.bfloat16,
            TANH=TANH,
            num_warps=GPU_WARPS,
            enable_fp_fusion=False,
        )
    return codes, indices


def quantize_backward(grad: torch.Tensor, z: torch.Tensor, constants: torch.Tensor, has_shift: bool) -> torch.Tensor:
    """Straight-through gradient ``grad * grad_scale * (1 - tanh(z + shift)^2)`` in ``z``'s dtype and shape."""
    grad, z = grad.contiguous(), z.contiguous()
    out = torch.empty_like(z)
    n = z.numel()
    if n:
        block = min(triton.next_power_of_2(n), MAX_BLOCK) if INTERPRET else GPU_BLOCK
        _fsq_bwd[(triton.cdiv(n, block),)](
            grad,
            z,
            constants,
            out,
            n,
            D=z.shape[-1],
            BLOCK=block,
            HAS_SHIFT=has_shift,
            OUT_BF16=z.dtype == torch.bfloat16,
            TANH=TANH,
            num_warps=GPU_WARPS,
            enable_fp_fusion=False,
        )
    return out


def indices_to_codes(
    indices: torch.Tensor, constants: torch.Tensor, index_constants: torch.Tensor, symmetric: bool
) -> torch.Tensor:
    """Float32 codes (``indices.shape[0]``, d) of int64 ``indices`` (1-D, each in ``[0, codebook_size)``)."""
    indices = indices.contiguous()
    n_rows, d = indices.shape[0], constants.shape[1]
    codes = torch.empty(n_rows, d, dtype=torch.float32, device=indices.device)
    if n_rows:
        block_d = triton.next_power_of_2(d)
        block_r = _row_block(n_rows, block_d)
        _fsq_decode[(triton.cdiv(n_rows, block_r),)](
            indices,
            constants,
            index_constants,
            codes,
            n_rows,
            D=d,
            BLOCK_D=block_d,
            BLOCK_R=block_r,
            SYMMETRIC=symmetric,
            num_warps=GPU_WARPS,
            enable_fp_fusion=False,
        )
    return codes
