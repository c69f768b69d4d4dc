"""Image anchors at equal bits: the naive codec checked by hand, JPEG / WebP at the quality nearest a target (their
bits counted from the files), and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq.anchors.images import (
    QUALITIES,
    RIFF_HEADER_BYTES,
    encode,
    encode_at_bits,
    jpeg_header_bytes,
    jpeg_payload_bytes,
    naive_bits,
    naive_bits_split,
    naive_downsampled,
    naive_image_codec,
    nearest_quality,
    run_image_anchor,
)


def _photo_like(seed: int, size: int = 32, channels: int = 3) -> np.ndarray:
    """A smooth uint8 (C, H, W) image with edges and a little noise: gradients, a disc, sinusoids."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    planes = []
    for c in range(channels):
        phase = rng.uniform(0, 2 * np.pi)
        plane = 0.4 + 0.3 * np.sin(6 * x + 4 * y + phase) + 0.2 * ((x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.08)
        planes.append(plane + rng.normal(0, 0.02, plane.shape) + 0.1 * c * x)
    return (np.clip(np.stack(planes), 0, 1) * 255).round().astype(np.uint8)


def test_bits_split_rule():
    assert naive_bits_split(10, 3) == [4, 3, 3]
    assert naive_bits_split(11, 3) == [4, 4, 3]
    assert naive_bits_split(12, 3) == [4, 4, 4]
    assert naive_bits_split(3, 3) == [1, 1, 1]
    assert naive_bits_split(10, 1) == [10]
    assert naive_bits((8, 8), 10) == 640


def test_naive_codec_by_hand():
    """A 4x4 RGB image of four constant 2x2 blocks on a 2x2 grid at 10 bits (4 + 3 + 3): the codes are each block's
    colour rounded to 15 (red) and 7 (green, blue) steps; a constant image comes back constant."""
    blocks = torch.tensor([[0.2, 0.5], [0.9, 0.0]])  # one value per block, all channels
    image = blocks.repeat_interleave(2, 0).repeat_interleave(2, 1).expand(1, 3, 4, 4).clone()
    codes = naive_downsampled(image, (2, 2), 10)
    assert torch.allclose(codes[0, 0], torch.tensor([[3 / 15, 8 / 15], [14 / 15, 0.0]]))  # 0.5*15=7.5 -> 8 (even)
    assert torch.allclose(codes[0, 1], torch.tensor([[1 / 7, 4 / 7], [6 / 7, 0.0]]))  # 0.2*7=1.4, 3.5, 6.3
    assert torch.equal(codes[0, 1], codes[0, 2])
    flat = torch.full((2, 3, 8, 8), 0.2)
    out = naive_image_codec(flat, (2, 2), 10)
    assert out.shape == flat.shape
    expected = torch.tensor([3 / 15, 1 / 7, 1 / 7]).view(1, 3, 1, 1).expand_as(out)
    assert torch.allclose(out, expected, atol=1e-6)
    # bicubic, not bilinear: the upsampled block image differs from the video baseline's bilinear one
    from fsq.models.baselines import naive_codec

    bilinear = naive_codec(image, (2, 2), [16, 8, 8])
    assert not torch.allclose(naive_image_codec(image, (2, 2), 10), bilinear)
    batch = run_image_anchor("naive", image, (2, 2), 10)
    assert batch.bits.tolist() == [40] and batch.quality.tolist() == [-1]


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_codec_at_bits_is_nearest_over_all_qualities(codec):
    """The binary search returns the quality whose bits are nearest the target among every quality."""
    image = _photo_like(1)
    low, high = QUALITIES[codec]
    sizes = {q: encode(image, codec, q) for q in range(low, high + 1)}
    for measure, key in (("file", "bits"), ("payload", "payload_bits")):
        floor = getattr(sizes[low], key)
        for target in (floor * 1.3, floor * 2.0, floor * 3.1):
            chosen = encode_at_bits(image, codec, target, measure)
            best = min(abs(getattr(e, key) - target) for e in sizes.values())
            assert abs(getattr(chosen, key) - target) == best, (measure, target, chosen.quality)
            assert abs(getattr(chosen, key) - target) < 0.15 * target  # within 15% of the target here


def test_real_bits_and_headers():
    """JPEG's header is the same bytes for two different images at one quality and size (so the payload is the
    scan plus 7 bits naming the quality); WebP's payload is the file without its 20 RIFF bytes."""
    a, b = _photo_like(2, 64), _photo_like(3, 64)
    ja, jb = encode(a, "jpeg", 30), encode(b, "jpeg", 30)
    import io

    from PIL import Image

    def jpeg_bytes(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image.transpose(1, 2, 0), "RGB").save(buffer, "JPEG", quality=30, optimize=False)
        return buffer.getvalue()

    da, db = jpeg_bytes(a), jpeg_bytes(b)
    assert da != db and jpeg_header_bytes(da) == jpeg_header_bytes(db)
    assert ja.bits == 8 * len(da) and ja.payload_bits == 8 * jpeg_payload_bytes(da) + 7
    assert ja.bits - ja.payload_bits == 8 * (len(jpeg_header_bytes(da)) + 2) - 7  # header + EOI, less 7 bits
    assert jb.bits == 8 * len(db)
    w = encode(a, "webp", 30)
    assert w.bits - w.payload_bits == 8 * RIFF_HEADER_BYTES
    assert w.decoded.shape == a.shape and w.decoded.dtype == np.uint8
    grey = encode(a[:1], "jpeg", 50)
    assert grey.decoded.shape == (1, 64, 64)


def test_unreachable_target_is_reported_not_clipped():
    """JPEG's header alone is thousands of bits: a 640-bit target gets quality 1 and its real, larger size."""
    image = torch.from_numpy(_photo_like(4, 32)).float().div(255)[None]
    batch = run_image_anchor("jpeg", image, (8, 8), 10)
    assert batch.quality.tolist() == [1] and batch.bits[0] > 640
    assert batch.decoded.shape == image.shape and 0 <= batch.decoded.min() and batch.decoded.max() <= 1


def test_nearest_quality_rule():
    sizes = {q: 10 * q for q in range(1, 11)}
    assert nearest_quality(sizes.__getitem__, 1, 10, 44) == 4
    assert nearest_quality(sizes.__getitem__, 1, 10, 46) == 5
    assert nearest_quality(sizes.__getitem__, 1, 10, 3) == 1
    assert nearest_quality(sizes.__getitem__, 1, 10, 500) == 10


def test_bad_input_errors():
    image = _photo_like(5, 16)
    with pytest.raises(ValueError, match="cannot give each of 3 channels"):
        naive_bits_split(2, 3)
    with pytest.raises(ValueError, match="whole number of bits"):
        naive_bits_split(9.5, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown image anchor 'png'"):
        run_image_anchor("png", torch.zeros(1, 3, 8, 8), (2, 2), 10)
    with pytest.raises(ValueError, match="unknown image codec 'avif'"):
        encode(image, "avif", 50)
    with pytest.raises(ValueError, match="uint8 \\(C, H, W\\)"):
        encode(image.astype(np.float32), "jpeg", 50)
    with pytest.raises(ValueError, match="got 4 channels"):
        encode(np.zeros((4, 8, 8), np.uint8), "webp", 50)
    with pytest.raises(ValueError, match="target_bits must be positive"):
        encode_at_bits(image, "jpeg", 0)
    with pytest.raises(ValueError, match="measure must be"):
        encode_at_bits(image, "jpeg", 800, "header")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="\\(B, C, H, W\\)"):
        run_image_anchor("naive", torch.zeros(3, 8, 8), (2, 2), 10)
    with pytest.raises(ValueError, match="must fit the frames"):
        naive_image_codec(torch.zeros(1, 3, 4, 4), (8, 8), 10)
    with pytest.raises(ValueError, match="not a complete JPEG"):
        jpeg_payload_bytes(b"RIFF1234WEBP")
