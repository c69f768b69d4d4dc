"""The codes file of ``fsq encode`` / ``fsq decode``: token grids and what they need to be decoded, in one ``.npz``.

Two arrays, read with ``numpy.load(path, allow_pickle=False)`` (nothing is unpickled):

- ``codes``: the token indices, ``(chunks, *grid)`` (``(chunks, *grid, codebooks)`` for quantizers with several
  indices per position, e.g. residual FSQ), in the smallest integer type that holds the codebook (uint8, int16,
  int32 or int64). An image is one chunk; a timed signal (audio, video) is cut in time into the chunks the model
  takes (:mod:`fsq.inference.codec`);
- ``header``: one JSON string (numpy unicode) with ``format`` (``fsq-codes``), ``version``, the signal
  (``kind``, ``signal_shape`` ``[C, *axes]``, ``rate`` and its unit, ``duration_s``), the chunking
  (``chunk_shape``: the model's input axes; ``chunks``), the tokens (``grid_shape`` per chunk, ``quantizer``:
  ``kind``, ``levels`` or null, ``codebook_sizes`` (one per index of a position), ``description``), the rate
  (``bits_per_token``: the sum of log2 of the codebook sizes; ``tokens_per_second`` for timed signals with a rate,
  ``bitrate`` in ``bits/s`` then, else in ``bits/image`` or ``bits/chunk``; ``bits``: the whole payload) and the
  model (``fingerprint``: sha256 of its spec and weights, :func:`fsq.inference.codec.model_fingerprint`;
  ``origin``: what it was loaded from). An image encoded in tiles (``fsq encode --tile``) has ``tiles``
  (``[rows, columns]``, ``chunks`` = rows x columns, row by row) and version 2, which an fsq without tiles refuses
  rather than decoding one tile; every other file is version 1.

:func:`read_codes` checks everything it reads and raises a :class:`CodesFileError` (a ``ValueError``) naming the
file and the problem: not an npz (truncated, another format), a missing or malformed header, a codes array of
another shape or type than the header says, indices outside the codebook. This module imports no torch.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fsq.io import JSONFileError, parse_json
from fsq.storage import writing

FORMAT = "fsq-codes"
VERSION = 2  # the newest version this fsq reads
TILED_VERSION = 2  # the version of a tiled image's file (``tiles`` in its header); other files are version 1
REQUIRED: dict[str, type | tuple[type, ...]] = {  # header key -> its JSON type
    "format": str,
    "version": int,
    "kind": str,
    "signal_shape": list,
    "rate": (int, float, type(None)),
    "chunk_shape": list,
    "chunks": int,
    "grid_shape": list,
    "quantizer": dict,
    "bits_per_token": (int, float),
    "bitrate": (int, float),
    "bitrate_unit": str,
    "fingerprint": str,
}


class CodesFileError(ValueError):
    """A codes file that cannot be read, or whose contents disagree with themselves."""


def smallest_dtype(codebook_size: int) -> np.dtype:
    """uint8 up to 256 codes, int16 up to 2**15, int32 up to 2**31, else int64 (as token shards)."""
    for dtype, limit in ((np.uint8, 2**8), (np.int16, 2**15), (np.int32, 2**31)):
        if codebook_size <= limit:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def bits_per_token(codebook_sizes: list[int]) -> float:
    """Bits of one token position: the sum of log2 of the codebook sizes of its indices."""
    return float(sum(math.log2(n) for n in codebook_sizes))


@dataclass
class Codes:
    """The token indices of one signal and its header (see the module docstring)."""

    codes: np.ndarray
    header: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def bitrate(self) -> float:
        return float(self.header["bitrate"])

    @property
    def bitrate_unit(self) -> str:
        return str(self.header["bitrate_unit"])

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (``.npz``; atomic: a temporary name, then a rename); returns it."""
        path = check_codes_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with writing(path, temporary, what="the codes"):
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, codes=self.codes, header=np.array(json.dumps(self.header)))
            os.replace(temporary, path)
        return path


def check_codes_path(path: str | os.PathLike) -> Path:
    """``path`` when it names a ``.npz`` file, else a ValueError."""
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"{path}: codes are written to a .npz file")
    return Path(path)


