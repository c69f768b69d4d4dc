"""Audio files to float32 ``(C, T)`` clips in ``[0, 1]`` (``0.5`` is silence): decoding, checks, channels, rate.

Decoding: ``.wav``, ``.flac`` and ``.ogg`` through ``soundfile`` (libsndfile: 8-, 16-, 24- and 32-bit PCM and
32/64-bit float wav included) when it is installed (``pip install 'fsq-toolkit[audio]'``); without it, PCM
``.wav`` (8, 16, 24, 32 bit) through Python's ``wave`` module, and the other formats are named as needing it.
Float files beyond full scale (``|x| > 1``) are clipped to it, as a player would.

Bad input gives a reason (a ``ValueError`` the readers turn into :class:`~fsq.data.items.UnreadableItem`: listed
and skipped, or raised, as ``data.on_error`` says): an empty file, a file that is not audio, a ``.wav`` cut short
(its header declares more sample data than the file holds: libsndfile would read the rest silently), a clip with
no samples, NaN or infinite samples, and a clip shorter than the time crop.

Channels (``data.channels``; unset means mono): a file with the wanted number is kept; a file with more channels
than a mono config asks for is downmixed (the mean of its channels, as speech codecs take their input); any other
mismatch (a mono file where 2 channels are asked, 6 where 2 are asked) is an error naming the file.

Rate: a file at another rate than ``data.sample_rate`` is an error naming both, unless ``data.resample``: then it
is resampled by ``soxr`` (its ``HQ`` setting) when installed, else by linear interpolation
(:func:`fsq.data.resample.resample_time`, which aliases when it shrinks the rate: install ``soxr``).
"""

from __future__ import annotations

import io
import struct
import wave
from types import ModuleType

import numpy as np
import torch

from fsq.data.items import UnreadableItem
from fsq.data.resample import resample_audio
from fsq.data.signals import AUDIO, check_rate

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
INSTALL = "pip install 'fsq-toolkit[audio]' (soundfile, soxr)"
# what streaming writers put in a RIFF size they could not know: 0, 0xFFFFFFFF, 0x7FFFFFFF or, from
# `espeak-ng --stdout`, 0x7FFFF000 (no clip in a folder of clips holds 2 GB of samples)
_STREAMED_SIZE = 0x7FFF0000


def soundfile_module() -> ModuleType | None:
    """``soundfile``, or None when it (or the libsndfile it loads) is not installed."""
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return soundfile


def wav_truncation(data: bytes) -> str | None:
    """Why a RIFF/WAVE file is cut short (its ``data`` chunk declares more bytes than follow), else None."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position = 12
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        start = position + 8
        if chunk == b"data":
            if size == 0 or size >= _STREAMED_SIZE or start + size <= len(data):
                return None
            return f"truncated: its header declares {size} bytes of samples, the file holds {len(data) - start}"
        position = start + size + (size & 1)  # chunks are padded to an even size
    return "truncated: no sample data (the file ends inside its header)" if position > len(data) else None


def _wave_decode(data: bytes) -> tuple[np.ndarray, float]:
    """PCM wav through Python's ``wave`` module: ``(float32 (T, C) in [-1, 1], rate)``."""
    try:
        with wave.open(io.BytesIO(data), "rb") as handle:
            channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
            frames = handle.readframes(handle.getnframes())
    except (wave.Error, EOFError) as error:
        if "unknown format: 3" in str(error):
            raise ValueError(f"a float wav file needs soundfile to be read: {INSTALL}") from error
        raise ValueError(f"not a PCM wav file ({error})") from error
    usable = len(frames) - len(frames) % (width * channels)
    raw = np.frombuffer(frames[:usable], dtype=np.uint8)
    if width == 1:  # 8-bit PCM is unsigned
        samples = (raw.astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit little-endian: widened to int32 by a zero low byte
        padded = np.zeros((raw.size // 3, 4), dtype=np.uint8)
        padded[:, 1:] = raw.reshape(-1, 3)
        samples = padded.view("<i4").reshape(-1).astype(np.float32) / 2.0**31
    elif width in (2, 4):
        samples = raw.view(f"<i{width}").astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"{width * 8}-bit PCM is not supported (8, 16, 24 or 32 bit)")
    return samples.reshape(-1, channels), float(rate)


def decode_audio(data: bytes, suffix: str = ".wav") -> tuple[np.ndarray, float]:
    """``(float32 (C, T) in [-1, 1], sample rate)`` of an audio file's bytes; a ValueError saying what is wrong."""
    if not data:
        raise ValueError("an empty file (0 bytes)")
    truncated = wav_truncation(data)
    if truncated:
        raise ValueError(truncated)
    soundfile = soundfile_module()
    if soundfile is not None:
        try:
            samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except (soundfile.SoundFileError, RuntimeError, TypeError) as error:  # libsndfile's own errors
            reason = str(error).split(": ", 1)[-1]  # drop "Error opening <_io.BytesIO object at 0x...>"
            raise ValueError(f"not a readable audio file ({reason})") from error
        rate = float(rate)
    elif data[:4] == b"RIFF":
        samples, rate = _wave_decode(data)
    else:
        raise ValueError(f"{suffix or 'this'} audio files need soundfile to be read: {INSTALL}")
    if samples.shape[0] == 0:
        raise ValueError("no samples (an empty clip)")
    bad = int((~np.isfinite(samples)).sum())
    if bad:
        raise ValueError(f"{bad} NaN or infinite samples")
    return np.ascontiguousarray(np.clip(samples, -1.0, 1.0).T), rate


def fit_channels(where: str, audio: np.ndarray, wanted: int | None) -> np.ndarray:
    """``audio`` ``(C, T)`` with ``wanted`` channels (None: 1) by the rule of the module docstring."""
    target = wanted or 1
    if audio.shape[0] == target:
        return audio
    if target == 1:
        return audio.mean(axis=0, keepdims=True)
    raise ValueError(
        f"{where}: {audio.shape[0]} channel(s) but data.channels={target}: files with more channels are downmixed "
        f"only to mono (data.channels=1); convert the file or change data.channels"
    )


def audio_clip(
    item: str,
    where: str,
    data: bytes,
    suffix: str,
    *,
    rate: float | None,
    min_length: int | None,
    channels: int | None,
    resample: bool,
) -> torch.Tensor:
    """The checked clip, float32 ``(C, T)`` in ``[0, 1]``, of an audio file's bytes.

    ``item``: the name skips are listed under; ``where``: the name errors give (a path). Raises
    :class:`UnreadableItem` for a file that cannot be used (see the module docstring) and ``ValueError`` for a
    channel or rate mismatch, which no other file of the folder would fix.
    """
    try:
        audio, file_rate = decode_audio(data, suffix)
    except ValueError as error:
        raise UnreadableItem(item, str(error), what="audio file") from error
    audio = fit_channels(where, audio, channels)
    if rate is not None and resample and file_rate != rate:
        audio = np.clip(resample_audio(audio, file_rate, rate), -1.0, 1.0)
    else:
        check_rate(where, AUDIO, file_rate, rate)
    if min_length is not None and audio.shape[1] < min_length:
        raise UnreadableItem(
            item,
            f"a time crop of {min_length} is longer than the clip (shape {tuple(audio.shape)}, T={audio.shape[1]}); "
            "lower data.length or remove the file",
            what="audio file",
        )
    return torch.from_numpy(np.ascontiguousarray(audio * 0.5 + 0.5, dtype=np.float32))
