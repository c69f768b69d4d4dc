"""Quantizers on bad input (issue: reliability round 3): every case is a clear error or correct output.

Levels of the wrong type, digits out of range, non-finite or off-grid codes, indices given as lists, an empty
batch for an EMA codebook, and meta-device modules (shapes only). Each test is the regression test of one case.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq import FSQ, VQ, ResidualFSQ
from fsq.quantizers import base
from fsq.quantizers.fsq import validate_levels


# ------------------------------------------------------------------------------------------------------ levels
@pytest.mark.parametrize(
    ("levels", "match"),
    [
        ([8, "5"], r"levels\[1\] = '5' is not an integer"),
        ([8, b"5"], r"levels\[1\] = b'5' is not an integer"),
        ([True, 5], r"levels\[0\] = True is not an integer"),
        ([8, None], r"levels\[1\] = None is not an integer"),
        ([8, float("inf")], "is not an integer"),
        ([8, float("nan")], "is not an integer"),
        ([8, [5]], "is not an integer"),
        ([8, 1], r"levels\[1\] = 1 is < 2"),
        ([8, -5], "is < 2"),
        (torch.tensor([True, True]), "1-D sequence of integers"),
        (torch.tensor([[8, 5]]), "1-D sequence of integers"),
        (np.array([8, 5.5]), "not an integer"),
        ({8, 5}, "sequence of integers"),
        (8, "sequence of integers"),
        ("85", "sequence of integers"),
    ],
)
def test_levels_of_the_wrong_type_are_refused(levels, match):
    with pytest.raises(ValueError, match=match):
        FSQ(levels)
    with pytest.raises(ValueError, match=match):
        ResidualFSQ(levels, 2)


def test_levels_of_integer_types_are_accepted():
    for levels in ([8, 5], (8, 5), [np.int64(8), np.int32(5)], np.array([8, 5]), torch.tensor([8, 5]), [8.0, 5.0]):
        assert validate_levels(levels) == (8, 5)
        assert all(type(level) is int for level in FSQ(levels).levels)
    assert validate_levels([torch.tensor(8), 5]) == (8, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(dim="16"), "dim = '16' is not an integer"),
        (dict(dim=0), "dim = 0 is < 1"),
        (dict(dim=True), "dim = True is not an integer"),
        (dict(num_codebooks=True), "num_codebooks = True is not an integer"),
        (dict(num_codebooks="2"), "num_codebooks = '2' is not an integer"),
        (dict(num_codebooks=1.5), "num_codebooks = 1.5 is not an integer"),
    ],
)
def test_counts_of_the_wrong_type_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FSQ([8, 5, 5, 5], **kwargs)


# ------------------------------------------------------------------------------------------------------ digits
@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
@pytest.mark.parametrize(
    ("digits", "match"),
    [
        ([[9, 0, 0, 0]], r"digits\[0, 0\] = 9, but channel 0 has 8 levels \(valid digits 0..7\)"),
        ([[8, 0, 0, 0]], r"channel 0 has 8 levels"),
        ([[0, 0, 5, 0]], r"digits\[0, 2\] = 5, but channel 2 has 5 levels \(valid digits 0..4\)"),
        ([[0, -1, 0, 0]], r"digits\[0, 1\] = -1"),
        ([[[0, 0, 0, 0], [7, 4, 4, 9]]], r"digits\[0, 1, 3\] = 9"),
    ],
)
def test_digits_out_of_range_are_refused(variant, digits, match):
    q = FSQ([8, 5, 5, 5], variant=variant)
    for convert in (torch.tensor, list):
        with pytest.raises(ValueError, match=match):
            q.digits_to_indices(convert(digits))
        with pytest.raises(ValueError, match=match):
            q.digits_to_codes(convert(digits))


def test_digits_of_the_wrong_shape_or_dtype_are_refused():
    q = FSQ([8, 5, 5, 5])
    with pytest.raises(ValueError, match="last axis of size 4"):
        q.digits_to_indices(torch.tensor([[1]]))  # broadcast against the basis before: silently index 1 + 8 + 40 + 200
    with pytest.raises(ValueError, match="last axis of size 4"):
        q.digits_to_codes(torch.tensor(3))
    with pytest.raises(TypeError, match="digits must be an integer tensor"):
        q.digits_to_indices(torch.tensor([[1.5, 0, 0, 0]]))
    with pytest.raises(TypeError, match="digits must be an integer tensor"):
        q.digits_to_codes(torch.tensor([[True, False, False, False]]))


def test_valid_digits_round_trip_as_tensors_and_lists():
    q = FSQ([8, 5, 5, 5])
    digits = q.indices_to_digits(torch.arange(q.codebook_size))
    assert torch.equal(q.digits_to_indices(digits), torch.arange(q.codebook_size))
    assert torch.equal(q.digits_to_codes(digits), q.codebook())
    assert q.digits_to_indices([[7, 4, 4, 4], [0, 0, 0, 0]]).tolist() == [999, 0]
    assert q.digits_to_codes([7, 4, 4, 4]).tolist() == [0.75, 1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------------------------------- codes
@pytest.mark.parametrize("bad", [float("inf"), -float("inf"), float("nan")])
def test_non_finite_codes_are_refused(bad):
    q = FSQ([8, 5, 5, 5])
    for codes in ([[bad, 0.0, 0.0, 0.0]], [[bad] * 4], [[0.0, 0.5, bad, 0.0]]):
        with pytest.raises(ValueError, match=r"non-finite value\(s\) \(NaN or Inf\)"):
            q.codes_to_indices(torch.tensor(codes))
        with pytest.raises(ValueError, match="non-finite"):
            q.codes_to_indices(torch.tensor(codes), snap=True)  # snapping never hides NaN/Inf
        with pytest.raises(ValueError, match="non-finite"):
            q.codes_to_digits(torch.tensor(codes))


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
@pytest.mark.parametrize("value", [1e19, -1e19, 3e38, 1.25, -1.5, 0.3, 0.1])
def test_off_grid_codes_are_refused(variant, value):
    q = FSQ([8, 5, 5, 5], variant=variant)
    codes = q.codebook()[:3].clone()
    codes[1, 2] = value
    with pytest.raises(ValueError, match=r"not on the FSQ grid.*channel 2, which takes 5 values from -1 to 1"):
        q.codes_to_indices(codes)
    with pytest.raises(ValueError, match="not on the FSQ grid"):
        q.codes_to_digits(codes)


def test_snap_maps_finite_values_to_the_nearest_code():
    q = FSQ([8, 5, 5, 5])
    codes = torch.tensor([[0.3, 0.26, 1e19, -7.0]])
    assert q.codes_to_indices(codes, snap=True).tolist() == q.codes_to_indices([[0.25, 0.5, 1.0, -1.0]]).tolist()


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 6, 5], [7, 5, 5, 5, 5], [15, 16, 2]])
def test_grid_codes_in_any_dtype_are_accepted(variant, dtype, levels):
    """A grid code rounded to bf16/fp16 (a model's output in that dtype) is still on the grid."""
    q = FSQ(levels, variant=variant)
    book = q.codebook()
    assert torch.equal(q.codes_to_indices(book.to(dtype)), torch.arange(q.codebook_size))


def test_codes_as_lists_are_accepted_and_other_types_refused():
    q = FSQ([8, 5, 5, 5])
    assert q.codes_to_indices([[0.0, 0.0, 0.0, 0.0], [0.75, 1, 1, 1]]).tolist() == [500, 999]
    with pytest.raises(TypeError, match="codes must be a floating-point tensor or a"):
        q.codes_to_indices([["a", 0, 0, 0]])
    with pytest.raises(TypeError, match="codes must be a real tensor"):
        q.codes_to_indices(torch.zeros(1, 4, dtype=torch.complex64))


# ----------------------------------------------------------------------------------------------------- indices
def test_indices_as_lists_are_accepted_everywhere():
    q = FSQ([8, 5, 5, 5], dim=6)
    expected = q.indices_to_codes(torch.tensor([1, 2]))
    assert torch.equal(q.indices_to_codes([1, 2]), expected)
    assert torch.equal(q.indices_to_codes((1, 2)), expected)
    assert torch.equal(q.indices_to_codes(7), q.indices_to_codes(torch.tensor(7)))
    assert torch.equal(q.indices_to_quantized([1, 2]), q.indices_to_quantized(torch.tensor([1, 2])))
    assert q.indices_to_digits([1, 999]).tolist() == [[1, 0, 0, 0], [7, 4, 4, 4]]
    grouped = FSQ([8, 5, 5, 5], num_codebooks=2)
    assert torch.equal(grouped.indices_to_codes([[1, 2]]), grouped.indices_to_codes(torch.tensor([[1, 2]])))
    residual = ResidualFSQ([8, 5, 5, 5], 3)
    assert torch.equal(residual.indices_to_codes([[1, 2, 3]]), residual.indices_to_codes(torch.tensor([[1, 2, 3]])))
    vq = VQ(16, 4)
    assert torch.equal(vq.indices_to_codes([3, 4]), vq.indices_to_codes(torch.tensor([3, 4])))
    assert q.indices_to_codes([]).shape == (0, 4)


def test_bad_index_lists_are_refused_clearly():
    q = FSQ([8, 5, 5, 5])
    with pytest.raises(ValueError, match=r"valid range is \[0, 999\]"):
        q.indices_to_codes([1, 1000])
    with pytest.raises(TypeError, match="indices must be an integer tensor, got torch.float32"):
        q.indices_to_codes([1.0, 2.0])
    with pytest.raises(TypeError, match="indices must be an integer tensor or a"):
        q.indices_to_codes(["1"])
    with pytest.raises(TypeError, match="indices must be an integer tensor"):
        VQ(16, 4).indices_to_codes([0.5])
    with pytest.raises(TypeError, match="indices must be an integer tensor"):
        ResidualFSQ([8, 5, 5, 5], 2).indices_to_codes([[True, False]])


@pytest.mark.parametrize("module", [FSQ([8, 5, 5, 5]), VQ(16, 4), ResidualFSQ([8, 5, 5, 5], 2)], ids=type)
def test_forward_of_a_list_is_a_clear_type_error(module):
    with pytest.raises(TypeError, match="input must be a floating-point tensor, got list"):
        module([[0.1, 0.2, 0.3, 0.4]])


# ------------------------------------------------------------------------------------------ VQ: empty batches
@pytest.mark.parametrize("recipe", ["uvim", "uvim_nosplit", "uvim_short"])
def test_empty_batch_leaves_the_ema_state_unchanged(recipe):
    torch.manual_seed(0)
    vq = VQ(16, 4, recipe=recipe).train()
    vq(torch.randn(64, 4))  # some real history first
    counts, sums = vq.ema_counts.clone(), vq.ema_sums.clone()
    for empty in (torch.randn(0, 4), torch.randn(2, 0, 4), torch.randn(0, 4, 3, 3).movedim(1, -1)):
        out = vq(empty)
        assert out.quantized.shape == empty.shape and out.indices.shape == empty.shape[:-1]
        assert torch.equal(vq.ema_counts, counts) and torch.equal(vq.ema_sums, sums)
        assert vq.last_num_splits == 0 and float(out.aux_loss) == 0.0


def test_empty_batch_under_distributed_leaves_the_ema_state_unchanged(tmp_path):
    """The DDP path decides on the device (every rank joins the reductions): an empty global batch changes nothing,
    and a non-empty one updates exactly as outside DDP."""
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    torch.manual_seed(0)
    vq = VQ(16, 4, recipe="uvim").train()
    torch.manual_seed(0)
    plain = VQ(16, 4, recipe="uvim").train()
    z = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        vq(z)
        counts, sums = vq.ema_counts.clone(), vq.ema_sums.clone()
        vq(torch.randn(0, 4))
    finally:
        dist.destroy_process_group()
    assert torch.equal(vq.ema_counts, counts) and torch.equal(vq.ema_sums, sums)
    plain(z)
    assert torch.equal(plain.ema_counts, counts) and torch.equal(plain.ema_sums, sums)


# ------------------------------------------------------------------------------------------------ meta device
@pytest.mark.parametrize(
    ("kwargs", "shape", "indices_shape"),
    [
        (dict(levels=[8, 5, 5, 5]), (2, 3, 4), (2, 3)),
        (dict(levels=[8, 5, 5, 5], dim=16), (2, 3, 16), (2, 3)),
        (dict(levels=[8, 5, 5, 5], dim=16, channel_axis=1), (2, 16, 5, 7), (2, 5, 7)),
        (dict(levels=[8, 5, 5, 5], num_codebooks=2, variant="symmetric"), (2, 3, 8), (2, 3, 2)),
    ],
)
def test_fsq_on_the_meta_device_gives_shapes(kwargs, shape, indices_shape):
    with torch.device("meta"):
        q = FSQ(**kwargs)
        out = q(torch.randn(shape, requires_grad=True))
    assert out.quantized.device.type == "meta" and out.quantized.shape == shape
    assert out.indices.shape == indices_shape and out.indices.dtype == torch.int64
    assert out.aux_loss.device.type == "meta"
    assert q.indices_to_quantized(out.indices).shape == shape
    assert q.indices_to_codes(out.indices).device.type == "meta"
    out.quantized.sum().backward()  # the straight-through gradient traces on meta as well
    moved = FSQ(**kwargs).to("meta")  # built on CPU, then moved
    assert moved(torch.empty(shape, device="meta")).indices.shape == indices_shape


def test_residual_and_vq_on_the_meta_device_give_shapes():
    with torch.device("meta"):
        residual = ResidualFSQ([8, 5, 5, 5], 3, dim=16)
        out = residual(torch.randn(2, 5, 16))
        assert out.quantized.shape == (2, 5, 16) and out.indices.shape == (2, 5, 3)
        assert residual.indices_to_quantized(out.indices).shape == (2, 5, 16)
        for recipe in ("maskgit", "uvim"):
            vq = VQ(32, 4, recipe=recipe).train()
            out = vq(torch.randn(2, 5, 4))
            assert out.quantized.shape == (2, 5, 4) and out.indices.shape == (2, 5)
            assert vq.indices_to_codes(out.indices).shape == (2, 5, 4)


def test_autocast_off_is_a_no_op_where_autocast_does_not_exist():
    with base.autocast_off("meta"):
        pass
    with torch.autocast("cpu", dtype=torch.bfloat16), base.autocast_off("cpu"):
        assert not torch.is_autocast_enabled("cpu")


# ------------------------------------------------------------------------------------------------ hot paths
def test_forward_and_decoding_never_run_the_host_checks_of_digits_or_codes(monkeypatch):
    """Checks that read values on the host wait for the GPU: forward and the decoders (which build their digits
    in range) must not call them, so they add no synchronisation to training or decoding."""

    def fail(*args, **kwargs):
        raise AssertionError("a host-side check ran on a hot path")

    monkeypatch.setattr(FSQ, "_check_digits", fail)
    monkeypatch.setattr(FSQ, "_check_on_grid", fail)
    z = torch.randn(4, 9, 4)
    for module in (FSQ([8, 5, 5, 5]), ResidualFSQ([8, 5, 5, 5], 3)):
        out = module(z)
        module.indices_to_codes(out.indices)
    list(FSQ([8, 5, 5, 5]).iter_codebook(chunk_size=100))
