"""Fused Triton FSQ kernels against the eager path, on CPU tensors under Triton's interpreter.

Pinned: indices exactly equal (int64, beyond 2**31 too), codes bitwise equal (including the sign of zero), straight-
through gradients within ``2**-21 * |g|`` (the kernels' tanh may differ from torch's in the last bit), for all three
variants, d = 3..8 with L = 2, 3, 4, grouped codebooks, channel-first layout, projections, ResidualFSQ, bf16/fp16
inputs, autocast and ``torch.compile(fullgraph=True)``. Blocks are as large as Triton allows, so each launch is one
or two interpreted programs; one test forces many programs with a partial last block.
"""

from __future__ import annotations

import os

import pytest
import torch

from fsq import FSQ, ResidualFSQ
from fsq.quantizers import fused

LEVEL_SETS = [
    [8, 6, 5],
    [2, 3, 4],
    [8, 5, 5, 5],
    [7, 5, 5, 5, 5],
    [8, 8, 8, 5, 5, 5],
    [2, 3, 4, 2, 3, 4, 2],
    [4] * 8,
    [8] * 20,  # 2**60 codes: indices far beyond 2**31
]
VARIANTS = ["paper", "atanh", "symmetric"]


@pytest.fixture(autouse=True)
def kernels():
    """The kernels module, under the interpreter (GPU machines run tests/gpu instead)."""
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("interpreter tests run on CPU-only machines (tests/conftest.py sets TRITON_INTERPRET=1)")
    from fsq.quantizers import kernels

    assert kernels.INTERPRET
    return kernels


def _pair(levels, **kwargs) -> tuple[FSQ, FSQ]:
    eager = FSQ(levels, kernel="eager", **kwargs)
    triton = FSQ(levels, kernel="triton", **kwargs)
    triton.load_state_dict(eager.state_dict())
    return triton, eager


