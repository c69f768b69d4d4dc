"""Images of another size than the model's, encoded in tiles (``fsq encode --tile``): every tile is exactly the
model's own code of that crop, decode puts the tiles back and crops the padding, and the header's layout is
checked on read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fsq.cli import main
from fsq.inference import codec
from fsq.inference.codes import CodesFileError, read_codes
from fsq.models import Tokenizer, TokenizerSpec

SPEC = TokenizerSpec(image_size=8, in_channels=3, filters=8, num_groups=4, channel_multipliers=[1, 2])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiles") / "model"
    Tokenizer(SPEC).save_pretrained(path, metadata={"config": {"stage": "tokenizer", "data": {"source": "photos"}}})
    return codec.open_model(path)


def _image(height: int, width: int) -> torch.Tensor:
    return torch.randint(0, 256, (3, height, width), generator=torch.Generator().manual_seed(height * width)).byte()


def test_tiles_cover_the_image_and_each_is_the_models_own_code(model):
    image = _image(19, 13)  # 3 x 2 tiles of 8 px, the last row and column padded by the image's edge
    encoded = codec.encode(model, image, tile=True)
    h = encoded.codes.header
    assert h["tiles"] == [3, 2] and h["chunks"] == 6 and h["version"] == 2 and h["signal_shape"] == [3, 19, 13]
    assert h["bitrate_unit"] == "bits/image" and h["bitrate"] == pytest.approx(h["bits"])
    tiles, layout = codec.tiles_of(image, (8, 8))
    assert layout == [3, 2] and tiles.shape == (6, 3, 8, 8)
    assert torch.equal(tiles[0], image[:, :8, :8]) and torch.equal(tiles[5][:, :3, :5], image[:, 16:, 8:])
    assert torch.equal(tiles[5][:, 3:, :5], image[:, -1:, 8:].expand(-1, 5, -1))  # the bottom edge repeated
    own = model.tokenizer.tokenize(tiles.float() / 255)
    assert np.array_equal(encoded.codes.codes, own.numpy())
    decoded = codec.decode(model, encoded.codes).signal
    assert decoded.shape == (3, 19, 13)
    whole = model.tokenizer.decode_indices(own)
    assert torch.equal(decoded, codec.untile(whole, [3, 2], 19, 13))
    assert torch.equal(decoded[:, 8:16, :8], whole[2])  # the middle row's first tile, in place


def test_an_image_of_the_models_size_is_one_untiled_chunk_either_way(model):
    image = _image(8, 8)
    plain, tiled = codec.encode(model, image), codec.encode(model, image, tile=True)
    assert "tiles" not in tiled.codes.header and tiled.codes.header["version"] == 1
    assert np.array_equal(plain.codes.codes, tiled.codes.codes)


def test_without_tile_another_size_is_refused_naming_the_option(model):
    with pytest.raises(ValueError, match=r"images of 19x13 px, but .* exactly 8x8 px .*--tile"):
        codec.encode(model, _image(19, 13))


def test_the_cli_tiles_a_png_and_decodes_it_back(model, tmp_path, capsys):
    from PIL import Image

    image = _image(20, 30)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / "photo.png")
    origin = model.origin
    assert main(["encode", origin, str(tmp_path / "photo.png"), "--out", str(tmp_path / "c.npz"), "--tile"]) == 0
    assert "image 3x20x30 as 3x4 tiles of 8x8 px" in capsys.readouterr().out
    assert main(["decode", origin, str(tmp_path / "c.npz"), "--out", str(tmp_path / "back.png")]) == 0
    with Image.open(tmp_path / "back.png") as back:
        assert back.size == (30, 20)


def test_a_tiles_header_that_disagrees_with_the_chunks_is_refused(model, tmp_path):
    encoded = codec.encode(model, _image(19, 13), tile=True)
    path = encoded.codes.save(tmp_path / "c.npz")
    with np.load(path) as data:
        codes, header = data["codes"], json.loads(str(data["header"]))
    for tiles, words in (([2, 2], "rows x columns = chunks"), ([6], "must be [rows, columns]")):
        np.savez(tmp_path / "bad.npz", codes=codes, header=json.dumps({**header, "tiles": tiles}))
        with pytest.raises(CodesFileError, match=words.replace("[", r"\[").replace("]", r"\]")):
            read_codes(tmp_path / "bad.npz")
    # a layout that fits the chunks but not the image: refused by the model's check before decoding
    np.savez(tmp_path / "odd.npz", codes=codes, header=json.dumps({**header, "tiles": [1, 6]}))
    with pytest.raises(ValueError, match=r"tiles \[1, 6\]\) does not fit images of 8x8 px"):
        codec.decode(model, read_codes(tmp_path / "odd.npz"))


def test_tiling_is_for_images(tmp_path):
    spec = TokenizerSpec(dims=1, shape=[32], downsample=[[4]], filters=8, num_groups=4, channel_multipliers=[1, 2])
    Tokenizer(spec).save_pretrained(tmp_path / "audio")
    audio = codec.open_model(tmp_path / "audio")
    with pytest.raises(ValueError, match="tiling is for images"):
        codec.encode(audio, torch.full((1, 100), 0.5), rate=8000, tile=True)
