"""The 1-D SEANet codec built by the tokenizer spec (architecture=seanet): shapes, causality, gradients, and the
default image spec left as it was."""

from __future__ import annotations

import pytest
import torch

from fsq.layers.seanet import SEANetDecoder, SEANetEncoder, Snake, StridedConv1d, StridedTransposeConv1d
from fsq.models.autoencoder import Tokenizer, TokenizerSpec


def codec_spec(length: int = 400, causal: bool = False, activation: str = "elu", **quantizer: object) -> TokenizerSpec:
    return TokenizerSpec(
        dims=1,
        shape=[length],
        filters=4,
        channel_multipliers=[1, 2, 4],
        downsample=[[4], [5]],
        architecture="seanet",
        activation=activation,
        causal=causal,
        quantizer=quantizer or {"kind": "fsq", "levels": [5, 5, 5]},
    )


@pytest.mark.parametrize("length", [400, 401, 37])
@pytest.mark.parametrize("causal", [False, True])
def test_any_length_round_trips_to_its_length_with_ceil_frames(length: int, causal: bool) -> None:
    torch.manual_seed(0)
    model = Tokenizer(codec_spec(length, causal))
    x = torch.rand(2, 1, length)
    y, out = model(x)
    assert y.shape == x.shape
    assert out.indices.shape == (2, -(-length // 20)) == (2, *model.spec.grid_shape)
    assert torch.equal(model.decode_indices(out.indices), model.decode(out.quantized))


def test_causal_codec_output_ignores_the_future() -> None:
    torch.manual_seed(0)
    model = Tokenizer(codec_spec(400, causal=True)).eval()
    x = torch.rand(1, 1, 400)
    changed = x.clone()
    changed[..., 300:] = torch.rand(1, 1, 100)  # frames 15.. (hop 20) see the change
    a, b = model.encoder(x * 2 - 1), model.encoder(changed * 2 - 1)
    assert torch.equal(a[..., :15], b[..., :15]) and not torch.equal(a[..., 15:], b[..., 15:])
    ya, yb = model.decoder(a), model.decoder(b)
    assert torch.equal(ya[..., :300], yb[..., :300])


def test_non_causal_codec_sees_the_future() -> None:
    torch.manual_seed(0)
    model = Tokenizer(codec_spec(400)).eval()
    x = torch.rand(1, 1, 400)
    changed = x.clone()
    changed[..., 300:] = 0.5
    assert not torch.equal(model.encoder(x)[..., :14], model.encoder(changed)[..., :14])


@pytest.mark.parametrize("activation", ["elu", "snake"])
def test_every_parameter_gets_a_gradient(activation: str) -> None:
    torch.manual_seed(0)
    model = Tokenizer(codec_spec(activation=activation))
    y, _ = model(torch.rand(2, 1, 400))
    (y - 0.5).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert any(isinstance(m, Snake) for m in model.modules()) == (activation == "snake")


def test_strided_convolutions_frame_as_documented() -> None:
    down, up = StridedConv1d(1, 1, 4), StridedTransposeConv1d(1, 1, 4)
    for n in (1, 7, 8, 9):
        frames = down(torch.zeros(1, 1, n)).shape[-1]
        assert frames == -(-n // 4)
        assert up(torch.zeros(1, 1, frames), n).shape[-1] == n
    with pytest.raises(ValueError, match="cannot upsample"):
        up(torch.zeros(1, 1, 2), 20)


def test_snake_is_the_formula() -> None:
    snake = Snake(2)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([1.0, 2.0]).view(1, 2, 1))
    x = torch.tensor([[[0.5], [0.5]]])
    expected = torch.tensor([0.5 + torch.sin(torch.tensor(0.5)) ** 2, 0.5 + torch.sin(torch.tensor(1.0)) ** 2 / 2])
    assert torch.allclose(snake(x).flatten(), expected)


def test_encoder_decoder_widths_and_hop() -> None:
    enc = SEANetEncoder(1, 6, [4, 8, 16], [2, 5])
    dec = SEANetDecoder(1, 6, [4, 8, 16], [2, 5])
    z = enc(torch.zeros(3, 1, 100))
    assert z.shape == (3, 6, 10)
    assert dec(z).shape == (3, 1, 100)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"architecture": "seanet", "dims": 2}, "1-D audio codec"),
        ({"architecture": "wavenet", "dims": 1}, "architecture must be one of"),
        ({"architecture": "seanet", "dims": 1, "activation": "relu"}, "activation must be one of"),
        ({"architecture": "seanet", "dims": 1, "dilations": []}, "dilations"),
    ],
)
def test_bad_specs_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenizerSpec(**kwargs)  # type: ignore[arg-type]


def test_the_default_image_spec_builds_the_image_modules() -> None:
    """The new keys leave the 2-D image tokenizer's modules and parameter names as they were."""
    model = Tokenizer(TokenizerSpec())
    names = [n for n, _ in model.named_parameters()]
    assert names[:3] == ["encoder.stem.weight", "encoder.blocks.0.norm1.weight", "encoder.blocks.0.norm1.bias"]
    assert names[-2:] == ["decoder.head.weight", "decoder.head.bias"]
    assert type(model.encoder).__name__ == "Encoder" and type(model.decoder).__name__ == "Decoder"
    assert sum(p.numel() for p in model.parameters()) == model.parameter_counts()["total"]


@pytest.mark.parametrize(
    "quantizer",
    [
        {"kind": "residual_fsq", "levels": [5, 5, 5], "num_stages": 3, "quantize_dropout": 0.5},
        {"kind": "residual_vq", "codebook_size": 32, "dim": 3, "num_stages": 2, "quantize_dropout": 0.5},
    ],
)
def test_residual_codecs_decode_every_depth(quantizer: dict[str, object]) -> None:
    torch.manual_seed(0)
    model = Tokenizer(codec_spec(**quantizer)).eval()
    x = torch.rand(2, 1, 400)
    tokens = model.tokenize(x)
    stages = int(quantizer["num_stages"])  # type: ignore[call-overload]
    assert tokens.shape == (2, 20, stages)
    for depth in range(1, stages + 1):
        assert model.decode_indices(tokens[..., :depth]).shape == x.shape


def test_quiet_speech_gets_varied_codes_at_initialisation() -> None:
    """Regression: with PyTorch's default conv biases the encoder's output at speech's RMS (~0.07) was nearly one
    vector at every frame and FSQ gave one or two codes, which training on synthetic speech never left; zero biases
    (and the channel norm before the head) give frames their own codes from the start."""
    torch.manual_seed(0)
    spec = TokenizerSpec(
        dims=1,
        shape=[4000],
        filters=8,
        channel_multipliers=[1, 2, 4, 8, 16],
        downsample=[[2], [4], [5], [8]],
        architecture="seanet",
        quantizer={"kind": "fsq", "levels": [8, 5, 5, 5]},
    )
    tokens = Tokenizer(spec).tokenize(0.5 + 0.07 * torch.randn(4, 1, 4000))
    assert tokens.shape == (4, 13) and len(torch.unique(tokens)) >= 30  # 10 of 52 with the default biases
