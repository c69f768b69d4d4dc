"""Every Pillow mode to 8 bits: each expected value computed here from the mode's definition, not by Pillow."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from fsq.data import pixels
from fsq.data.images import decode_image
from fsq.data.pixels import to_uint8

RNG = np.random.default_rng(0)


def _decode(path, channels=3):
    return decode_image(path, channels=channels).permute(1, 2, 0).numpy()


def _mode(path):
    with Image.open(path) as image:
        return image.mode


def _over_white(colour, alpha, peak):
    """Composite on white in floats, rounded: the rule's definition."""
    colour, alpha = np.asarray(colour, np.float64) / peak, np.asarray(alpha, np.float64)[..., None] / peak
    return np.rint((colour * alpha + 1 - alpha) * 255).astype(np.uint8)


def test_16bit_grey_png_scales_instead_of_clipping(tmp_path, png_writer):
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # the full 0..65535 gradient
    png_writer(tmp_path / "g.png", values)
    assert _mode(tmp_path / "g.png") == "I;16"  # what this Pillow opens it as
    grey = _decode(tmp_path / "g.png", channels=1)[..., 0]
    assert np.array_equal(grey, np.rint(values / 257).astype(np.uint8))  # v -> round(v / 257), never on a half
    flat = grey.ravel()
    assert flat[0] == 0 and flat[-1] == 255 and bool((np.diff(flat.astype(int)) >= 0).all())
    assert (flat == 255).mean() < 0.002  # was 99.6% with convert("L")
    rgb = _decode(tmp_path / "g.png")
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2"), ("I", "<i4")])
def test_16bit_byte_orders_and_int32(mode, dtype):
    values = RNG.integers(0, 65536, (7, 9))
    image = Image.frombytes(mode, (9, 7), values.astype(dtype).tobytes())
    assert np.array_equal(to_uint8(image, 1)[..., 0], np.rint(values / 257).astype(np.uint8))


def test_int32_tiff_in_16bit_range_and_out_of_it(tmp_path):
    values = np.array([[0, 257, 65535], [128, 129, 40000]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "i.tif")
    assert _mode(tmp_path / "i.tif") == "I"
    assert _decode(tmp_path / "i.tif", 1)[..., 0].tolist() == [[0, 1, 255], [0, 1, 156]]
    Image.fromarray(np.array([[-5, 70000]], dtype=np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match=r"values -5\.\.70000.*0\.\.65535"):
        decode_image(tmp_path / "wide.tif")


def test_float_images_unit_range_stretch_and_refusals(tmp_path):
    unit = (np.arange(256, dtype=np.float32) / 255).reshape(16, 16)
    Image.fromarray(unit).save(tmp_path / "unit.tif")
    assert _decode(tmp_path / "unit.tif", 1)[..., 0].ravel().tolist() == list(range(256))  # v -> round(255 v)
    other = RNG.uniform(-2, 6, (5, 6)).astype(np.float32)
    Image.fromarray(other).save(tmp_path / "wide.tif")
    low, high = float(other.min()), float(other.max())
    expected = np.rint((other.astype(np.float64) - low) / (high - low) * 255)
    got = _decode(tmp_path / "wide.tif", 1)[..., 0]
    assert np.array_equal(got, expected) and got.min() == 0 and got.max() == 255  # stretched per image
    assert to_uint8(Image.new("F", (2, 2), 0.5), 1).ravel().tolist() == [128] * 4  # constant inside [0, 1]: fine
    with pytest.raises(ValueError, match="constant"):
        to_uint8(Image.new("F", (2, 2), 7.0), 3)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN or infinite"):
            to_uint8(Image.fromarray(np.array([[0.1, bad]], dtype=np.float32)), 3)


def test_palette_with_and_without_transparency(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30], [200, 200, 0]], dtype=np.uint8)
    index = RNG.integers(0, 4, (6, 5)).astype(np.uint8)
    image = Image.frombytes("P", (5, 6), index.tobytes())
    image.putpalette(palette.ravel().tolist())
    image.save(tmp_path / "p.png")
    assert np.array_equal(_decode(tmp_path / "p.png"), palette[index])
    alpha = np.array([255, 0, 128, 64])
    image.save(tmp_path / "pt.png", transparency=bytes(alpha.tolist()))
    assert _mode(tmp_path / "pt.png") == "P"
    assert np.array_equal(_decode(tmp_path / "pt.png"), _over_white(palette[index], alpha[index], 255))


def test_alpha_is_composited_on_white(tmp_path):
    rgba = RNG.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    expected = _over_white(rgba[..., :3], rgba[..., 3], 255)
    assert np.array_equal(_decode(tmp_path / "rgba.png"), expected)
    luma = expected.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(_decode(tmp_path / "rgba.png", 1)[..., 0] - luma).max() <= 1
    la = RNG.integers(0, 256, (6, 7, 2), dtype=np.uint8)
    Image.fromarray(la).save(tmp_path / "la.png")  # (H, W, 2) uint8 is LA
    assert np.array_equal(_decode(tmp_path / "la.png", 1)[..., 0], _over_white(la[..., :1], la[..., 1], 255)[..., 0])
    index = RNG.integers(0, 3, (4, 4)).astype(np.uint8)
    alpha = RNG.integers(0, 256, (4, 4)).astype(np.uint8)
    pa = Image.frombytes("PA", (4, 4), np.stack([index, alpha], -1).tobytes())
    palette = np.array([[0, 0, 0], [90, 180, 40], [255, 255, 255]], dtype=np.uint8)
    pa.putpalette(palette.ravel().tolist())
    assert np.array_equal(to_uint8(pa, 3), _over_white(palette[index], alpha, 255))