def _inputs(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``randn * 2`` plus zeros of both signs, saturating values and tiny ones."""
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * 2
    z[:8] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 3e38, -3e38])[:, None]
    return z


def _assert_same(out, ref) -> None:
    assert out.indices.dtype == torch.int64
    assert torch.equal(out.indices, ref.indices)
    assert out.quantized.dtype == ref.quantized.dtype
    assert torch.equal(_bits(out.quantized), _bits(ref.quantized))  # bitwise: the sign of zero counts


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[x.element_size()])


def _grads(q: FSQ, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    z = z.clone().requires_grad_()
    (q(z).quantized * g).sum().backward()
    return z.grad


def _assert_grad_close(grad, ref, g) -> None:
    assert grad.dtype == ref.dtype
    assert ((grad.float() - ref.float()).abs() <= 2**-21 * g.float().abs()).all()


# --------------------------------------------------------------------------------------------- forward, backward
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("levels", LEVEL_SETS, ids=lambda levels: "x".join(map(str, levels)))
def test_bit_exact_with_eager(levels, variant):
    triton, eager = _pair(levels, variant=variant)
    z = _inputs(8192, len(levels))
    _assert_same(triton(z), eager(z))
    g = torch.randn_like(z)
    _assert_grad_close(_grads(triton, z, g), _grads(eager, z, g), g)
    if levels == [8] * 20:
        assert triton(z).indices.max() > 2**31


def _near_ties(q: FSQ, ulps: int = 48) -> torch.Tensor:
    """Inputs within ``ulps`` float32 steps of every rounding boundary of every channel (each column its own)."""
    columns = []
    for i, level in enumerate(q.levels):
        scale, offset, shift = (float(c[i]) for c in (q._scale, q._offset, q._shift))
        k = torch.arange(level - 1, dtype=torch.float64)
        if q.variant == "symmetric":  # floor(scale (t + 1) / 2 + 0.5) steps where scale (t + 1) / 2 = k + 0.5
            t = (2 * k + 1) / scale - 1
        else:  # round(t * scale - offset) steps where t * scale - offset = (k - L // 2) + 0.5
            t = (k - level // 2 + 0.5 + offset) / scale
        z = (torch.atanh(t) - shift).float()
        steps = torch.arange(-ulps, ulps + 1)
        col = z[:, None].clone().expand(-1, steps.numel()).clone()
        for j, s in enumerate(steps.tolist()):  # s float32 ulps away from the boundary
            direction = torch.full_like(z, float("inf") if s > 0 else -float("inf"))
            for _ in range(abs(s)):
                col[:, j] = torch.nextafter(col[:, j], direction)
        columns.append(col.flatten())
    n = max(c.numel() for c in columns)
    return torch.stack([c.repeat(n // c.numel() + 1)[:n] for c in columns], dim=-1)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 5, 5, 5, 5], [2, 3, 4]])
def test_bit_exact_at_rounding_boundaries(levels, variant, monkeypatch):
    triton, eager = _pair(levels, variant=variant)
    z = _near_ties(eager, ulps=64)
    out = triton(z)
    native = eager(z)
    # Against an eager pass that uses the interpreter's tanh (float64 exp formula, rounded once): every other
    # operation must agree bit for bit, on any CPU.
    with monkeypatch.context() as patch:
        patch.setattr(torch, "tanh", _interpreter_tanh)
        patch.setattr(torch.Tensor, "tanh_", lambda x: x.copy_(_interpreter_tanh(x)))
        _assert_same(out, eager(z))
    # Against torch's own tanh, whose last bit depends on the CPU build (vectorised vs scalar paths): a code may
    # differ only in a channel where the two tanh values differ, and then by one level step at most.
    t = z.float() + eager._shift
    tanh_differs = torch.tanh(t) != _interpreter_tanh(t)
    changed = out.quantized != native.quantized
    assert not (changed & ~tanh_differs).any()
    step = 2 / (torch.tensor(levels, dtype=torch.float32) - 1) if variant == "symmetric" else 1 / eager._divisor
    assert ((out.quantized - native.quantized).abs() <= step * 1.0001).all()
    rows = changed.any(-1)
    assert torch.equal(out.indices[~rows], native.indices[~rows])


def _interpreter_tanh(x: torch.Tensor) -> torch.Tensor:
    """The Triton interpreter's tanh (``kernels._tanh`` with ``TANH == 1``), written with torch ops."""
    e = torch.exp(-2.0 * x.double().abs())
    t = ((1.0 - e) / (1.0 + e)).to(x.dtype)
    return torch.where(x == 0, x, torch.where(x < 0, -t, t))


def test_many_programs_with_a_partial_last_block(kernels, monkeypatch):
    monkeypatch.setattr(kernels, "MAX_BLOCK", 2**12)  # 512 rows of BLOCK_D = 8 per program
    triton, eager = _pair([7, 5, 5, 5, 5])
    z = _inputs(3000, 5)  # 6 programs, the last one partial; the backward: 4 programs of 4096 elements
    _assert_same(triton(z), eager(z))
    g = torch.randn_like(z)
    _assert_grad_close(_grads(triton, z, g), _grads(eager, z, g), g)
    indices = torch.randint(0, triton.codebook_size, (3000,))
    assert torch.equal(triton.indices_to_codes(indices), eager.indices_to_codes(indices))


# ---------------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_low_and_high_precision_inputs(dtype, variant):
    triton, eager = _pair([8, 8, 8, 6, 5], variant=variant)
    z = _inputs(8192, 5).clamp(-60000, 60000).to(dtype)
    _assert_same(triton(z), eager(z))
    g = torch.randn(z.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    grad, ref = _grads(triton, z, g), _grads(eager, z, g)
    if dtype == torch.float64:
        _assert_grad_close(grad, ref, g)
    else:  # float32 products within 2**-21 |g| can still round to neighbouring low-precision values (rarely)
        assert grad.dtype == dtype
        assert (grad != ref).float().mean() < 1e-3
        assert ((_bits(grad).int() - _bits(ref).int()).abs() <= 1).all()  # at most one ulp (subnormals included)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_quantization_runs_in_float32_under_autocast(dtype):
    triton, eager = _pair([8, 8, 8, 6, 5], dim=32)
    z = torch.randn(512, 32)
    with torch.autocast("cpu", dtype=dtype):
        out, ref = triton(z), eager(z)
    assert out.quantized.dtype == torch.float32
    _assert_same(out, ref)


# ---------------------------------------------------------------------------------------- layouts and stacks
@pytest.mark.parametrize("variant", VARIANTS)
def test_grouped_codebooks_channel_first_and_projection(variant):
    triton, eager = _pair([8, 5, 5, 5], num_codebooks=3, channel_axis=1, variant=variant)
    z = torch.randn(2, 12, 9, 7)
    out, ref = triton(z), eager(z)
    _assert_same(out, ref)
    assert out.indices.shape == (2, 9, 7, 3) and out.quantized.is_contiguous()
    assert torch.equal(triton.indices_to_codes(out.indices), eager.indices_to_codes(ref.indices))
    g = torch.randn_like(z)
    _assert_grad_close(_grads(triton, z, g), _grads(eager, z, g), g)
    triton, eager = _pair([8, 5, 5, 5], dim=24, num_codebooks=2, variant=variant)
    z, g = torch.randn(300, 24), torch.randn(300, 24)
    _assert_same(triton(z), eager(z))
    torch.testing.assert_close(_grads(triton, z, g), _grads(eager, z, g), rtol=0, atol=1e-6)  # through project_in


@pytest.mark.parametrize("variant", VARIANTS)
def test_residual_fsq(variant):
    eager = ResidualFSQ([8, 5, 5, 5], 3, variant=variant, kernel="eager")
    triton = ResidualFSQ([8, 5, 5, 5], 3, variant=variant, kernel="triton")
    z = _inputs(4096, 4)
    out, ref = triton(z), eager(z)
    _assert_same(out, ref)
    assert torch.equal(triton.indices_to_codes(out.indices), out.quantized)
    assert torch.equal(triton.indices_to_codes(out.indices[..., :2]), eager.indices_to_codes(out.indices[..., :2]))
    g = torch.randn_like(z)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    (triton(z1).quantized * g).sum().backward()
    (eager(z2).quantized * g).sum().backward()
    _assert_grad_close(z1.grad, z2.grad, g)


# ------------------------------------------------------------------------------------------- indices_to_codes
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("levels", [[8, 6, 5], [2, 3, 4, 2, 3, 4, 2], [8] * 20])
def test_indices_to_codes(levels, variant):
    triton, eager = _pair(levels, variant=variant)
    size = triton.codebook_size
    indices = torch.randint(0, min(size, 2**62), (5000,), generator=torch.Generator().manual_seed(1))
    indices[:3] = torch.tensor([0, size - 1, size // 2])
    codes = triton.indices_to_codes(indices)
    assert torch.equal(_bits(codes), _bits(eager.indices_to_codes(indices)))
    small = indices[indices < 2**31].int()
    assert torch.equal(triton.indices_to_codes(small), eager.indices_to_codes(small))
    with pytest.raises(ValueError, match="out of range"):
        triton.indices_to_codes(torch.tensor([-1]))


# ------------------------------------------------------------------------------------- compile, ops, finiteness
def test_torch_compile_fullgraph():
    triton, eager = _pair([8, 5, 5, 5], variant="atanh")
    compiled = torch.compile(triton, fullgraph=True, backend="aot_eager")
    z = _inputs(2048, 4).view(2, 1024, 4)
    g = torch.randn_like(z)
    z1 = z.clone().requires_grad_()
    out = compiled(z1)
    (out.quantized * g).sum().backward()
    _assert_same(out, eager(z))
    _assert_grad_close(z1.grad, _grads(eager, z, g), g)
    z[0, 5, 2] = float("nan")  # compiled code cannot raise: the row is marked -1, as the eager path documents
    assert compiled(z).indices[0, 5] == -1 and (compiled(z).indices[1] >= 0).all()
    decode = torch.compile(triton.indices_to_codes, fullgraph=True, backend="aot_eager")
    assert torch.equal(decode(out.indices), eager.indices_to_codes(out.indices))


def test_custom_ops_pass_opcheck():
    q = FSQ([8, 5, 5, 4])
    z = torch.randn(64, 4, requires_grad=True)
    args = (q._kernel_floats, q._kernel_ints, False, True)
    torch.library.opcheck(fused.quantize, (z, *args))
    torch.library.opcheck(fused.quantize_backward, (torch.randn(64, 4), z.detach(), q._kernel_floats, True))
    torch.library.opcheck(fused.indices_to_codes, (torch.arange(64), *args[:3]))


def test_non_finite_inputs():
    triton, eager = _pair([8, 5, 5, 5])
    z = torch.randn(6, 4)
    z[2, 1] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite value"):
        triton(z)
    z[4, 0] = float("inf")
    with pytest.raises(ValueError, match="2 non-finite value"):
        triton(z)
    unchecked = FSQ([8, 5, 5, 5], kernel="triton", check_finite=False)(z)  # documented: those indices unspecified
    assert unchecked.indices[2] == unchecked.indices[4] == -1
    keep = torch.tensor([0, 1, 3, 5])
    assert torch.equal(unchecked.indices[keep], eager(z[keep]).indices)
    assert torch.isnan(unchecked.quantized[2, 1])


def test_deferred_check_on_the_fused_path():
    q = FSQ([8, 5, 5, 5], kernel="triton", check_finite="deferred", num_codebooks=2)
    z = torch.randn(5, 8)
    z[3, 6] = float("nan")
    out = q(z)  # the kernels give the bad row's second group index -1; the flag is read at the next call
    assert out.indices[3, 1] == -1 and len(q._pending_checks) == 1
    with pytest.raises(ValueError, match="forward call 1"):
        q(torch.randn(5, 8))


# ------------------------------------------------------------------------------------------------------ choice
def test_kernel_choice(kernels, monkeypatch):
    with pytest.raises(ValueError, match="unknown kernel"):
        FSQ([8, 5], kernel="cuda")

    def refuse(*args):
        raise AssertionError("the fused kernels must not run for kernel='auto' on CPU tensors")

    monkeypatch.setattr(kernels, "quantize", refuse)
    assert FSQ([8, 5])(torch.randn(4, 2)).indices.shape == (4,)  # auto -> eager on CPU tensors
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        FSQ([8, 5], kernel="triton")(torch.randn(4, 2))
