"""Image files Pillow cannot write: 16-bit colour PNGs and PNG headers of any size (written byte by byte here)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def write_png(path, array: np.ndarray | None, *, size: tuple[int, int] | None = None) -> None:
    """A 16-bit PNG of ``array`` (uint16 ``(H, W)`` or ``(H, W, C)``), or with ``size=(w, h)`` an 8-bit grey PNG
    header claiming that size over a few bytes of data (for decompression-bomb checks)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if size is not None:
        header, data = struct.pack(">IIBBBBB", *size, 8, 0, 0, 0, 0), zlib.compress(b"\0" * 64)
    else:
        array = array if array.ndim == 3 else array[..., None]
        height, width, channels = array.shape
        header = struct.pack(">IIBBBBB", width, height, 16, _COLOUR_TYPES[channels], 0, 0, 0)
        data = zlib.compress(b"".join(b"\0" + row.astype(">u2").tobytes() for row in array))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


@pytest.fixture
def png_writer():
    """``write_png`` (see above), for tests that need PNG files Pillow cannot write."""
    return write_png
