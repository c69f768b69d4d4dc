"""Classical image codecs as anchors at equal bits: the naive codec, JPEG and WebP (Pillow) on the same images.

A tokenizer spends a fixed number of bits per image (tokens x log2(codebook size)); these anchors spend about as
many, so a reconstruction quality can be read against what a plain codec reaches at the same cost.

- **naive** (:func:`naive_image_codec`): area-downsample the image to the token grid ``(h, w)``, keep ``B`` bits
  per position split over the channels (:func:`naive_bits_split`: ``floor(B / C)`` bits each, the remaining
  ``B mod C`` bits one each to the first channels: RGB at 10 bits is 4 + 3 + 3 (R, G, B), at 11 bits 4 + 4 + 3, at
  12 bits 4 + 4 + 4; grey keeps all ``B``), quantize each channel uniformly to ``2 ** bits`` levels
  (:func:`fsq.models.baselines.quantize_uniform`), upsample bicubically (``align_corners=False``) and clamp to
  ``[0, 1]``. The video baseline's :func:`fsq.models.baselines.naive_codec` does the work; only the split of the
  bits (power-of-two levels per channel, as the issue's 4 + 3 + 3 asks) and the bicubic upsampling differ from
  the video comparison. Its cost is exactly ``h * w * B`` bits: a fixed-length code, no header.
- **jpeg** and **webp** (:func:`codec_at_bits`): each image is encoded by Pillow at the quality whose size is
  nearest a target number of bits, found by binary search over the quality (JPEG 1..100, WebP 0..100), then the
  nearer of the two qualities that bracket the target (the search assumes the size grows with the quality; where
  it does not, the result is still a quality whose neighbour is on the other side of the target). Two sizes are
  reported for every image, and either can be the one matched (``measure``):

  - ``bits``: the whole file, 8 x its bytes, headers included.
  - ``payload_bits``: JPEG: the entropy-coded scan (the bytes after the start-of-scan header, up to and without
    the end-of-image marker) plus 7 bits that name the quality (1..100). Everything else in the file (JFIF,
    quantization tables, Pillow's standard Huffman tables, frame and scan headers: 623 bytes for 64 px RGB) is
    a function of the quality, the image size and the channel count alone (``optimize=False``, so the Huffman
    tables are the standard ones; tests/anchors/test_image_anchors.py checks two different images give the same
    header bytes), so a decoder that knows the size can rebuild it from those 7 bits. WebP: the ``VP8 `` chunk's
    data (its 10-byte frame header included), without the 12-byte RIFF header and the 8-byte chunk header.

  The lowest quality can still spend more than the target (JPEG's header alone is ~5,000 bits): results say so
  (``reached``), never clip. Encoding options: JPEG with Pillow's defaults (4:2:0 chroma subsampling, standard
  Huffman tables); WebP lossy with ``method=6`` (the slowest, best compression).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

from fsq.models.baselines import naive_codec, quantize_uniform

IMAGE_ANCHORS = ("naive", "jpeg", "webp", "jpeg-payload", "webp-payload")
QUALITIES = {"jpeg": (1, 100), "webp": (0, 100)}
QUALITY_BITS = 7  # JPEG's payload names its quality (1..100) in ceil(log2(100)) bits
RIFF_HEADER_BYTES = 20  # WebP: "RIFF" size "WEBP" (12 bytes) + the "VP8 " chunk's tag and size (8 bytes)
Measure = Literal["file", "payload"]


def naive_bits_split(bits: int, channels: int) -> list[int]:
    """Bits per channel of the naive codec for ``bits`` per position: ``floor(bits / channels)`` each, then one
    more for each of the first ``bits mod channels`` channels (RGB at 10 bits: ``[4, 3, 3]``). Every channel needs
    at least one bit: fewer bits than channels is a ValueError."""
    if isinstance(bits, bool) or not isinstance(bits, int) or channels < 1:
        raise ValueError(f"the naive codec needs a whole number of bits and channels >= 1, got {bits!r}, {channels}")
    if bits < channels:
        raise ValueError(f"{bits} bits per position cannot give each of {channels} channels one bit")
    base, extra = divmod(bits, channels)
    return [base + (1 if c < extra else 0) for c in range(channels)]


def naive_image_codec(images: torch.Tensor, grid: Sequence[int], bits: int) -> torch.Tensor:
    """The naive codec on ``(B, C, H, W)`` images in ``[0, 1]``: area-downsample to ``grid`` ``(h, w)``, keep
    :func:`naive_bits_split` bits per channel (``2 ** b`` uniform levels), bicubic upsample, clamp to ``[0, 1]``.
    It spends ``h * w * bits`` bits per image."""
    if images.ndim != 4:
        raise ValueError(f"naive_image_codec takes (B, C, H, W) images, got shape {tuple(images.shape)}")
    levels = [2**b for b in naive_bits_split(bits, images.shape[1])]
    return naive_codec(images, grid, levels, upsampling="bicubic")


def naive_bits(grid: Sequence[int], bits: int) -> int:
    """Bits the naive codec spends on one image: ``h * w * bits`` (a fixed-length code)."""
    return math.prod(grid) * bits


def naive_downsampled(images: torch.Tensor, grid: Sequence[int], bits: int) -> torch.Tensor:
    """The naive codec's code values before upsampling, ``(B, C, h, w)`` in ``[0, 1]`` (for checks by hand)."""
    levels = [2**b for b in naive_bits_split(bits, images.shape[1])]
    return quantize_uniform(torch.nn.functional.interpolate(images.float(), size=tuple(grid), mode="area"), levels)