def read_codes(path: str | os.PathLike | io.BytesIO) -> Codes:
    """The codes of an ``fsq encode`` file, checked (a :class:`CodesFileError` naming the problem otherwise)."""
    name = str(path) if not isinstance(path, io.BytesIO) else "the codes"
    if not isinstance(path, io.BytesIO) and not Path(path).is_file():
        raise FileNotFoundError(f"no such codes file: {name}")
    try:
        with open(path, "rb") if not isinstance(path, io.BytesIO) else path as handle:
            magic = handle.read(6)
            handle.seek(0)
            if magic[:4] != b"PK\x03\x04" and magic != b"\x93NUMPY":
                raise CodesFileError(
                    f"{name}: not an fsq codes file (not an .npz archive); write one with `fsq encode`"
                )
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise CodesFileError(f"{name}: a single .npy array, not an fsq codes file (the .npz of `fsq encode`)")
            with data:
                missing = [k for k in ("codes", "header") if k not in data.files]
                if missing:
                    raise CodesFileError(
                        f"{name}: not an fsq codes file: no {' and no '.join(missing)} array (it holds {data.files})"
                    )
                codes, text = data["codes"], data["header"]
    except CodesFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:  # truncated, another format
        raise CodesFileError(
            f"{name}: not a readable fsq codes file ({type(error).__name__}: {error}); write one with `fsq encode`"
        ) from error
    if text.dtype.kind != "U" or text.ndim != 0:
        raise CodesFileError(f"{name}: its header is not a JSON string (dtype {text.dtype}, shape {text.shape})")
    try:
        header = parse_json(str(text), name, "its header")
    except JSONFileError as error:
        raise CodesFileError(str(error)) from error
    return Codes(check_codes(codes, header, name), header)


def check_codes(codes: np.ndarray, header: Any, name: str) -> np.ndarray:
    """``codes`` when it agrees with ``header``; a :class:`CodesFileError` naming the first disagreement."""
    if not isinstance(header, dict):
        raise CodesFileError(f"{name}: its header is not a JSON object")
    if header.get("format") != FORMAT:
        raise CodesFileError(f"{name}: its header names the format {header.get('format')!r}, not {FORMAT!r}")
    for key, kind in REQUIRED.items():
        if key not in header:
            raise CodesFileError(f"{name}: its header lacks {key!r}")
        if not isinstance(header[key], kind) or isinstance(header[key], bool):
            raise CodesFileError(f"{name}: header {key!r} has the wrong type ({type(header[key]).__name__})")
    if header["version"] > VERSION:
        raise CodesFileError(f"{name}: codes file version {header['version']}; this fsq reads up to {VERSION}")
    tiles = header.get("tiles")
    if tiles is not None and not (
        header["kind"] == "image"
        and isinstance(tiles, list)
        and len(tiles) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in tiles)
        and tiles[0] * tiles[1] == header["chunks"]
    ):
        raise CodesFileError(
            f"{name}: header tiles {tiles!r} must be [rows, columns] of an image's tiles, rows x columns = chunks "
            f"({header['chunks']})"
        )
    sizes = header["quantizer"].get("codebook_sizes")
    if not isinstance(sizes, list) or not sizes or not all(isinstance(n, int) and n >= 2 for n in sizes):
        raise CodesFileError(f"{name}: header quantizer.codebook_sizes must be a list of sizes >= 2, got {sizes!r}")
    grid = header["grid_shape"]
    expected = (header["chunks"], *grid, *((len(sizes),) if len(sizes) > 1 else ()))
    if codes.dtype.kind not in "iu":
        raise CodesFileError(f"{name}: codes must be integers, got {codes.dtype}")
    if tuple(codes.shape) != expected:
        raise CodesFileError(
            f"{name}: codes of shape {tuple(codes.shape)}, but the header says {expected} "
            f"(chunks, *grid_shape{', codebooks' if len(sizes) > 1 else ''})"
        )
    limits = np.array(sizes) if len(sizes) > 1 else sizes[0]
    if codes.size and (bool((codes < 0).any()) or bool((codes >= limits).any())):
        raise CodesFileError(
            f"{name}: codes in [{int(codes.min())}, {int(codes.max())}] fall outside the codebook (sizes {sizes}): "
            "the file is damaged"
        )
    return codes
