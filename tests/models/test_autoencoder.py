"""The tokenizer: shapes per preset, the paper's FSQ-has-fewer-parameters, save/load, API errors."""

from __future__ import annotations

import pytest
import torch

from fsq.checkpoint import CheckpointError
from fsq.models import Tokenizer, TokenizerSpec
from fsq.models.quantizer import QuantizerSpec


@pytest.mark.parametrize(
    ("size", "multipliers", "grid"),
    [(28, [1, 2, 2], 7), (16, [1, 2, 2], 4), (32, [1, 1, 2, 2], 4), (28, [1, 2, 2, 2], 4)],
)
def test_shapes(size, multipliers, grid):
    spec = TokenizerSpec(image_size=size, channel_multipliers=multipliers, filters=8, num_groups=4)
    model = Tokenizer(spec)
    x = torch.rand(2, 1, size, size)
    reconstruction, out = model(x)
    assert reconstruction.shape == x.shape
    assert out.indices.shape == (2, grid, grid) and spec.token_grid == grid
    assert out.quantized.shape == (2, 4, grid, grid)  # FSQ [8,5,5,5]: the encoder outputs 4 channels
    assert torch.equal(model.decode_indices(out.indices), model.decode(out.quantized))


def test_fsq_has_fewer_parameters_than_vq():
    fsq = Tokenizer(TokenizerSpec(filters=16, num_groups=4))
    vq = Tokenizer(
        TokenizerSpec(filters=16, num_groups=4, quantizer=QuantizerSpec(kind="vq", codebook_size=1024, dim=256))
    )
    counts_f, counts_v = fsq.parameter_counts(), vq.parameter_counts()
    assert counts_f["quantizer"] == 0 and counts_v["quantizer"] == 1024 * 256
    assert counts_f["encoder"] < counts_v["encoder"] and counts_f["decoder"] < counts_v["decoder"]
    assert counts_f["total"] < counts_v["total"]


def test_paper_preset_parameter_count_and_grid():
    spec = TokenizerSpec(
        image_size=256, in_channels=3, filters=128, channel_multipliers=[1, 1, 2, 2, 4], num_res_blocks=2, num_groups=32
    )
    assert spec.token_grid == 16
    with torch.device("meta"):
        model = Tokenizer(spec)
    assert 40e6 < model.parameter_counts()["total"] < 70e6


def test_save_and_load_pretrained(tmp_path):
    model = Tokenizer(TokenizerSpec(filters=8, num_groups=4)).eval()
    model.save_pretrained(tmp_path)
    loaded = Tokenizer.from_pretrained(tmp_path).eval()
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model.tokenize(x), loaded.tokenize(x))
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        Tokenizer.from_pretrained(tmp_path)


def test_wrong_image_shape_raises():
    model = Tokenizer(TokenizerSpec(filters=8, num_groups=4))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\)"):
        model.encode(torch.rand(2, 3, 28, 28))
