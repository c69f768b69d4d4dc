"""A tokenizer as a codec: a signal (or its file) to a codes file and back (``fsq encode`` / ``fsq decode``).

The model is a tokenizer run dir (its newest EMA weights), a bundle folder, a shipped name or a hub repo id (the
rule of :func:`fsq.hub.resolve`; a MaskGIT bundle gives its tokenizer). Its kind (audio, image, video) comes
from its number of axes; its rate from the config it was trained with (``data.sample_rate``, or the generated
source's own), when the run dir or the bundle records it.

A tokenizer takes signals of exactly its input shape (:attr:`~fsq.models.autoencoder.TokenizerSpec.input_shape`):

- **images** must have that size (an image of another size is refused, naming the size the model takes), unless
  ``tile=True`` (``fsq encode --tile``): then the image is cut into tiles of the model's size (the last row and
  column of tiles padded by repeating the image's edge), each encoded on its own; the codes file records the tile
  layout (``tiles``: rows, columns) and :func:`decode` puts the tiles back and crops the padding. Each tile is coded
  alone, as the model was trained on crops of its size, so seams can show at tile borders;
- **timed signals** (audio, video) are cut in time into chunks of the model's length ``T`` (audio: samples;
  video: frames, ``1 + 4k`` for a causal 4x temporal model such as 17), each encoded on its own, as the model was
  trained: a causal video model encodes the first frame of every chunk as an image, then the rest. The last chunk
  is padded (audio with silence, ``0.5``; video by repeating its last frame) and the decoder drops the padding.
  Video frames must have the model's height and width (refused otherwise, naming them). A **causal** video model
  also encodes, as one chunk of exactly its own length, a signal of ``1 + f*k`` frames up to the model's length
  (``f`` its time factor): one frame is an image, a one-frame video, whose codes are the first frame's of a clip
  (MAGVIT-v2's joint image-video tokenizer); :func:`encode_file` reads an image file for such a model as that,
  and :func:`decode_file` writes a one-frame decode to an image file (``.png``) when asked.

Chunks go through the model ``batch_size`` at a time (encode and decode alike; default :func:`batch_size_of`:
as many as hold 4M signal values, 1 to 64): a convolution's floating-point result can depend on the batch it runs
in, so the reconstruction of :func:`decode` equals, bit for bit, ``tokenizer.decode_indices(tokenizer.tokenize(
chunks))`` run on the same batches.

A codes file records the model's fingerprint (sha256 of its spec and weights: a run dir and the bundle exported
from it share it); :func:`decode` refuses codes of another model, naming both fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import hub, rundir
from fsq.config import TokenizerExperiment, read_run_config
from fsq.data.media import IMAGE_FILES, WRITES, check_output, read_signal, write_signal
from fsq.data.resample import resample_time
from fsq.data.signals import IMAGE, SignalKind, kind_of_dims, to_unit
from fsq.data.synthetic_signals import RATES
from fsq.inference.codes import (
    FORMAT,
    TILED_VERSION,
    Codes,
    bits_per_token,
    check_codes_path,
    read_codes,
    smallest_dtype,
)
from fsq.models.autoencoder import Tokenizer
from fsq.quantizers.registry import family_of
from fsq.stages.tokenizer import load_run

BATCH_VALUES = 2**22  # signal values per forward pass (at most 64 chunks, at least one): 64 chunks of 256 audio
# samples, one 17-frame 256 px RGB clip (3.3M values; its activations in fp32 reach gigabytes)


def model_fingerprint(tokenizer: Tokenizer) -> str:
    """sha256 (32 hex digits) of the tokenizer's spec and every tensor of its state dict (names, types, bytes)."""
    digest = hashlib.sha256(json.dumps(tokenizer.spec.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def _config_rate(data: dict[str, Any]) -> float | None:
    """The rate a tokenizer config's data section trained at: ``data.sample_rate``, else a generated source's."""
    rate = data.get("sample_rate")
    return float(rate) if rate else RATES.get(str(data.get("source")))


@dataclass
class CodecModel:
    """A tokenizer ready to encode and decode: its signal kind, the rate it was trained at (None: unknown, or
    images), where it came from and its fingerprint."""

    tokenizer: Tokenizer
    kind: SignalKind
    rate: float | None
    origin: str
    fingerprint: str
    device: torch.device

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.tokenizer.spec.input_shape


def open_model(source: str | Path, device: str | torch.device = "cpu") -> CodecModel:
    """The tokenizer of a run dir, a bundle folder, a shipped name or a hub repo id, in eval mode on ``device``."""
    path = Path(source)
    config: dict[str, Any] = {}
    if (path / rundir.CONFIG).is_file() and hub.bundle_format(path) is None:
        cfg = read_run_config(path)
        if not isinstance(cfg, TokenizerExperiment):
            raise ValueError(
                f"{source} is a {cfg.stage} run, not a tokenizer run: encoding takes a tokenizer (its run dir, "
                "a tokenizer or MaskGIT bundle, or a shipped name)"
            )
        tokenizer, _ = load_run(path)
        config = {"source": cfg.data.source, "sample_rate": cfg.data.sample_rate}
    else:
        directory = hub.resolve(source)
        tokenizer = Tokenizer.from_pretrained(directory)
        metadata = hub.tokenizer_bundle(directory)[1].get("metadata") or {}
        saved = metadata.get("config") if isinstance(metadata, dict) else None
        config = saved.get("data", {}) if isinstance(saved, dict) and isinstance(saved.get("data"), dict) else {}
    kind = kind_of_dims(tokenizer.spec.dims)
    fingerprint = model_fingerprint(tokenizer)
    device = torch.device(device)
    return CodecModel(
        tokenizer.to(device).eval(),
        kind,
        _config_rate(config) if kind.timed else None,
        str(source),
        fingerprint,
        device,
    )


def batch_size_of(model: CodecModel) -> int:
    """Chunks per forward pass (encode and decode alike): as many as hold :data:`BATCH_VALUES` values, 1 to 64."""
    values = model.tokenizer.spec.in_channels * math.prod(model.input_shape)
    return max(1, min(64, BATCH_VALUES // values))


# ------------------------------------------------------------------------------------------------------ encode
@dataclass
class Encoded:
    """The codes of a signal and the seconds the model took (``real_time_factor``: seconds of signal per second
    of compute, for timed signals with a rate)."""

    codes: Codes
    seconds: float

    @property
    def real_time_factor(self) -> float | None:
        duration = self.codes.header.get("duration_s")
        return duration / self.seconds if duration and self.seconds > 0 else None


def _check_signal(model: CodecModel, signal: torch.Tensor, name: str, tile: bool = False) -> None:
    """A ValueError naming ``name`` and the sizes when the model cannot take ``signal`` ``(C, *axes)`` (``tile``:
    an image of any size, cut into tiles of the model's size)."""
    kind, spec = model.kind, model.tokenizer.spec
    if signal.ndim != 1 + kind.dims:
        raise ValueError(
            f"{name}: a signal of shape {tuple(signal.shape)}, but {model.origin} is a tokenizer of {kind.name} "
            f"{kind.layout()}"
        )
    if signal.shape[0] != spec.in_channels:
        hint = " (convert it to mono)" if kind.name == "audio" and spec.in_channels == 1 else ""
        raise ValueError(
            f"{name}: {signal.shape[0]} channel(s) (shape {tuple(signal.shape)}), but {model.origin} takes "
            f"{spec.in_channels}{hint}"
        )
    fixed = model.input_shape[1:] if kind.timed else model.input_shape
    have = tuple(signal.shape[2:] if kind.timed else signal.shape[1:])
    if tile and kind.timed:
        raise ValueError(f"{name}: tiling is for images; {kind.name} is cut into chunks in time by itself")
    if have != fixed and not (tile and min(have) > 0):
        what = "frames" if kind.timed else "images"
        advice = "crop or resize it to that size first" + ("" if kind.timed else ", or tile it (--tile, tile=True)")
        raise ValueError(
            f"{name}: {what} of {'x'.join(map(str, have))} px, but {model.origin} takes {what} of exactly "
            f"{'x'.join(map(str, fixed))} px ({advice})"
        )
    if signal.is_floating_point():
        finite = torch.isfinite(signal)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(
                f"{name}: {bad} of {signal.numel()} values are NaN or infinite; the model takes finite signals"
            )
        low, high = (float(signal.min()), float(signal.max())) if signal.numel() else (0.0, 0.0)
        if low < -0.5 or high > 1.5:
            raise ValueError(
                f"{name}: float values in [{low:g}, {high:g}], but signals are floats in [0, 1] (audio: 0.5 is "
                "silence, so map [-1, 1] audio with x / 2 + 0.5; 8-bit values: divide by 255 or give uint8)"
            )
    elif signal.dtype != torch.uint8:
        raise ValueError(f"{name}: values of type {signal.dtype}; signals are uint8, or float in [0, 1]")
    if kind.timed and signal.shape[1] < 1:
        raise ValueError(f"{name}: an empty {kind.name} signal (no {'samples' if kind.dims == 1 else 'frames'})")


def chunks_of(signal: torch.Tensor, kind: SignalKind, length: int) -> torch.Tensor:
    """A timed signal ``(C, T, ...)`` cut into ``ceil(T / length)`` chunks ``(n, C, length, ...)``; the last one
    padded (audio with silence 0.5, video by repeating its last frame)."""
    n = max(1, math.ceil(signal.shape[1] / length))
    pad = n * length - signal.shape[1]
    if pad:
        if kind.dims == 1:
            tail = torch.full((signal.shape[0], pad), 0.5 if signal.is_floating_point() else 128, dtype=signal.dtype)
        else:
            tail = signal[:, -1:].expand(-1, pad, *signal.shape[2:])
        signal = torch.cat([signal, tail], dim=1)
    return signal.reshape(signal.shape[0], n, length, *signal.shape[2:]).transpose(0, 1).contiguous()


def tiles_of(image: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, list[int]]:
    """An image ``(C, H, W)`` cut into tiles ``(rows * cols, C, h, w)`` of ``size`` (row by row), its bottom and
    right edges repeated to fill the last row and column; and ``[rows, cols]``."""
    h, w = size
    rows, cols = math.ceil(image.shape[1] / h), math.ceil(image.shape[2] / w)
    pad_h, pad_w = rows * h - image.shape[1], cols * w - image.shape[2]
    if pad_h or pad_w:
        image = torch.cat([image, image[:, -1:].expand(-1, pad_h, -1)], 1) if pad_h else image
        image = torch.cat([image, image[:, :, -1:].expand(-1, -1, pad_w)], 2) if pad_w else image
    grid = image.reshape(image.shape[0], rows, h, cols, w).permute(1, 3, 0, 2, 4)
    return grid.reshape(rows * cols, image.shape[0], h, w).contiguous(), [rows, cols]


def untile(tiles: torch.Tensor, layout: list[int], height: int, width: int) -> torch.Tensor:
    """The image ``(C, height, width)`` of :func:`tiles_of`'s ``tiles`` laid out as ``layout`` (padding cropped)."""
    rows, cols = layout
    n, c, h, w = tiles.shape
    image = tiles.reshape(rows, cols, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, rows * h, cols * w)
    return image[:, :height, :width]


def chunk_length(model: CodecModel, frames: int) -> int:
    """The frames (samples) per chunk for a timed signal of ``frames``: the model's length, or for a causal video
    model a shorter signal's own length when the model takes it (``1 + f*k`` frames; 1: an image)."""
    spec = model.tokenizer.spec
    length = model.input_shape[0]
    if model.kind.dims == 3 and spec.causal and frames < length and spec.accepts_frames(frames):
        return frames
    return length


def chunk_grid(model: CodecModel, length: int) -> tuple[int, ...]:
    """The token grid of one chunk of ``length`` frames (samples); the model's grid at its own length."""
    spec = model.tokenizer.spec
    return tuple(spec.grid_shape) if length == model.input_shape[0] else tuple(spec.stage_shapes(length)[-1])


def _rate_for(
    model: CodecModel, name: str, file_rate: float | None, rate: float | None, resample: bool
) -> tuple[float | None, float | None]:
    """(the signal's rate, the rate to bring it to or None): the file's own rate, else ``rate``, else the model's."""
    kind = model.kind
    if not kind.timed:
        if rate is not None:
            raise ValueError(f"{name}: a rate was given, but {kind.name}s have none")
        return None, None
    if file_rate is not None and rate is not None and abs(file_rate - rate) > 1e-9 * max(file_rate, rate):
        raise ValueError(f"{name}: the file's rate is {file_rate:g} {kind.rate_unit}, but a rate of {rate:g} was given")
    have = file_rate if file_rate is not None else (rate if rate is not None else model.rate)
    if have is None or model.rate is None or abs(have - model.rate) <= 1e-9 * max(have, model.rate):
        return have, None
    if not resample:
        raise ValueError(
            f"{name}: {kind.name} at {have:g} {kind.rate_unit}, but {model.origin} was trained at {model.rate:g} "
            f"{kind.rate_unit}: resample it (`--resample`, resample=True) or give it at that rate"
        )
    return have, model.rate


def encode(
    model: CodecModel,
    signal: torch.Tensor,
    *,
    rate: float | None = None,
    name: str = "the signal",
    resample: bool = False,
    batch_size: int | None = None,
    tile: bool = False,
) -> Encoded:
    """The codes of one ``signal`` ``(C, *axes)`` (uint8, or float in ``[0, 1]``) at ``rate`` (timed signals: None
    means the model's rate); ``resample`` brings a timed signal at another rate to the model's (else refused);
    ``tile``: an image of another size than the model's is cut into tiles of its size (else refused)."""
    have, target = _rate_for(model, name, None, rate, resample)
    if target is not None:
        assert have is not None
        signal = resample_time(signal, have, target)
        have = target
    _check_signal(model, signal, name, tile)
    batch_size = batch_size or batch_size_of(model)
    kind, spec, tokenizer = model.kind, model.tokenizer.spec, model.tokenizer
    length = chunk_length(model, int(signal.shape[1])) if kind.timed else None
    layout = None
    if length is not None:
        chunks = chunks_of(signal, kind, length)
    elif tuple(signal.shape[1:]) != tuple(model.input_shape):  # tile=True: an image of another size, in tiles
        chunks, layout = tiles_of(signal, (model.input_shape[0], model.input_shape[1]))
    else:
        chunks = signal[None]
    start = time.perf_counter()
    parts = []
    with torch.inference_mode():
        for first in range(0, chunks.shape[0], batch_size):
            batch = to_unit(chunks[first : first + batch_size].to(model.device))
            parts.append(tokenizer.tokenize(batch).cpu())
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - start
    indices = torch.cat(parts)
    quantizer = tokenizer.quantizer
    per_token = family_of(quantizer).indices_per_token(quantizer)
    sizes = [int(tokenizer.codebook_size)] * per_token
    grid = list(chunk_grid(model, length)) if length is not None else list(spec.grid_shape)
    positions = math.prod(grid)
    bits = bits_per_token(sizes)
    chunk_shape = [length, *model.input_shape[1:]] if length is not None else list(model.input_shape)
    length = int(signal.shape[1]) if kind.timed else None
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": TILED_VERSION if layout is not None else 1,  # fsq before tiles reads every untiled file
        "kind": kind.name,
        "signal_shape": [int(n) for n in signal.shape],
        "signal_dtype": "uint8" if signal.dtype == torch.uint8 else "float32",
        "rate": have,
        "rate_unit": kind.rate_unit,
        "duration_s": length / have if length is not None and have else None,
        "chunk_shape": chunk_shape,
        "chunks": int(chunks.shape[0]),
        "grid_shape": grid,
        "quantizer": {
            "kind": spec.quantizer.kind,
            "levels": spec.quantizer.setting("levels"),
            "codebook_sizes": sizes,
            "description": spec.quantizer.describe(),
        },
        "bits_per_token": bits,
        "bits": bits * positions * int(chunks.shape[0]),
        "fingerprint": model.fingerprint,
        "origin": model.origin,
    }
    if layout is not None:
        header["tiles"] = layout
    if kind.timed and have:
        header["tokens_per_second"] = positions * have / chunk_shape[0]
        header["bitrate"], header["bitrate_unit"] = header["tokens_per_second"] * bits, "bits/s"
    else:
        per = positions * bits * (int(chunks.shape[0]) if layout is not None else 1)  # a tiled image: every tile
        header["bitrate"], header["bitrate_unit"] = per, "bits/image" if not kind.timed else "bits/chunk"
    array = indices.numpy().astype(smallest_dtype(max(sizes)))
    return Encoded(Codes(array, header), seconds)


# ------------------------------------------------------------------------------------------------------ decode
@dataclass
class Decoded:
    """A decoded signal: float32 ``(C, *axes)`` (not clamped, as ``Tokenizer.decode``), its rate, the seconds the
    model took."""

    signal: torch.Tensor
    kind: SignalKind
    rate: float | None
    seconds: float

    @property
    def real_time_factor(self) -> float | None:
        if not self.kind.timed or not self.rate or self.seconds <= 0:
            return None
        return self.signal.shape[1] / self.rate / self.seconds


def check_model(model: CodecModel, codes: Codes, name: str) -> None:
    """A ValueError when ``codes`` were not written by ``model`` (its fingerprint) or do not fit it."""
    h = codes.header
    if h["fingerprint"] != model.fingerprint:
        raise ValueError(
            f"{name} was encoded by another model (fingerprint {h['fingerprint']}, {h.get('origin', 'unknown')}) "
            f"than {model.origin} (fingerprint {model.fingerprint}): decode it with the model that encoded it"
        )
    quantizer = model.tokenizer.quantizer
    per_token = family_of(quantizer).indices_per_token(quantizer)
    chunk = h.get("chunk_shape")
    own = list(model.input_shape)
    if not (
        model.kind.timed
        and isinstance(chunk, list)
        and len(chunk) == len(own)
        and isinstance(chunk[0], int)
        and chunk[1:] == own[1:]
        and chunk_length(model, chunk[0]) == chunk[0]
    ):
        chunk = own  # the only chunk shape the model takes
    grid = chunk_grid(model, chunk[0]) if model.kind.timed else model.tokenizer.spec.grid_shape
    expected = {
        "kind": model.kind.name,
        "chunk_shape": chunk,
        "grid_shape": list(grid),
        "codebook_sizes": [int(model.tokenizer.codebook_size)] * per_token,
    }
    found = {
        **{k: h[k] for k in ("kind", "chunk_shape", "grid_shape")},
        "codebook_sizes": h["quantizer"]["codebook_sizes"],
    }
    wrong = [f"{k} {found[k]} (the model's: {v})" for k, v in expected.items() if found[k] != v]
    if wrong:
        raise ValueError(f"{name}: its header disagrees with the model whose fingerprint it bears: {'; '.join(wrong)}")
    shape = h["signal_shape"]
    if len(shape) != 1 + model.kind.dims or (model.kind.timed and not 0 < shape[1] <= h["chunks"] * chunk[0]):
        raise ValueError(f"{name}: signal_shape {shape} does not fit {h['chunks']} chunk(s) of {tuple(chunk)}")
    if not model.kind.timed:
        layout = h.get("tiles")
        fits = shape[1:] == own and h["chunks"] == 1  # one image of the model's size
        if layout is not None:  # tiles of the model's size covering the image, padding under one tile
            fits = layout == [math.ceil(shape[1] / own[0]), math.ceil(shape[2] / own[1])] and h["chunks"] == (
                layout[0] * layout[1]
            )
        if not fits:
            raise ValueError(
                f"{name}: signal_shape {shape} in {h['chunks']} chunk(s) (tiles {layout}) does not fit images of "
                f"{own[0]}x{own[1]} px"
            )


def decode(model: CodecModel, codes: Codes, *, name: str = "the codes", batch_size: int | None = None) -> Decoded:
    """The signal ``codes`` hold, decoded by ``model`` (which must be the model that encoded them)."""
    check_model(model, codes, name)
    batch_size = batch_size or batch_size_of(model)
    indices = torch.from_numpy(codes.codes.astype(np.int64))
    start = time.perf_counter()
    parts = []
    with torch.inference_mode():
        for first in range(0, indices.shape[0], batch_size):
            parts.append(
                model.tokenizer.decode_indices(indices[first : first + batch_size].to(model.device)).float().cpu()
            )
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - start
    chunks = torch.cat(parts)
    shape = codes.header["signal_shape"]
    if model.kind.timed:
        signal = chunks.transpose(0, 1).reshape(chunks.shape[1], -1, *chunks.shape[3:])[:, : shape[1]]
    elif codes.header.get("tiles") is not None:
        signal = untile(chunks, codes.header["tiles"], shape[1], shape[2])
    else:
        signal = chunks[0]
    return Decoded(signal.contiguous(), model.kind, codes.header["rate"], seconds)


# ------------------------------------------------------------------------------------------------------ files
def encode_file(
    model: CodecModel,
    path: str | Path,
    out: str | Path | None = None,
    *,
    rate: float | None = None,
    resample: bool = False,
    batch_size: int | None = None,
    tile: bool = False,
) -> Encoded:
    """Encode the signal file ``path`` (see :mod:`fsq.data.media` for the formats) and write ``out`` when given
    (``tile``: an image of another size than the model's, in tiles, :func:`encode`)."""
    if out is not None:
        check_codes_path(out)
    retime = rate if model.kind.name == "video" else None  # a variable-rate video file: retimed to it
    channels = model.tokenizer.spec.in_channels
    if takes_images(model) and Path(path).suffix.lower() in IMAGE_FILES:  # an image: a one-frame video
        image, file_rate = read_signal(path, IMAGE, channels)
        signal = image[:, None]
    else:
        signal, file_rate = read_signal(path, model.kind, channels, retime=retime)
    have, _ = _rate_for(model, str(path), file_rate, rate, resample)
    encoded = encode(model, signal, rate=have, name=str(path), resample=resample, batch_size=batch_size, tile=tile)
    if out is not None:
        encoded.codes.save(out)
    return encoded


def takes_images(model: CodecModel) -> bool:
    """Whether ``model`` is a causal video model, which encodes an image as a one-frame video."""
    spec = model.tokenizer.spec
    return model.kind.dims == 3 and spec.causal and spec.accepts_frames(1)


def decode_file(
    model: CodecModel, path: str | Path, out: str | Path | None = None, *, batch_size: int | None = None
) -> Decoded:
    """Decode the codes file ``path`` and write the signal to ``out`` when given (its extension picks the format;
    a one-frame video decoded by a causal video model may be written as an image, ``.png``)."""
    codes = read_codes(path)
    shape = codes.header.get("signal_shape")
    as_image = (
        out is not None
        and takes_images(model)
        and Path(out).suffix.lower() in WRITES["image"]
        and Path(out).suffix.lower() not in WRITES["video"]
    )
    if as_image and not (isinstance(shape, list) and len(shape) == 4 and shape[1] == 1):
        frames = shape[1] if isinstance(shape, list) and len(shape) > 1 else "?"
        raise ValueError(
            f"{out}: an image file holds one frame, but {path} holds {frames} frames: write "
            f"{', '.join(WRITES['video'])}"
        )
    if out is not None and not as_image:  # a wrong output format is refused before the work
        check_output(out, model.kind)
    decoded = decode(model, codes, name=str(path), batch_size=batch_size)
    if out is not None:
        if as_image:
            write_signal(out, decoded.signal[:, 0], IMAGE, None)
        else:
            write_signal(out, decoded.signal, decoded.kind, decoded.rate)
    return decoded
