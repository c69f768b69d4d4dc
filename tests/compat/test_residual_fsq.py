"""The ResidualFSQ / GroupedResidualFSQ drop-ins against vector-quantize-pytorch 1.32.0: bit-identical outputs,
indices, gradients, codes and RNG use over many configurations, strict state dicts both ways, and the same
failures (the parity tests skip when vector-quantize-pytorch is not installed; CI installs it)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsq.compat import residual_fsq
from fsq.compat.vector_quantize_pytorch import DropInError, GroupedResidualFSQ, ResidualFSQ


@pytest.fixture(scope="module")
def vqp():
    return pytest.importorskip("vector_quantize_pytorch", reason="vector-quantize-pytorch not installed")


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bit pattern, so -0.0 vs 0.0 and NaN payloads count as differences."""
    return t.view({1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def assert_identical(ours, theirs) -> None:
    if isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_identical(a, b)
        return
    if theirs is None:
        assert ours is None
        return
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (ours.dtype, theirs.dtype, ours.shape)
    assert torch.equal(bits(ours), bits(theirs))


def same_or_both_fail(ours, theirs, *args) -> None:
    """``ours(*args)`` equals ``theirs(*args)`` bit for bit, or both raise (their quirks on channel-first indices)."""
    try:
        expected = theirs(*args)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 -- theirs raises einx/einops/assert errors, ours DropInError
            ours(*args)
        return
    assert_identical(ours(*args), expected)


def pair(vqp, grouped: bool = False, **kwargs):
    """(ours, theirs) built from the same seed; ours also loaded strictly from theirs' state dict."""
    torch.manual_seed(0)
    theirs = (vqp.GroupedResidualFSQ if grouped else vqp.ResidualFSQ)(**kwargs)
    torch.manual_seed(0)
    ours = (GroupedResidualFSQ if grouped else ResidualFSQ)(**kwargs)
    for (key, value), (their_key, their_value) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert key == their_key and torch.equal(value, their_value)  # same RNG draws at construction
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def run(module, x: torch.Tensor, train: bool, **forward_kwargs):
    """Outputs, input gradient, parameter gradients and the RNG state after one forward/backward."""
    module.train(train)
    x = x.clone().requires_grad_()
    torch.manual_seed(5)
    out = module(x, **forward_kwargs)
    rng_after = torch.rand(4)
    weight = torch.randn(out[0].shape, generator=torch.Generator().manual_seed(3)).to(out[0].dtype)
    if out[0].requires_grad:
        (out[0] * weight).sum().backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return out, x.grad, grads, rng_after


def compare(vqp, kwargs, shape, train, dtype=torch.float32, grouped=False, **forward_kwargs):
    ours, theirs = pair(vqp, grouped=grouped, **kwargs)
    x = (torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 1.5).to(dtype)
    out, grad, grads, rng = run(ours, x, train, **forward_kwargs)
    their_out, their_grad, their_grads, their_rng = run(theirs, x, train, **forward_kwargs)
    assert len(out) == len(their_out)
    assert_identical(tuple(out), tuple(their_out))
    assert_identical(grad, their_grad)
    assert grads.keys() == their_grads.keys()
    for name, g in grads.items():
        assert_identical(g, their_grads[name])
    assert torch.equal(rng, their_rng)  # the same draws from torch's RNG
    return ours, theirs, out


# --------------------------------------------------------------------------------------------- ResidualFSQ
# (id, constructor kwargs, input shape)
CONFIGS = [
    ("8555-q1", dict(levels=[8, 5, 5, 5], num_quantizers=1), (2, 64, 4)),
    ("8555-q4", dict(levels=[8, 5, 5, 5], num_quantizers=4), (2, 64, 4)),
    ("865-q8-proj", dict(levels=[8, 6, 5], num_quantizers=8, dim=16), (2, 64, 16)),
    ("75555-q3-proj", dict(levels=[7, 5, 5, 5, 5], num_quantizers=3, dim=32), (3, 40, 32)),
    ("2222-q6", dict(levels=[2, 2, 2, 2], num_quantizers=6), (2, 64, 4)),
    ("3-q5", dict(levels=[3], num_quantizers=5), (2, 64, 1)),
    ("8886-q2-cf3d", dict(levels=[8, 8, 8, 6], num_quantizers=2, is_channel_first=True), (2, 4, 50)),
    ("555-q3-cf4d-proj", dict(levels=[5, 5, 5], num_quantizers=3, dim=8, is_channel_first=True), (2, 8, 5, 6)),
    ("555-q3-cf5d", dict(levels=[5, 5, 5], num_quantizers=3, is_channel_first=True), (2, 3, 2, 3, 4)),
    ("555-q2-cf2d", dict(levels=[5, 5, 5], num_quantizers=2, is_channel_first=True), (16, 3)),
    ("865-soft-none", dict(levels=[8, 6, 5], num_quantizers=4, bound_hard_clamp=False), (2, 64, 3)),
    (
        "865-soft-float",
        dict(levels=[8, 6, 5], num_quantizers=4, bound_hard_clamp=False, soft_clamp_input_value=1.3),
        (2, 64, 3),
    ),
    (
        "865-soft-list",
        dict(levels=[8, 6, 5], num_quantizers=3, bound_hard_clamp=False, soft_clamp_input_value=[1.1, 1.2, 2.0]),
        (2, 64, 3),
    ),
    (
        "865-soft-tensor",
        dict(levels=[8, 6, 5], num_quantizers=3, bound_hard_clamp=False, soft_clamp_input_value=torch.tensor([1.5])),
        (2, 64, 3),
    ),
    ("865-noise", dict(levels=[8, 6, 5], num_quantizers=3, noise_dropout=0.4), (2, 64, 3)),
    ("555-rotation-proj", dict(levels=[5, 5, 5], num_quantizers=3, orthogonal_rotation=True, dim=6), (2, 64, 6)),
    ("8555-no-bias", dict(levels=[8, 5, 5, 5], num_quantizers=2, dim=6, projection_has_bias=False), (2, 64, 6)),
]
DROPOUT_CONFIGS = [
    ("q6", dict(levels=[8, 5, 5, 5], num_quantizers=6, quantize_dropout=True), (2, 64, 4)),
    (
        "q8-cutoff-multiple",
        dict(
            levels=[5, 5, 5],
            num_quantizers=8,
            quantize_dropout=True,
            quantize_dropout_cutoff_index=2,
            quantize_dropout_multiple_of=3,
            dim=12,
        ),
        (2, 64, 12),
    ),
    ("q4-cf4d", dict(levels=[8, 6, 5], num_quantizers=4, quantize_dropout=True, is_channel_first=True), (2, 3, 4, 5)),
    ("q1-no-dropout", dict(levels=[8, 6, 5], num_quantizers=1, quantize_dropout=True), (2, 64, 3)),
]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("kwargs", "shape"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_forward_backward_bit_identical(vqp, kwargs, shape, train):
    ours, theirs, (_, indices) = compare(vqp, kwargs, shape, train)
    ours.eval(), theirs.eval()
    # their decoders read the stage axis last, so channel-first indices (b, q, ...) decode wrongly or fail there
    same_or_both_fail(ours.get_output_from_indices, theirs.get_output_from_indices, indices)
    same_or_both_fail(ours.get_codes_from_indices, theirs.get_codes_from_indices, indices)
    if not kwargs.get("is_channel_first"):
        assert ours.get_output_from_indices(indices).shape == shape


@pytest.mark.parametrize(("kwargs", "shape"), [c[1:] for c in CONFIGS[:6]], ids=[c[0] for c in CONFIGS[:6]])
def test_return_all_codes_bit_identical(vqp, kwargs, shape):
    for train in (True, False):
        _, _, out = compare(vqp, kwargs, shape, train, return_all_codes=True)
        quantized, _, all_codes = out
        # the codes sum to the output before project_out: check the drop-in's reading of them
        if "dim" not in kwargs:
            torch.testing.assert_close(all_codes.sum(0), quantized.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_input_dtypes_bit_identical(vqp, dtype):
    compare(vqp, dict(levels=[8, 5, 5, 5], num_quantizers=4), (2, 64, 4), True, dtype=dtype)
    compare(vqp, dict(levels=[8, 6, 5], num_quantizers=3, force_quantization_f32=False), (2, 64, 3), False, dtype=dtype)


@pytest.mark.parametrize(("kwargs", "shape"), [c[1:] for c in DROPOUT_CONFIGS], ids=[c[0] for c in DROPOUT_CONFIGS])
def test_quantize_dropout_bit_identical(vqp, kwargs, shape):
    """Seeds from torch's RNG (several draws: several dropout depths) and fixed seeds; eval and no-grad keep all."""
    ours, theirs = pair(vqp, **kwargs)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    depths = set()
    for seed in range(12):
        for forward_kwargs in ({}, {"rand_quantize_dropout_fixed_seed": seed * 7919}):
            out, grad, grads, rng = run(ours, x, True, **forward_kwargs)
            their_out, their_grad, their_grads, their_rng = run(theirs, x, True, **forward_kwargs)
            assert_identical(tuple(out), tuple(their_out))
            assert_identical(grad, their_grad)
            assert torch.equal(rng, their_rng)
            indices = out[1]
            stage_axis = 1 if kwargs.get("is_channel_first") else -1
            stages = indices.movedim(stage_axis, -1).reshape(-1, indices.shape[stage_axis])
            depths.add(int((stages != -1).all(0).sum()))  # the number of stages kept
            same_or_both_fail(ours.get_codes_from_indices, theirs.get_codes_from_indices, indices)
            same_or_both_fail(ours.get_output_from_indices, theirs.get_output_from_indices, indices)
        torch.manual_seed(seed)  # a different draw next round
    if ours.quantize_dropout:
        assert len(depths) > 1  # the grid above really varied the depth
    with torch.no_grad():  # no dropout without gradients
        assert_identical(ours.train()(x), theirs.train()(x))
    assert_identical(ours.eval()(x), theirs.eval()(x))


def test_coarse_indices_decode_bit_identical(vqp):
    """With quantize dropout, the first k stages' indices decode to the coarser output (padded with -1)."""
    ours, theirs = pair(vqp, levels=[8, 5, 5, 5], num_quantizers=5, quantize_dropout=True, dim=10)
    x = torch.randn(2, 30, 10, generator=torch.Generator().manual_seed(1))
    _, indices = ours.eval()(x)
    theirs.eval()
    for k in range(1, 6):
        coarse = indices[..., :k]
        assert_identical(ours.get_output_from_indices(coarse), theirs.get_output_from_indices(coarse))
        assert_identical(ours.get_codes_from_indices(coarse), theirs.get_codes_from_indices(coarse))
    image_indices = indices.reshape(2, 5, 6, 5)[..., :3]  # (b, h, w, q), as accept_image_fmap gives
    assert_identical(ours.get_codes_from_indices(image_indices), theirs.get_codes_from_indices(image_indices))
    assert ours.get_codes_from_indices(image_indices).shape == (5, 2, 5, 6, 4)


levels_st = st.lists(st.integers(2, 9), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(
    levels=levels_st,
    num_quantizers=st.integers(1, 6),
    extra_dim=st.sampled_from([0, 0, 3]),
    channel_first=st.booleans(),
    hard_clamp=st.booleans(),
    dropout=st.booleans(),
    multiple_of=st.sampled_from([1, 2]),
    train=st.booleans(),
    seed=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_random_configurations_bit_identical(
    vqp, levels, num_quantizers, extra_dim, channel_first, hard_clamp, dropout, multiple_of, train, seed
):
    dim = len(levels) + extra_dim
    kwargs = dict(
        levels=levels,
        num_quantizers=num_quantizers,
        dim=dim,
        is_channel_first=channel_first,
        bound_hard_clamp=hard_clamp,
        quantize_dropout=dropout,
        quantize_dropout_multiple_of=multiple_of,
    )
    shape = (2, dim, 7, 3) if channel_first else (2, 21, dim)
    compare(vqp, kwargs, shape, train, rand_quantize_dropout_fixed_seed=seed)


def test_attributes_buffers_and_state_dicts_match(vqp):
    for kwargs in [
        dict(levels=[8, 5, 5, 5], num_quantizers=3),
        dict(levels=(8, 6, 5), num_quantizers=4, dim=16, quantize_dropout=True, quantize_dropout_cutoff_index=1),
        dict(levels=[5, 5, 5], num_quantizers=2, orthogonal_rotation=True, bound_hard_clamp=False),
        dict(levels=[5, 5, 5], num_quantizers=2, bound_hard_clamp=False, soft_clamp_input_value=2.0),
    ]:
        ours, theirs = pair(vqp, **kwargs)
        for name in [
            "has_projections", "is_channel_first", "num_quantizers", "levels", "codebook_size", "quantize_dropout",
            "quantize_dropout_cutoff_index", "quantize_dropout_multiple_of",
        ]:  # fmt: skip
            assert getattr(ours, name) == getattr(theirs, name), name
        assert type(ours.project_in) is type(theirs.project_in)
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        for name, buffer in theirs.named_buffers():
            assert_identical(dict(ours.named_buffers())[name], buffer)
        assert_identical(ours.codebooks, theirs.codebooks)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.half(), theirs.half()  # converts the codebooks, scales and clamp values alike
        for name, buffer in theirs.named_buffers():
            assert_identical(dict(ours.named_buffers())[name], buffer)
        torch.manual_seed(1)
        fresh = ResidualFSQ(**kwargs)
        theirs.float().load_state_dict(fresh.state_dict(), strict=True)  # ours load into theirs, strictly
        for key, value in fresh.state_dict().items():
            assert torch.equal(theirs.state_dict()[key], value)


# -------------------------------------------------------------------------------------- GroupedResidualFSQ
GROUPED = [
    ("g1", dict(dim=4, groups=1, levels=[8, 5, 5, 5], num_quantizers=3), (2, 40, 4)),
    ("g2", dict(dim=8, groups=2, levels=[8, 5, 5, 5], num_quantizers=3), (2, 40, 8)),
    ("g4-proj", dict(dim=32, groups=4, levels=[8, 6, 5], num_quantizers=4), (2, 40, 32)),
    (
        "g2-image",
        dict(dim=12, groups=2, levels=[5, 5, 5], num_quantizers=2, accept_image_fmap=True, is_channel_first=True),
        (2, 12, 4, 5),
    ),
    ("g3-dropout", dict(dim=9, groups=3, levels=[5, 5, 5], num_quantizers=6, quantize_dropout=True), (2, 40, 9)),
]


@pytest.mark.parametrize("return_all_codes", [False, True])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("kwargs", "shape"), [c[1:] for c in GROUPED], ids=[c[0] for c in GROUPED])
def test_grouped_bit_identical(vqp, kwargs, shape, train, return_all_codes):
    if return_all_codes and kwargs.get("is_channel_first"):  # their codes read channel-first indices' last axis
        ours, theirs = pair(vqp, grouped=True, **kwargs)
        x = torch.randn(shape)
        same_or_both_fail(lambda: ours(x, return_all_codes=True), lambda: theirs(x, return_all_codes=True))
        return
    for _ in range(3):  # several training draws (dropout depths)
        ours, theirs, out = compare(vqp, kwargs, shape, train, grouped=True, return_all_codes=return_all_codes)
    indices = out[1]
    assert indices.shape[0] == kwargs["groups"]
    ours.eval(), theirs.eval()
    same_or_both_fail(ours.get_codes_from_indices, theirs.get_codes_from_indices, indices)
    same_or_both_fail(ours.get_output_from_indices, theirs.get_output_from_indices, indices)
    assert_identical(ours.codebooks, theirs.codebooks)
    assert ours.codebook_size == theirs.codebook_size and ours.split_dim == theirs.split_dim
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict(), strict=True)


# --------------------------------------------------------------------------------------------------- errors
def test_errors_where_theirs_fails(vqp):
    bad = [
        dict(levels=[8, 1, 5], num_quantizers=2),  # a level below 2
        dict(levels=[8, 5], num_quantizers=2, num_codebooks=2),  # stages would project
        dict(levels=[8, 5], num_quantizers=2, soft_clamp_input_value=2.0),  # soft clamp with the hard clamp
        dict(levels=[8, 5], num_quantizers=2, quantize_dropout_cutoff_index=-1),
    ]
    for kwargs in bad:
        with pytest.raises(AssertionError):
            vqp.ResidualFSQ(**kwargs)
        with pytest.raises(DropInError):  # both an AssertionError and a ValueError
            ResidualFSQ(**kwargs)
    with pytest.raises(TypeError):
        vqp.ResidualFSQ(levels=[8, 5], num_quantizers=2, preserve_symmetry=False)
    with pytest.raises(TypeError):
        ResidualFSQ(levels=[8, 5], num_quantizers=2, preserve_symmetry=False)
    ours, theirs = pair(vqp, levels=[8, 5], num_quantizers=3)
    coarse = torch.zeros(2, 5, 2, dtype=torch.long)
    with pytest.raises(AssertionError, match="quantize dropout must be greater than 0"):
        theirs.get_codes_from_indices(coarse)
    with pytest.raises(DropInError, match="quantize dropout must be greater than 0"):
        ours.get_codes_from_indices(coarse)
    with pytest.raises(DropInError, match="4 stages, the module has 3"):
        ours.get_codes_from_indices(torch.zeros(2, 5, 4, dtype=torch.long))
    with pytest.raises(AssertionError):
        vqp.GroupedResidualFSQ(dim=9, groups=2, levels=[8, 5], num_quantizers=2)
    with pytest.raises(DropInError, match="not divisible"):
        GroupedResidualFSQ(dim=9, groups=2, levels=[8, 5], num_quantizers=2)
    grouped, their_grouped = pair(vqp, grouped=True, dim=8, groups=2, levels=[8, 5, 5, 5], num_quantizers=2)
    with pytest.raises(AssertionError):
        their_grouped(torch.randn(2, 5, 6))
    with pytest.raises(DropInError, match="expected 8 channels"):
        grouped(torch.randn(2, 5, 6))


def test_bad_levels_are_clear_errors():
    with pytest.raises(DropInError, match=r"levels\[1\] = '5' is not an integer"):
        ResidualFSQ(levels=[8, "5"], num_quantizers=2)
    with pytest.raises(DropInError, match="num_quantizers must be at least 1"):
        ResidualFSQ(levels=[8, 5], num_quantizers=0)


def test_importable_without_vector_quantize_pytorch_einops_or_einx():
    code = (
        "import sys\n"
        "for name in ('vector_quantize_pytorch', 'einops', 'einx'): sys.modules[name] = None\n"
        "import torch\n"
        "from fsq.compat.vector_quantize_pytorch import GroupedResidualFSQ, ResidualFSQ\n"
        "out, idx = ResidualFSQ(levels=[8, 5, 5, 5], num_quantizers=3)(torch.zeros(1, 2, 4))\n"
        "assert idx.shape == (1, 2, 3) and idx.dtype == torch.int32\n"
        "out, idx = GroupedResidualFSQ(dim=8, groups=2, levels=[8, 5, 5, 5], num_quantizers=2)(torch.zeros(1, 2, 8))\n"
        "assert idx.shape == (2, 1, 2, 2)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_seed_is_summed_over_ranks_under_distributed(tmp_path, monkeypatch):
    """One-process gloo group: the seed comes from torch's RNG either way; with world size 1 nothing is reduced."""
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    torch.manual_seed(3)
    plain = residual_fsq.maybe_sync_seed(torch.device("cpu"))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(3)
        assert residual_fsq.maybe_sync_seed(torch.device("cpu")) == plain
        calls = []
        monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 2)
        monkeypatch.setattr(dist, "all_reduce", lambda tensor, *a, **k: calls.append(tensor.clone()) or tensor.mul_(2))
        torch.manual_seed(3)
        assert residual_fsq.maybe_sync_seed(torch.device("cpu")) == 2 * plain and len(calls) == 1
    finally:
        dist.destroy_process_group()
