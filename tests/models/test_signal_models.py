"""Models of any rank: 1-D / 2-D / 3-D tokenizers, discriminators and MaskGIT grids; causal time; the 2-D default
unchanged (the shipped bundles give the outputs pinned from the code before ``dims`` existed)."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fsq.layers.resnet import CausalConv3d, Downsample, FactorizedConv3d, ResBlock, Upsample, conv, downsampled
from fsq.models import Tokenizer, TokenizerSpec
from fsq.models.discriminator import BlurPool, StyleGANDiscriminator
from fsq.models.maskgit import MaskGIT, MaskGITSpec
from fsq.models.quantizer import QuantizerSpec

SMALL = {"filters": 8, "num_groups": 4, "quantizer": QuantizerSpec(levels=[5, 5, 5])}


def test_pretrained_image_tokenizer_gives_the_outputs_pinned_before_dims_existed():
    # pinned with the 2-D-only code (fsq 0.2): indices hash and decoded sums of the shipped mnist-fsq bundle
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = Tokenizer.from_pretrained("mnist-fsq")
    with torch.no_grad():
        reconstruction, out = model(x)
    assert out.indices.shape == (3, 7, 7)
    digest = hashlib.sha256(out.indices.numpy().tobytes()).hexdigest()
    assert digest == "dc26f1aecfcb446d437e4fb992f3e7e2ff8249ff00239b7434e31b446181cd35"
    assert reconstruction.double().sum().item() == pytest.approx(439.3887200951576, rel=1e-6)
    assert reconstruction.double().square().sum().item() == pytest.approx(348.47718906686976, rel=1e-6)


def test_default_2d_spec_builds_plain_conv2d_and_groupnorm_modules():
    model = Tokenizer(TokenizerSpec())
    kinds = {type(m) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.GroupNorm))}
    assert kinds == {nn.Conv2d, nn.GroupNorm}  # no causal subclass, no other rank
    assert model.spec.grid_shape == (7, 7) and model.spec.token_grid == 7
    assert "encoder.blocks.0.conv1.weight" in model.state_dict()


def test_shipped_maskgit_bundle_loads_strictly():
    from fsq.inference.sampling import MaskGITPipeline

    pipeline = MaskGITPipeline.from_pretrained("mnist-maskgit-fsq")
    assert pipeline.model.spec.grid_shape == (7, 7) and pipeline.model.spec.positions == "table"


@pytest.mark.parametrize(
    ("dims", "shape", "downsample", "causal", "grid"),
    [
        (1, [64], None, False, (16,)),
        (1, [65], [[4], [2]], True, (9,)),  # causal: 1 + 64 samples -> 1 + 16 -> 1 + 8
        (3, [5, 16, 16], [[2, 2, 2], [2, 2, 2]], True, (2, 4, 4)),  # 1 + 4k frames -> 1 + k
        (3, [4, 8, 8], [[1, 2, 2], [2, 2, 2]], False, (2, 2, 2)),
        (2, [12, 20], None, False, (3, 5)),
    ],
)
def test_shapes_of_any_rank(dims, shape, downsample, causal, grid):
    spec = TokenizerSpec(dims=dims, shape=shape, downsample=downsample, causal=causal, **SMALL)
    model = Tokenizer(spec)
    x = torch.rand(2, 1, *shape)
    reconstruction, out = model(x)
    assert reconstruction.shape == x.shape
    assert out.indices.shape == (2, *grid) and spec.grid_shape == grid
    assert out.quantized.shape == (2, 3, *grid)
    assert torch.equal(model.decode_indices(out.indices), model.decode(out.quantized))


def test_causal_video_keeps_the_first_frame_alone():
    assert [downsampled(n, 2, causal=True) for n in (1, 5, 9, 17)] == [1, 3, 5, 9]
    assert [downsampled(n, 2) for n in (1, 5, 9, 17)] == [1, 3, 5, 9]
    assert downsampled(13, 4, causal=True) == 4 and downsampled(13, 4) == 4
    assert downsampled(12, 4, causal=True) == 4 and downsampled(12, 4) == 3


def _frame_dependence(fn, x: torch.Tensor, changed: int) -> torch.Tensor:
    """Per output frame (axis 2): the largest change when input frame ``changed`` is perturbed."""
    y0 = fn(x)
    x2 = x.clone()
    x2[:, :, changed] += torch.randn_like(x2[:, :, changed])
    return (fn(x2) - y0).abs().flatten(3).amax(dim=(0, 1, 3)) if y0.ndim > 3 else (fn(x2) - y0).abs().amax((0, 1))


@pytest.mark.parametrize("time_padding", ["replicate", "zeros"])
@pytest.mark.parametrize("dims", [1, 3])
def test_causal_blocks_never_look_ahead(dims, time_padding):
    torch.manual_seed(0)
    axes = (9,) if dims == 1 else (9, 6, 6)
    x = torch.randn(2, 8, *axes)
    block = ResBlock(8, 16, 4, dims=dims, causal=True, time_padding=time_padding)
    up = Upsample(16, dims=dims, causal=True, time_padding=time_padding)
    with torch.no_grad():
        for t in range(1, 9):
            change = _frame_dependence(block, x, t)
            assert change[:t].max() == 0 and change[t] > 0  # frame t moves outputs t.. only
        pooled = Downsample(dims, (2,) * dims, causal=True)
        change = _frame_dependence(pooled, x, 1)  # frames 1, 2 pool into latent 1; frame 0 stays alone
        assert change[0] == 0 and change[1] > 0 and change[2:].max() == 0
        latent = torch.randn(2, 16, *(5,) + axes[1:])
        size = (9,) + axes[1:]
        change = _frame_dependence(lambda z: up(z, size), latent, 1)
        assert change[0] == 0 and change[1:].max() > 0  # latent frame 1 never reaches output frame 0


def test_causal_time_padding_is_the_first_frame_or_zeros():
    x = torch.randn(1, 2, 3, 4, 4)
    for mode, past in [("replicate", x[:, :, :1]), ("zeros", torch.zeros_like(x[:, :, :1]))]:
        layer = conv(3, 2, 2, 3, causal=True, time_padding=mode)
        assert isinstance(layer, CausalConv3d) and layer.time_padding == mode
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
        with torch.no_grad():
            layer.weight[0, 0, 0, 1, 1] = 1.0  # output channel 0 = input channel 0 two frames back
        y = layer(x).detach()
        assert torch.equal(y[:, 0, :2], past[:, 0].expand(-1, 2, -1, -1))  # before the clip: the padding
        assert torch.equal(y[:, 0, 2], x[:, 0, 0])
    with pytest.raises(ValueError, match="time_padding must be one of"):
        conv(3, 2, 2, 3, causal=True, time_padding="reflect")
    with pytest.raises(ValueError, match="time_padding must be one of"):
        TokenizerSpec(dims=3, shape=[5, 8, 8], causal=True, time_padding="circular")


def test_time_to_depth_keeps_frame_order_and_inverts_its_layout():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 6, 6)  # 1 + 2 x 2 frames
    down = Downsample(3, (2, 2, 2), causal=True, channels=4, time_to_depth=True)
    swapped = x[:, :, [0, 2, 1, 4, 3]]  # the frames of each pair in the other order
    with torch.no_grad():
        assert down(x).shape == (2, 4, 3, 3, 3)
        assert not torch.allclose(down(x)[:, :, 1:], down(swapped)[:, :, 1:])  # average pooling could not tell
        assert torch.equal(down(x)[:, :, 0], down(swapped)[:, :, 0])
    up = Upsample(4, 3, causal=True, time_factor=2)
    assert up.split is not None
    nn.init.zeros_(up.split.bias)
    with torch.no_grad():
        up.split.weight.zero_()
        up.split.weight[:4, :, 0, 0, 0] = torch.eye(4)  # block 0 = the input, block 1 = zeros
        latent = torch.randn(1, 4, 3, 2, 2)
        frames = up._unstack_time(latent)
        assert frames.shape == (1, 4, 5, 2, 2)
        assert torch.equal(frames[:, :, 1], latent[:, :, 1]) and torch.equal(frames[:, :, 3], latent[:, :, 2])
        assert frames[:, :, [0, 2, 4]].abs().max() == 0  # the first frame takes the last block
    with pytest.raises(ValueError, match="causal"):
        Downsample(3, (2, 2, 2), causal=False, channels=4, time_to_depth=True)
    with pytest.raises(ValueError, match="causal"):
        TokenizerSpec(dims=3, shape=[5, 8, 8], time_to_depth=True)


@pytest.mark.parametrize(
    ("time_padding", "time_to_depth", "factorized"),
    [("replicate", False, False), ("zeros", False, False), ("zeros", True, False), ("zeros", True, True)],
)
def test_causal_video_tokenizer_output_at_frame_t_ignores_later_frames(time_padding, time_to_depth, factorized):
    torch.manual_seed(0)
    spec = TokenizerSpec(
        dims=3,
        shape=[9, 8, 8],
        causal=True,
        time_padding=time_padding,
        time_to_depth=time_to_depth,
        factorized=factorized,
        **SMALL,
    )
    model = Tokenizer(spec).eval()
    stem = model.encoder.stem.time if factorized else model.encoder.stem
    assert isinstance(stem, CausalConv3d) and stem.time_padding == time_padding
    x = torch.rand(1, 1, 9, 8, 8)
    later = x.clone()
    later[:, :, 1:] = torch.rand(1, 1, 8, 8, 8)  # every frame after the first replaced
    with torch.no_grad():
        a, b = model.encoder(x * 2 - 1), model.encoder(later * 2 - 1)
        assert torch.equal(a[:, :, 0], b[:, :, 0])  # the first frame is encoded on its own
        assert not torch.equal(a[:, :, 1:], b[:, :, 1:])
        assert torch.equal(model(x)[0][:, :, 0], model(later)[0][:, :, 0])  # an image is a one-frame video
        # latent frame i (i >= 1) sees input frames <= 4i (two causal x2 time downsamplings)
        for i, last in [(1, 4), (2, 8)]:
            moved = x.clone()
            moved[:, :, last + 1 :] = 0.5
            assert torch.equal(model.encoder(moved * 2 - 1)[:, :, i], a[:, :, i])


def test_factorized_convolutions_are_space_then_causal_time():
    torch.manual_seed(0)
    layer = conv(3, 4, 6, 3, causal=True, time_padding="zeros", factorized=True)
    assert isinstance(layer, FactorizedConv3d)
    assert layer.space.kernel_size == (1, 3, 3) and layer.time.kernel_size == (3, 1, 1)
    full = conv(3, 4, 6, 3, causal=True)
    assert sum(p.numel() for p in layer.parameters()) == 4 * 6 * 9 + 6 * 6 * 3 + 6  # against 4 * 6 * 27 + 6
    assert sum(p.numel() for p in full.parameters()) == 4 * 6 * 27 + 6
    x = torch.randn(2, 4, 5, 7, 7)
    with torch.no_grad():
        layer.time.weight.zero_()
        layer.time.weight[:, :, 2, 0, 0] = torch.eye(6)  # the time taps pass the current frame only
        layer.time.bias.zero_()
        per_frame = torch.stack(  # the same spatial kernel as a 2-D convolution of each frame
            [F.conv2d(x[:, :, t], layer.space.weight[:, :, 0], padding=1) for t in range(5)], dim=2
        )
        assert torch.allclose(layer(x), per_frame, atol=1e-5)
    block = ResBlock(8, 16, 4, dims=3, causal=True, time_padding="zeros", factorized=True)
    up = Upsample(16, dims=3, causal=True, time_padding="zeros", factorized=True)
    assert isinstance(block.conv1, FactorizedConv3d) and isinstance(up.conv, FactorizedConv3d)
    x = torch.randn(2, 8, 9, 6, 6)
    with torch.no_grad():
        for t in range(1, 9):
            change = _frame_dependence(block, x, t)
            assert change[:t].max() == 0 and change[t] > 0  # frame t moves outputs t.. only
    plain = conv(3, 4, 6, 3, factorized=True)  # not causal: time padded on both sides, sizes kept
    assert plain(torch.randn(1, 4, 5, 7, 7)).shape == (1, 6, 5, 7, 7)
    with pytest.raises(ValueError, match="need dims=3"):
        conv(2, 4, 6, 3, factorized=True)
    with pytest.raises(ValueError, match="3-D vqgan model"):
        TokenizerSpec(dims=2, factorized=True)


@pytest.mark.parametrize("causal,padding", [(True, "zeros"), (True, "replicate"), (False, "zeros")])
def test_factorized_time_convolution_equals_its_conv3d(causal, padding):
    """The pair computes its k x 1 x 1 time convolution as a k x 1 Conv2d over (T, H*W): the same values and
    gradients as running its own Conv3d modules (whose weights the state dict keeps)."""
    torch.manual_seed(0)
    layer = conv(3, 4, 6, 3, causal=causal, time_padding=padding, factorized=True)
    x = torch.randn(2, 4, 5, 7, 6, requires_grad=True)
    fast = layer(x)
    slow = layer.time(layer.space(x))  # the modules' own forward (Conv3d, causal padding included)
    assert fast.shape == slow.shape == (2, 6, 5, 7, 6)
    assert torch.allclose(fast, slow, atol=1e-5)
    g = torch.randn_like(fast)
    grads_fast = torch.autograd.grad(fast, [x, layer.time.weight, layer.time.bias], g)
    grads_slow = torch.autograd.grad(slow, [x, layer.time.weight, layer.time.bias], g)
    for a, b in zip(grads_fast, grads_slow):
        assert torch.allclose(a, b, atol=1e-4)
    sliced = x.detach()[:, :, :, 1:, :5]  # a non-contiguous input
    assert torch.allclose(layer(sliced), layer.time(layer.space(sliced)), atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_identity_time_init_starts_a_factorized_model_as_a_per_frame_one(causal):
    torch.manual_seed(0)
    spec = TokenizerSpec(dims=3, shape=[5, 8, 8], causal=causal, factorized=True, time_init="identity", **SMALL)
    model = Tokenizer(spec)
    pairs = [m for m in model.modules() if isinstance(m, FactorizedConv3d)]
    assert pairs and all(m.time.bias is None or not m.time.bias.any() for m in pairs)
    tap = 2 if causal else 1  # the current frame: the last tap of a causal kernel, the middle one otherwise
    for m in pairs:
        w = m.time.weight
        assert torch.equal(w[:, :, tap, 0, 0], torch.eye(w.shape[0])) and w.abs().sum() == w.shape[0]
    if causal:  # a ResBlock (no pooling; GroupNorm per frame): frames stay apart until the model learns to mix them
        block = model.encoder.blocks[0]
        x = torch.randn(1, block.conv1.space.in_channels, 5, 8, 8)
        with torch.no_grad():
            change = _frame_dependence(block, x, 2)
        assert change[2] > 0 and change[[0, 1, 3, 4]].max() == 0
    random = Tokenizer(TokenizerSpec(dims=3, shape=[5, 8, 8], causal=causal, factorized=True, **SMALL))
    assert not torch.equal(random.encoder.stem.time.weight, model.encoder.stem.time.weight)
    with pytest.raises(ValueError, match="factorized models only"):
        TokenizerSpec(dims=3, shape=[5, 8, 8], time_init="identity")
    with pytest.raises(ValueError, match="time_init must be one of"):
        TokenizerSpec(dims=3, shape=[5, 8, 8], factorized=True, time_init="zeros")


@pytest.mark.parametrize(
    ("dims", "shape", "given"),
    [
        (3, [5, 8, 8], (2, 1, 8, 8)),
        (1, [32], (2, 1, 8, 4)),
        (2, [8, 8], (2, 1, 4, 8, 8)),
        (3, [5, 8, 8], (2, 3, 5, 8, 8)),
    ],
)
def test_a_signal_of_the_wrong_shape_names_both_shapes(dims, shape, given):
    model = Tokenizer(TokenizerSpec(dims=dims, shape=shape, **SMALL))
    with pytest.raises(
        ValueError, match=r"expected (images|signals) of shape \(B, 1, .*got \(" + ", ".join(map(str, given))
    ):
        model.encode(torch.rand(*given))


def test_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match="dims must be 1"):
        TokenizerSpec(dims=4)
    with pytest.raises(ValueError, match="shape must be 3 positive sizes"):
        TokenizerSpec(dims=3, shape=[8, 8])
    with pytest.raises(ValueError, match="one per downsampling"):
        TokenizerSpec(downsample=[[2, 2]])
    with pytest.raises(ValueError, match="one per axis"):
        TokenizerSpec(downsample=[[2, 2], [2]])
    with pytest.raises(ValueError, match="not a square 2-D grid"):
        _ = TokenizerSpec(dims=1, shape=[64]).token_grid


def test_any_rank_round_trips_through_a_bundle(tmp_path):
    spec = TokenizerSpec(
        dims=3,
        shape=[5, 8, 8],
        downsample=[[2, 2, 2], [1, 2, 2]],
        causal=True,
        time_padding="zeros",
        time_to_depth=True,
        factorized=True,
        **SMALL,
    )
    model = Tokenizer(spec).eval()
    model.save_pretrained(tmp_path / "video")
    loaded = Tokenizer.from_pretrained(tmp_path / "video")
    assert loaded.spec == spec
    x = torch.rand(2, 1, 5, 8, 8)
    assert torch.equal(loaded.tokenize(x), model.tokenize(x))


@pytest.mark.parametrize(("dims", "shape"), [(1, (64,)), (3, (5, 16, 16)), (2, (12, 20))])
def test_discriminator_of_any_rank(dims, shape):
    torch.manual_seed(0)
    disc = StyleGANDiscriminator(in_channels=2, base_channels=8, max_channels=16, dims=dims, shape=shape)
    assert max(disc.shapes[-1]) <= 4 and disc.shapes[0] == shape
    x = torch.rand(3, 2, *shape, requires_grad=True)
    logits = disc(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="discriminator expects"):
        disc(torch.rand(3, 2, *shape[1:]))


def test_blur_leaves_stride_one_axes_alone():
    x = torch.rand(1, 2, 3, 8, 8)
    out = BlurPool(dims=3, strides=(1, 2, 2))(x)
    assert out.shape == (1, 2, 3, 4, 4)
    per_frame = torch.stack([BlurPool()(x[:, :, t]) for t in range(3)], dim=2)
    assert torch.allclose(out, per_frame, atol=1e-6)


@pytest.mark.parametrize(
    ("grid", "positions"), [([10], "table"), ([3, 4, 5], "table"), ([3, 4, 5], "axes"), ([6], "axes")]
)
def test_maskgit_over_grids_of_any_rank(grid, positions):
    torch.manual_seed(0)
    spec = MaskGITSpec(
        codebook_size=16, num_classes=0, grid=grid, positions=positions, width=32, depth=1, heads=2, mlp_dim=32
    )
    model = MaskGIT(spec).eval()
    n = spec.num_tokens
    tokens = torch.randint(0, 16, (2, *grid))
    logits = model(tokens)
    assert logits.shape == (2, n, 16)
    if positions == "axes":
        assert sum(p.numel() for p in model.axis_embeddings) == sum(grid) * 32
        assert "position_embedding" not in model.state_dict()
    # positions matter: the same token everywhere still gives different logits per position
    same = model(torch.full((1, *grid), 3))
    assert not torch.allclose(same[0, 0], same[0, -1])
    with pytest.raises(ValueError, match=f"expected {n} tokens"):
        model(torch.randint(0, 16, (2, n + 1)))


def test_maskgit_grid_is_given_one_way():
    with pytest.raises(ValueError, match="either as grid_height and grid_width"):
        MaskGITSpec(codebook_size=8, num_classes=0, grid_height=2, grid_width=2, grid=[4])
    with pytest.raises(ValueError, match="1, 2 or 3 positive sizes"):
        MaskGITSpec(codebook_size=8, num_classes=0, grid=[2, 2, 2, 2])
    assert MaskGITSpec(codebook_size=8, num_classes=0, grid_height=2, grid_width=3).grid_shape == (2, 3)


def test_time_patch_stacks_frame_groups_at_the_input_and_is_causal():
    """``time_patch=2``: the network sees 1 + k frames of 2 stacked channels for a 1 + 2k clip; the token grid,
    the accepted clip lengths and causality follow, and the stacking inverts exactly."""
    from fsq.models.autoencoder import stack_frames, unstack_frames

    x = torch.randn(2, 3, 7, 4, 4)  # 1 + 2 x 3 frames
    stacked = stack_frames(x, 2)
    assert stacked.shape == (2, 6, 4, 4, 4)
    assert torch.equal(stacked[:, :3, 0], x[:, :, 0]) and torch.equal(stacked[:, 3:, 0], x[:, :, 0])
    assert torch.equal(stacked[:, :3, 1], x[:, :, 1]) and torch.equal(stacked[:, 3:, 1], x[:, :, 2])  # frame order
    assert torch.equal(unstack_frames(stacked, 2), x)
    with pytest.raises(ValueError, match="1 \\+ 2k frames"):
        stack_frames(torch.randn(1, 1, 4, 2, 2), 2)

    torch.manual_seed(0)
    spec = TokenizerSpec(
        dims=3, shape=[9, 8, 8], causal=True, time_padding="zeros", time_patch=2, downsample=[[1, 2, 2]],
        channel_multipliers=[1, 2], factorized=True, time_init="identity", filters=8, num_groups=4,
    )  # fmt: skip
    assert spec.grid_shape == (5, 4, 4) and spec.time_factor == 2
    assert spec.accepts_frames(1) and spec.accepts_frames(5) and not spec.accepts_frames(4)
    model = Tokenizer(spec).eval()
    clip = torch.rand(1, 1, 9, 8, 8)
    with torch.no_grad():
        out, _ = model(clip)
        assert out.shape == clip.shape and model.tokenize(clip).shape == (1, 5, 4, 4)
        assert model(clip[:, :, :1])[0].shape == (1, 1, 1, 8, 8)  # an image is a one-frame video
        torch.testing.assert_close(model(clip[:, :, :1])[0], out[:, :, :1])
        later = clip.clone()
        later[:, :, 3:] = torch.rand(1, 1, 6, 8, 8)  # frames 3-8 replaced: latent frames 0 and 1 (frames 0-2) kept
        assert torch.equal(model.encoder(later * 2 - 1)[:, :, :2], model.encoder(clip * 2 - 1)[:, :, :2])
        assert not torch.equal(model.encoder(later * 2 - 1)[:, :, 2:], model.encoder(clip * 2 - 1)[:, :, 2:])
    with pytest.raises(ValueError, match="time_patch needs a causal 3-D vqgan"):
        TokenizerSpec(dims=3, shape=[9, 8, 8], time_patch=2)
    with pytest.raises(ValueError, match="time_patch needs a causal 3-D vqgan"):
        TokenizerSpec(dims=2, time_patch=2)
