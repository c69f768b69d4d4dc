"""FSQ: golden values per variant, grid and index invariants, gradients, dtypes, layouts, big codebooks."""

from __future__ import annotations

import copy
import math
import pickle
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsq import FSQ, NonFiniteInputError, QuantizerOutput, check_pending
from fsq.quantizers.fsq import validate_levels

# ------------------------------------------------------------------------------------------------- golden values
# Worked by hand (float64) from the formulas in the module docstring; the [3,5,4] and [8,5,5,5] rows are the
# paper's / official colab's own examples (FSQ paper, arXiv 2309.15505, and its colab).
#   paper  [8,8,2], z = [-0.1438, 0.15, -1.0]:
#     half_l = [3.4965, 3.4965, 0.4995], shift = tan(0.5 / half_l) = [0.143983, 0.143983, 1.560808]
#     bound  = [3.4965 tanh(0.000183) - 0.5, 3.4965 tanh(0.293983) - 0.5, 0.4995 tanh(0.560808) - 0.5]
#            = [-0.499360, 0.499288, -0.245953] -> round [0, 0, 0] -> digits [4, 4, 1] -> 4 + 4*8 + 1*64 = 100
#   atanh  same z: half_l = [3.5035, 3.5035, 0.5005], shift = atanh(0.5 / half_l) = [0.143699, 0.143699, 3.800201]
#     bound  = [-0.500367, 0.500363, -0.003183] -> round [-1, 1, 0] -> digits [3, 5, 1] -> 3 + 40 + 64 = 107
#   symmetric same z: k = floor((L-1)(tanh z + 1)/2 + 0.5) = [floor(3.5001), floor(4.5211), floor(0.6192)]
#     = [3, 4, 0] -> codes [2*3/7 - 1, 2*4/7 - 1, -1] = [-1/7, 1/7, -1] -> 3 + 4*8 + 0 = 35
GOLDEN = [
    # (variant, levels, z, codes, index)
    ("paper", [3, 5, 4], [0.25, 0.6, -7.0], [0.0, 0.5, -1.0], 10),
    ("paper", [8, 5, 5, 5], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], 500),
    ("paper", [8, 5, 5, 5], [0.5, -0.5, 0.2, 3.0], [0.25, -0.5, 0.0, 1.0], 893),
    ("paper", [8, 5, 5, 5], [-3.0, 0.1, 0.3, -0.3], [-1.0, 0.0, 0.5, -0.5], 336),
    ("paper", [8, 5, 5, 5], [1.0, 0.26, -0.26, 0.55], [0.5, 0.5, -0.5, 0.5], 670),
    ("paper", [8, 8, 2], [-0.1438, 0.15, -1.0], [0.0, 0.0, 0.0], 100),
    ("paper", [8, 6, 5], [1.2, -0.3, 0.9], [0.75, -1 / 3, 0.5], 167),
    ("atanh", [3, 5, 4], [0.25, 0.6, -7.0], [0.0, 0.5, -1.0], 10),
    ("atanh", [8, 5, 5, 5], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], 500),
    ("atanh", [8, 5, 5, 5], [0.5, -0.5, 0.2, 3.0], [0.25, -0.5, 0.0, 1.0], 893),
    ("atanh", [8, 8, 2], [-0.1438, 0.15, -1.0], [-0.25, 0.25, 0.0], 107),
    ("symmetric", [8, 5, 5, 5], [0.0, 0.0, 0.0, 0.0], [1 / 7, 0.0, 0.0, 0.0], 500),
    ("symmetric", [8, 5, 5, 5], [0.5, -0.5, 0.2, 3.0], [3 / 7, -0.5, 0.0, 1.0], 893),
    ("symmetric", [8, 8, 2], [-0.1438, 0.15, -1.0], [-1 / 7, 1 / 7, -1.0], 35),
    ("symmetric", [8, 6, 5], [1.2, -0.3, 0.9], [5 / 7, -0.2, 0.5], 166),
]