def test_16bit_colour_pngs(tmp_path, png_writer, monkeypatch):
    rgb = RNG.integers(0, 65536, (8, 9, 3)).astype(np.uint16)
    png_writer(tmp_path / "rgb.png", rgb)
    with Image.open(tmp_path / "rgb.png") as pil:  # this Pillow keeps the high bytes, in mode RGB
        assert pil.mode == "RGB" and np.array_equal(np.asarray(pil), rgb >> 8)
    assert np.array_equal(_decode(tmp_path / "rgb.png"), np.rint(rgb / 257).astype(np.uint8))  # exact here
    monkeypatch.setitem(pixels._LOW_BYTE_RAWMODES, "RGB;16B", "no such rawmode")  # a Pillow without the trick
    assert np.array_equal(_decode(tmp_path / "rgb.png"), rgb >> 8)  # falls back to the high bytes
    rgba = RNG.integers(0, 65536, (8, 9, 4)).astype(np.uint16)
    png_writer(tmp_path / "rgba.png", rgba)
    assert np.array_equal(_decode(tmp_path / "rgba.png"), _over_white(rgba[..., :3], rgba[..., 3], 65535))
    la = RNG.integers(0, 65536, (8, 9, 2)).astype(np.uint16)
    png_writer(tmp_path / "la.png", la)  # Pillow opens it as RGBA of the high bytes: those are composited
    expected = _over_white((la[..., :1] >> 8).astype(np.uint8), la[..., 1] >> 8, 255)
    assert np.array_equal(_decode(tmp_path / "la.png", 1), expected)


def test_cmyk_ycbcr_hsv_and_bilevel(tmp_path):
    cmyk = RNG.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    Image.frombytes("CMYK", (6, 5), cmyk.tobytes()).save(tmp_path / "c.tif")
    c, k = cmyk[..., :3].astype(np.float64), cmyk[..., 3:].astype(np.float64)
    assert np.array_equal(_decode(tmp_path / "c.tif"), np.rint((255 - c) * (255 - k) / 255).astype(np.uint8))
    ycc = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.frombytes("YCbCr", (6, 5), ycc.tobytes()).save(tmp_path / "y.tif")
    y, cb, cr = (ycc[..., i].astype(np.float64) for i in range(3))
    jfif = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), y + 1.772 * (cb - 128)])
    expected = np.clip(np.rint(jfif), 0, 255).transpose(1, 2, 0)
    assert np.abs(_decode(tmp_path / "y.tif").astype(int) - expected).max() <= 1
    hsv = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    expected = [[colorsys.hsv_to_rgb(*(hsv[i, j] / 255)) for j in range(6)] for i in range(5)]
    got = to_uint8(Image.frombytes("HSV", (6, 5), hsv.tobytes()), 3).astype(int)
    assert np.abs(got - np.rint(np.array(expected) * 255)).max() <= 1
    bits = RNG.integers(0, 2, (5, 6)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert _mode(tmp_path / "b.png") == "1"
    assert np.array_equal(_decode(tmp_path / "b.png", 1)[..., 0], bits * np.uint8(255))


def _srgb_to_lab(rgb):
    """The forward transform (sRGB -> linear -> XYZ -> CIELAB, D65), the inverse of what is tested."""
    c = np.asarray(rgb, np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def test_lab_to_srgb(tmp_path):
    assert np.allclose(_srgb_to_lab([255, 0, 0]), [53.24, 80.09, 67.20], atol=0.02)  # the published red
    rgb = np.concatenate([[[255, 255, 255], [0, 0, 0]], RNG.integers(30, 226, (40, 3))])
    lab = _srgb_to_lab(rgb)  # stored as Pillow's bytes: L* * 255 / 100, a* + 128, b* + 128
    stored = np.stack([lab[:, 0] * 2.55, lab[:, 1] + 128, lab[:, 2] + 128], -1)
    Image.frombytes("LAB", (len(rgb), 1), np.rint(stored).astype(np.uint8).tobytes()).save(tmp_path / "lab.tif")
    got = _decode(tmp_path / "lab.tif")[0].astype(int)
    assert got[:2].tolist() == [[255, 255, 255], [0, 0, 0]]  # L* = 100 is white
    assert np.abs(got - rgb).max() <= 3  # bytes hold L* to 0.4 and a*, b* to 1


def test_transparent_colour_and_plain_8bit(tmp_path):
    rgb = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    assert np.array_equal(_decode(tmp_path / "plain.png"), rgb)  # 8-bit RGB unchanged
    Image.fromarray(rgb).save(tmp_path / "t.png", transparency=(1, 2, 3))
    expected = rgb.copy()
    expected[(rgb == (1, 2, 3)).all(-1)] = 255
    assert np.array_equal(_decode(tmp_path / "t.png"), expected)
