"""Reading safetensors weights on a core install (torch + numpy, without the ``safetensors`` package).

A bundle's weights are safetensors files. With the ``safetensors`` package installed (the ``train`` extra)
:func:`load_weights` uses it (:func:`fsq.checkpoint.load_safetensors`, with its clear errors); without it, this
module reads the format itself, so that ``Tokenizer.from_pretrained("mnist-fsq")`` works right after
``pip install fsq-toolkit``. The format (https://github.com/huggingface/safetensors, "Format"): 8 bytes, the
little-endian length ``n`` of a JSON header; ``n`` bytes of JSON mapping each tensor's name to its ``dtype``,
``shape`` and ``data_offsets`` (begin, end) into the byte buffer that follows (``__metadata__`` holds strings);
then that buffer, tensors stored little-endian and contiguous. Nothing is executed: only numbers are read.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
MAX_HEADER = 100 * 2**20  # the reference implementation's limit


def read_safetensors(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, read without the ``safetensors`` package (``ValueError`` when the file
    is not one: truncated, a pickle, offsets out of range, an unknown dtype)."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER, len(data) - 8):
        raise ValueError(f"{path} is not a safetensors file (header length {size} out of range)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a safetensors file (its header is not JSON: {error})") from None
    buffer = memoryview(data)[8 + size :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(entry.get("dtype"))
        begin, end = entry.get("data_offsets", (0, -1))
        shape = [int(s) for s in entry.get("shape", [])]
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has an unsupported dtype {entry.get('dtype')!r}")
        numel = 1
        for s in shape:
            numel *= s
        if not 0 <= begin <= end <= len(buffer) or end - begin != numel * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} has data offsets {begin}..{end} that do not fit its shape")
        raw = bytearray(buffer[begin:end])  # a writable copy: the tensor owns its memory
        flat = torch.frombuffer(raw, dtype=dtype) if numel else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(shape).to(map_location)
    return tensors


def load_weights(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file's tensors: with the ``safetensors`` package when installed, else :func:`read_safetensors`."""
    try:
        from fsq.checkpoint import load_safetensors
    except ModuleNotFoundError:  # a core install: torch + numpy only
        if not Path(path).is_file():
            raise FileNotFoundError(f"weights file missing: {path}") from None
        return read_safetensors(path, map_location)
    return load_safetensors(path, map_location)