@dataclass(frozen=True)
class Encoded:
    """One image through a codec: the ``decoded`` uint8 ``(C, H, W)`` array, the ``quality`` used, ``bits`` (the
    whole file) and ``payload_bits`` (see the module docstring)."""

    decoded: np.ndarray
    quality: int
    bits: int
    payload_bits: int


def jpeg_payload_bytes(data: bytes) -> int:
    """Bytes of a baseline JPEG's entropy-coded scan: after the start-of-scan header, before the end-of-image
    marker. A file without exactly one scan, or not ending in EOI, is a ValueError."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        raise ValueError("not a complete JPEG file (no SOI at the start or no EOI at the end)")
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {position}")
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in (0xC2, 0xC3, 0xC6, 0xC7, 0xCA, 0xCB, 0xCE, 0xCF):
            raise ValueError("progressive or lossless JPEG: the payload is not one baseline scan")
        if marker == 0xDA:  # start of scan: entropy-coded data follows its header (0xFF in it is byte-stuffed)
            scan_start = position + 2 + length
            if data.find(b"\xff\xda", scan_start) >= 0:
                raise ValueError("multi-scan JPEG: the payload is not one scan")
            return len(data) - 2 - scan_start
        position += 2 + length
    raise ValueError("JPEG file without a start-of-scan segment")


def jpeg_header_bytes(data: bytes) -> bytes:
    """The bytes of a JPEG file before its entropy-coded scan (every marker segment up to and with SOS)."""
    return data[: len(data) - 2 - jpeg_payload_bytes(data)]


def _mode(channels: int) -> str:
    if channels not in (1, 3):
        raise ValueError(f"JPEG and WebP anchors take grey (1) or RGB (3) images, got {channels} channels")
    return "L" if channels == 1 else "RGB"


def encode(image: np.ndarray, codec: str, quality: int) -> Encoded:
    """Encode one uint8 ``(C, H, W)`` image with Pillow's ``codec`` (``jpeg`` or ``webp``) at ``quality``, decode
    it back, and count its bits."""
    if codec not in QUALITIES:
        raise ValueError(f"unknown image codec {codec!r}; known: {', '.join(QUALITIES)}")
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"encode takes one uint8 (C, H, W) image, got {image.dtype} of shape {image.shape}")
    channels = image.shape[0]
    pil = Image.fromarray(image[0] if channels == 1 else image.transpose(1, 2, 0), _mode(channels))
    buffer = io.BytesIO()
    if codec == "jpeg":
        pil.save(buffer, "JPEG", quality=quality, optimize=False)
    else:
        pil.save(buffer, "WEBP", quality=quality, method=6, lossless=False)
    data = buffer.getvalue()
    if codec == "jpeg":
        payload = 8 * jpeg_payload_bytes(data) + QUALITY_BITS
    else:
        if data[12:16] != b"VP8 ":
            raise ValueError(f"WebP file with a {data[12:16]!r} chunk, expected a simple lossy 'VP8 ' file")
        payload = 8 * (len(data) - RIFF_HEADER_BYTES)
    with Image.open(io.BytesIO(data)) as decoded_image:
        decoded = np.asarray(decoded_image.convert(_mode(channels)))
    decoded = decoded[None] if channels == 1 else decoded.transpose(2, 0, 1)
    return Encoded(np.ascontiguousarray(decoded), quality, 8 * len(data), payload)


def nearest_quality(size: Callable[[int], int], low: int, high: int, target: float) -> int:
    """The quality in ``[low, high]`` whose ``size(quality)`` is nearest ``target``, by binary search for the
    highest quality within the target and then the nearer of it and the next one (ties: the lower quality)."""
    lo, hi = low, high
    while lo < hi:  # the highest quality with size <= target (low when none is)
        mid = (lo + hi + 1) // 2
        if size(mid) <= target:
            lo = mid
        else:
            hi = mid - 1
    if lo < high and abs(size(lo + 1) - target) < abs(size(lo) - target):
        return lo + 1
    return lo


def encode_at_bits(image: np.ndarray, codec: str, target_bits: float, measure: Measure = "file") -> Encoded:
    """One uint8 ``(C, H, W)`` image through ``codec`` at the quality whose ``measure`` of bits (``file``: the
    whole file; ``payload``: see the module docstring) is nearest ``target_bits``."""
    if not target_bits > 0:
        raise ValueError(f"target_bits must be positive, got {target_bits!r}")
    if measure not in ("file", "payload"):
        raise ValueError(f"measure must be 'file' or 'payload', got {measure!r}")
    cache: dict[int, Encoded] = {}

    def size(quality: int) -> int:
        if quality not in cache:
            cache[quality] = encode(image, codec, quality)
        return cache[quality].bits if measure == "file" else cache[quality].payload_bits

    if codec not in QUALITIES:
        raise ValueError(f"unknown image codec {codec!r}; known: {', '.join(QUALITIES)}")
    quality = nearest_quality(size, *QUALITIES[codec], target_bits)
    size(quality)
    return cache[quality]


@dataclass(frozen=True)
class AnchorBatch:
    """A batch through one anchor: ``decoded`` float ``(B, C, H, W)`` in ``[0, 1]``, per image ``bits`` (whole
    file), ``payload_bits`` and ``quality`` (the naive codec: its fixed bits, quality -1)."""

    decoded: torch.Tensor
    bits: np.ndarray
    payload_bits: np.ndarray
    quality: np.ndarray


def anchor_spec(name: str) -> tuple[str, Measure]:
    """``(codec, measure)`` of an anchor name in :data:`IMAGE_ANCHORS` (``jpeg-payload``: JPEG matched on its
    payload bits); anything else is a ValueError listing them."""
    if name not in IMAGE_ANCHORS:
        raise ValueError(f"unknown image anchor {name!r}; known: {', '.join(IMAGE_ANCHORS)}")
    codec, _, measure = name.partition("-")
    return codec, "payload" if measure else "file"


def run_image_anchor(name: str, images: torch.Tensor, grid: Sequence[int], bits_per_token: int) -> AnchorBatch:
    """Run anchor ``name`` on ``(B, C, H, W)`` images in ``[0, 1]`` at the bits of a tokenizer with a ``grid``
    ``(h, w)`` of tokens of ``bits_per_token`` bits: the naive codec at exactly those bits, JPEG / WebP at the
    quality nearest them (images rounded to uint8 first, as a codec gets them)."""
    codec, measure = anchor_spec(name)
    if images.ndim != 4:
        raise ValueError(f"image anchors take (B, C, H, W) images, got shape {tuple(images.shape)}")
    n = images.shape[0]
    target = naive_bits(grid, bits_per_token)
    if codec == "naive":
        decoded = naive_image_codec(images, grid, bits_per_token)
        fixed = np.full(n, target, dtype=np.int64)
        return AnchorBatch(decoded, fixed, fixed.copy(), np.full(n, -1, dtype=np.int64))
    pixels = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    results = [encode_at_bits(pixels[i], codec, target, measure) for i in range(n)]
    decoded = torch.from_numpy(np.stack([r.decoded for r in results])).to(images.device).float().div_(255)
    return AnchorBatch(
        decoded,
        np.array([r.bits for r in results], dtype=np.int64),
        np.array([r.payload_bits for r in results], dtype=np.int64),
        np.array([r.quality for r in results], dtype=np.int64),
    )