@pytest.mark.parametrize(("variant", "levels", "z", "codes", "index"), GOLDEN)
def test_golden_values(variant, levels, z, codes, index):
    q = FSQ(levels, variant=variant)
    out = q(torch.tensor([z]))
    assert isinstance(out, QuantizerOutput)
    torch.testing.assert_close(out.quantized, torch.tensor([codes]), rtol=0, atol=2.5e-7)  # float32 ulp
    assert out.indices.tolist() == [index]
    assert out.indices.dtype == torch.int64
    torch.testing.assert_close(q.indices_to_codes(out.indices), out.quantized, rtol=0, atol=0)


def test_even_grid_is_asymmetric_in_paper_variant():
    q = FSQ([8])
    assert q.codebook().flatten().tolist() == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]
    assert FSQ([4]).codebook().flatten().tolist() == [-1.0, -0.5, 0.0, 0.5]
    assert FSQ([2]).codebook().flatten().tolist() == [-1.0, 0.0]  # L = 2 works in the paper variant


def test_symmetric_grid_spans_minus_one_to_one():
    grid = FSQ([8], variant="symmetric").codebook().flatten()
    torch.testing.assert_close(grid, torch.linspace(-1, 1, 8))


def test_codebook_enumeration_order_matches_reference():
    # Colab "validating codebook" cell, levels [3, 4]: channel 0 varies fastest.
    expected = [(-1, -1), (0, -1), (1, -1), (-1, -0.5), (0, -0.5), (1, -0.5)]
    expected += [(-1, 0), (0, 0), (1, 0), (-1, 0.5), (0, 0.5), (1, 0.5)]
    assert FSQ([3, 4]).codebook().tolist() == [list(map(float, row)) for row in expected]


# -------------------------------------------------------------------------------------------- level validation
@pytest.mark.parametrize(
    ("levels", "match"),
    [([], "empty"), ([8, 1, 5], r"levels\[1\] = 1 is < 2"), ([8, 2.5], "not an integer"), ("855", "sequence")],
)
def test_invalid_levels_raise(levels, match):
    with pytest.raises(ValueError, match=match):
        FSQ(levels)


def test_levels_validation_accepts_integral_values():
    assert validate_levels([8.0, 5]) == (8, 5)
    assert validate_levels(torch.tensor([8, 5])) == (8, 5)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        validate_levels([2**32, 2**32])


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="unknown FSQ variant"):
        FSQ([8, 5], variant="tanh")
    with pytest.raises(ValueError, match="num_codebooks"):
        FSQ([8, 5], num_codebooks=0)


# --------------------------------------------------------------------------------------- invariants (property)
levels_strategy = st.lists(st.integers(min_value=2, max_value=17), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(levels=levels_strategy, variant=st.sampled_from(["paper", "atanh", "symmetric"]), seed=st.integers(0, 2**16))
def test_codes_on_grid_and_indices_in_range(levels, variant, seed):
    q = FSQ(levels, variant=variant)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(64, len(levels), generator=gen) * 3
    out = q(z)
    assert out.indices.min() >= 0 and out.indices.max() < q.codebook_size
    # every code value is one of its channel's L grid points
    for i in range(len(levels)):
        grid = FSQ([levels[i]], variant=variant).codebook().flatten()
        assert torch.isin(out.quantized[:, i], grid).all()
    # codes -> indices -> codes round-trips
    assert torch.equal(q.codes_to_indices(out.quantized), out.indices)
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)
    digits = q.indices_to_digits(out.indices)
    assert torch.equal(q.digits_to_indices(digits), out.indices)
    assert (digits >= 0).all() and (digits < torch.tensor(levels)).all()


@settings(max_examples=40, deadline=None)
@given(levels=levels_strategy, seed=st.integers(0, 2**16))
def test_quantization_is_monotone_per_channel(levels, seed):
    q = FSQ(levels)
    z = torch.sort(torch.randn(200, generator=torch.Generator().manual_seed(seed)) * 3).values
    codes = q(z.unsqueeze(-1).expand(-1, len(levels)).contiguous()).quantized
    assert (codes.diff(dim=0) >= 0).all()


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
@pytest.mark.parametrize("levels", [[2], [3, 4], [8, 5, 5], [7, 5, 5, 5, 5], [8, 6, 5], [2, 2, 2, 2]])
def test_full_codebook_bijection(levels, variant):
    q = FSQ(levels, variant=variant)
    book = q.codebook()
    assert book.shape == (math.prod(levels), len(levels))
    assert torch.unique(book, dim=0).shape[0] == q.codebook_size  # all rows distinct
    indices = torch.arange(q.codebook_size)
    assert torch.equal(q.codes_to_indices(book), indices)
    assert torch.equal(q.indices_to_codes(indices), book)
    # quantizing an input that bounds to each grid point returns that grid point (decoder sees every code)
    chunks = [codes for _, codes in q.iter_codebook(chunk_size=7)]
    assert torch.equal(torch.cat(chunks), book)


