"""Parity: the paper variant against a NumPy port of the official colab; atanh/symmetric against
vector-quantize-pytorch 1.32 (skipped when it is not installed; `make test` installs it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq import FSQ

LEVEL_SETS = [[8, 5, 5, 5], [8, 6, 5], [7, 5, 5, 5, 5], [8, 8, 8, 6, 5], [4, 4, 4], [3, 5, 4], [2, 3]]


def colab_fsq(levels: list[int], z: np.ndarray, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """The official FSQ colab (App. A.1) in NumPy, float32 like JAX without x64: (codes, indices)."""
    levels_np = np.asarray(levels)
    half_l = (levels_np - 1) * (1 - eps) / 2
    offset = np.where(levels_np % 2 == 1, 0.0, 0.5)
    shift = np.tan(offset / half_l)
    f32 = np.float32
    bounded = np.tanh(z + shift.astype(f32)) * half_l.astype(f32) - offset.astype(f32)
    half_width = levels_np // 2
    codes = np.round(bounded) / half_width.astype(f32)
    basis = np.concatenate(([1], np.cumprod(levels_np[:-1]))).astype(np.int64)
    hw = half_width.astype(f32)  # JAX keeps this in float32; float64 here would truncate 1.99999997 to 1
    digits = (codes * hw + hw).astype(np.int64)
    return codes, (digits * basis).sum(-1)


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_paper_variant_matches_official_colab(levels):
    z = np.random.default_rng(0).normal(size=(100_000, len(levels))).astype(np.float32) * 2
    codes, indices = colab_fsq(levels, z)
    q = FSQ(levels)
    z_t = torch.from_numpy(z)
    out = q(z_t)
    same = out.indices.numpy() == indices
    # NumPy's and torch's float32 tanh may differ by an ulp: allow disagreement only right at a rounding boundary
    assert same.mean() > 0.9999
    if not same.all():
        distance = (q.bound(z_t[~torch.from_numpy(same)]) % 1 - 0.5).abs()
        assert distance.max() < 1e-5
    assert np.array_equal(out.quantized.numpy()[same], codes[same])


@pytest.mark.parametrize("levels", [lv for lv in LEVEL_SETS if 2 not in lv])
@pytest.mark.parametrize("variant", ["atanh", "symmetric"])
def test_variants_match_vector_quantize_pytorch(levels, variant):
    vqp = pytest.importorskip("vector_quantize_pytorch", reason="vector-quantize-pytorch not installed")
    theirs = vqp.FSQ(levels, preserve_symmetry=variant == "symmetric")
    z = torch.randn(1, 50_000, len(levels), generator=torch.Generator().manual_seed(1)) * 2
    their_codes, their_indices = theirs(z)
    ours = FSQ(levels, variant=variant)(z)
    assert torch.equal(ours.indices, their_indices.long())
    assert torch.equal(ours.quantized, their_codes)