def test_every_code_is_reachable_by_quantization():
    q = FSQ([8, 5, 3])
    z = torch.linspace(-4, 4, 400)
    grid = torch.cartesian_prod(z, z, z)
    assert torch.unique(q(grid).indices).numel() == q.codebook_size


# ----------------------------------------------------------------------------------------------------- gradient
@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
def test_straight_through_gradient_equals_bound_derivative_over_half_width(variant):
    levels = [8, 5, 4, 3, 2]
    q = FSQ(levels, variant=variant)
    z = torch.randn(128, len(levels), dtype=torch.float32) * 2
    weights = torch.randn_like(z)
    z1 = z.clone().requires_grad_()
    (q(z1).quantized * weights).sum().backward()
    # d bound / dz by autograd of the continuous bound, divided by L // 2 (symmetric: times 2/(L-1))
    z2 = z.clone().requires_grad_()
    divisor = torch.tensor([L // 2 if variant != "symmetric" else (L - 1) / 2 for L in levels])
    (q.bound(z2) / divisor * weights).sum().backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-5, atol=1e-7)


def test_gradient_flows_through_projections():
    q = FSQ([8, 5, 5, 5], dim=16)
    z = torch.randn(10, 16, requires_grad=True)
    q(z).quantized.square().sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert q.project_in.weight.grad.abs().sum() > 0 and q.project_out.weight.grad.abs().sum() > 0


def test_aux_loss_is_zero_float32_scalar():
    out = FSQ([5, 5])(torch.randn(3, 2, dtype=torch.float64))
    assert out.aux_loss.shape == () and out.aux_loss.dtype == torch.float32 and out.aux_loss.item() == 0.0


# -------------------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_dtype_matrix(dtype):
    q = FSQ([8, 8, 8, 6, 5])  # 15360 codes: bf16 sums of digit*basis would be wrong above 256
    z = (torch.randn(4096, 5) * 2).to(dtype)
    out = q(z)
    assert out.quantized.dtype == dtype
    assert out.indices.dtype == torch.int64
    reference = q(z.float())  # the same values, in float32
    assert torch.equal(out.indices, reference.indices)
    assert torch.equal(out.quantized, reference.quantized.to(dtype))
    assert out.indices.max() < q.codebook_size


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_quantization_runs_in_float32_under_cpu_autocast(dtype):
    q = FSQ([8, 8, 8, 6, 5], dim=32)
    z = torch.randn(512, 32)
    with torch.autocast("cpu", dtype=dtype):
        out = q(z)
        codes_under_autocast = q.project_in(z)
    assert out.quantized.dtype == torch.float32  # input dtype
    # indices equal quantizing the (autocast) projection output in float32 outside autocast
    plain = FSQ([8, 8, 8, 6, 5])
    assert torch.equal(out.indices, plain(codes_under_autocast.float()).indices)


# -------------------------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("num_codebooks", [1, 3])
def test_channel_first_equals_channel_last(num_codebooks):
    last = FSQ([8, 5, 5, 5], num_codebooks=num_codebooks)
    first = FSQ([8, 5, 5, 5], num_codebooks=num_codebooks, channel_axis=1)
    z = torch.randn(2, 4 * num_codebooks, 5, 7)
    out_first = first(z)
    out_last = last(z.permute(0, 2, 3, 1))
    assert torch.equal(out_first.quantized, out_last.quantized.permute(0, 3, 1, 2))
    assert torch.equal(out_first.indices, out_last.indices)
    expected = (2, 5, 7) if num_codebooks == 1 else (2, 5, 7, num_codebooks)
    assert out_first.indices.shape == expected
    assert torch.equal(first.indices_to_codes(out_first.indices), out_first.quantized)
    assert torch.equal(first.codes_to_indices(out_first.quantized), out_first.indices)


def test_channel_axis_is_never_guessed():
    q = FSQ([5, 5, 5])  # channels last, whatever ndim is
    z = torch.randn(2, 3, 4, 3)
    assert q(z).indices.shape == (2, 3, 4)
    with pytest.raises(ValueError, match="expected 3"):
        FSQ([5, 5, 5])(torch.randn(2, 3, 4, 5))


@pytest.mark.parametrize("shape", [(4,), (1, 4), (3, 4), (5, 3, 4), (2, 3, 5, 4), (0, 4), (63, 4), (129, 4)])
def test_any_leading_shape(shape):
    q = FSQ([8, 5, 5, 5])
    z = torch.randn(shape)
    out = q(z)
    assert out.quantized.shape == shape and out.indices.shape == shape[:-1]
    flat = q(z.reshape(-1, 4))
    assert torch.equal(out.indices.reshape(-1), flat.indices)


def test_num_codebooks_groups_and_projection():
    q = FSQ([8, 5, 5, 5], dim=64, num_codebooks=2)
    z = torch.randn(3, 10, 64)
    out = q(z)
    assert out.quantized.shape == (3, 10, 64) and out.indices.shape == (3, 10, 2)
    torch.testing.assert_close(q.indices_to_quantized(out.indices), out.quantized)
    # each group is an independent FSQ over its own 4 channels
    inner = q.project_in(z)
    single = FSQ([8, 5, 5, 5])
    assert torch.equal(out.indices[..., 1], single(inner[..., 4:]).indices)
    with pytest.raises(ValueError, match="trailing axis of size 2"):
        q.indices_to_codes(out.indices[..., 0])


def test_wrong_input_raises():
    with pytest.raises(TypeError, match="floating-point"):
        FSQ([5, 5])(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="channel_axis=3 is out of range"):
        FSQ([5, 5], channel_axis=3)(torch.randn(2, 2))


# ---------------------------------------------------------------------------------------------- big codebooks
def test_huge_codebook_allocates_nothing_proportional():
    q = FSQ([8] * 20)  # 2**60 codes
    assert q.codebook_size == 2**60 and isinstance(q.codebook_size, int)
    total_bytes = sum(b.numel() * b.element_size() for b in q.buffers())
    assert total_bytes < 50_000
    with pytest.raises(ValueError, match="iter_codebook"):
        q.codebook()
    start, first = next(q.iter_codebook(chunk_size=4))
    assert start == 0 and first.shape == (4, 20)


def test_int64_indices_past_2_31():
    q = FSQ([16] * 8 + [5])  # 5 * 2**32 codes
    z = torch.full((1, 9), 10.0)  # saturates every channel at its top level
    out = q(z)
    assert out.indices.item() == q.codebook_size - 1 == 5 * 2**32 - 1
    indices = torch.tensor([0, 2**31 - 1, 2**31, 2**32 + 12345, q.codebook_size - 1])
    codes = q.indices_to_codes(indices)
    assert torch.equal(q.codes_to_indices(codes), indices)
    assert torch.equal(q(_preimage(q, codes)).indices, indices)


def _preimage(q: FSQ, codes: torch.Tensor) -> torch.Tensor:
    """An input that quantizes to ``codes`` (paper variant): invert ``bound`` near each level."""
    half_l = q._scale.double()
    offset, shift = q._offset.double(), q._shift.double()
    target = codes.double() * torch.tensor([level // 2 for level in q.levels], dtype=torch.float64)
    target = torch.minimum(torch.maximum(target, -half_l - offset + 0.25), half_l - offset - 0.25)  # inside range
    return (torch.atanh((target + offset) / half_l) - shift).float()


def test_out_of_range_indices_raise():
    q = FSQ([8, 5, 5, 5])
    with pytest.raises(ValueError, match=r"valid range is \[0, 999\]"):
        q.indices_to_codes(torch.tensor([1000]))
    with pytest.raises(ValueError, match="out of range"):
        q.indices_to_codes(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        q.indices_to_codes(torch.tensor([1.0]))


# ----------------------------------------------------------------------------------------------------- non-finite
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises_by_default(bad):
    z = torch.randn(4, 4)
    z[2, 1] = bad
    with pytest.raises(ValueError, match="1 non-finite value"):
        FSQ([8, 5, 5, 5])(z)


def test_huge_finite_input_is_not_mistaken_for_non_finite():
    z = torch.full((8, 4), 3e38)  # the cheap sum check overflows to inf; the exact check must clear it
    assert FSQ([8, 5, 5, 5])(z).indices.tolist() == [999] * 8


def test_check_finite_false_skips_the_check():
    z = torch.randn(4, 4)
    z[0, 0] = float("nan")
    out = FSQ([8, 5, 5, 5], check_finite=False)(z)  # documented: no error, indices of that row unspecified
    assert torch.isnan(out.quantized[0, 0])
    assert torch.equal(out.indices[1:], FSQ([8, 5, 5, 5])(z[1:]).indices)


def test_deferred_check_raises_at_the_next_call_naming_the_bad_call():
    q = FSQ([8, 5, 5, 5], check_finite="deferred")
    good, bad = torch.randn(4, 4), torch.randn(4, 4)
    bad[1, 3] = float("nan")
    q(good)
    out = q(bad)  # call 2: no raise here, the flag is queued
    assert out.indices.shape == (4,) and len(q._pending_checks) == 1  # call 1 was polled (CPU flags are ready)
    with pytest.raises(NonFiniteInputError, match="forward call 2"):
        q(good)
    q(good)  # reported once: the queue starts afresh


def test_check_pending_raises_for_the_last_call_and_passes_when_all_finite():
    model = torch.nn.Sequential(torch.nn.Identity(), FSQ([8, 5, 5, 5], check_finite="deferred"))
    model(torch.randn(2, 4))
    check_pending(model)  # nothing bad: no raise, queue drained
    assert len(model[1]._pending_checks) == 0
    bad = torch.randn(2, 4)
    bad[0, 0] = float("inf")
    model(bad)
    with pytest.raises(ValueError, match="non-finite values"):
        check_pending(model)


def test_default_check_raises_at_the_call_on_cpu_and_modes_are_validated():
    assert FSQ([8, 5]).check_finite == "auto" and FSQ([8, 5], check_finite=False).check_finite == "off"
    z = torch.randn(3, 2)
    z[0, 0] = float("nan")
    for mode in (True, "auto", "sync"):
        with pytest.raises(NonFiniteInputError, match="1 non-finite value"):
            FSQ([8, 5], check_finite=mode)(z)
    with pytest.raises(ValueError, match="check_finite must be True, False or one of"):
        FSQ([8, 5], check_finite="later")


def test_pending_checks_are_not_copied():
    q = FSQ([8, 5, 5, 5], check_finite="deferred")
    bad = torch.randn(2, 4)
    bad[0, 0] = float("nan")
    q(bad)
    for twin in (copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
        assert len(twin._pending_checks) == 0
        twin(torch.randn(2, 4))  # the copy never saw the bad input
    with pytest.raises(NonFiniteInputError):
        q(torch.randn(2, 4))


# -------------------------------------------------------------------------------------------------- state / repr
def test_state_dict_holds_only_learned_parameters():
    assert FSQ([8, 5, 5, 5]).state_dict() == {}
    keys = set(FSQ([8, 5, 5, 5], dim=8).state_dict())
    assert keys == {"project_in.weight", "project_in.bias", "project_out.weight", "project_out.bias"}
    assert "codebook_size=1000" in repr(FSQ([8, 5, 5, 5]))


def test_fsq_works_without_triton():
    """triton is optional: with its import blocked, FSQ takes the eager path and kernel='triton' fails clearly."""
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, fsq\n"
        "assert fsq.FSQ([8, 5, 5, 5])(torch.randn(3, 4)).indices.shape == (3,)\n"
        "try:\n    fsq.FSQ([8, 5], kernel='triton')\n"
        "except RuntimeError as e:\n    assert 'pip install triton' in str(e)\n"
        "else:\n    raise AssertionError('kernel=triton without triton must fail')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
