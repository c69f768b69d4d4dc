"""Signal files for the codec (``fsq encode`` / ``fsq decode``): one reader and one writer per signal kind.

=========  ===========================================  =========================================
kind       read                                         written
=========  ===========================================  =========================================
audio      ``.wav`` (PCM 8/16/32 bit), ``.npy`` (C, T)  ``.wav`` (16-bit PCM), ``.npy`` (float32)
image      Pillow's formats (``.png``, ``.jpg``, ...),  ``.png`` (8 bit), ``.npy`` (float32)
           ``.npy`` (C, H, W)
video      ``.npy`` (C, T, H, W), ``.gif`` (Pillow),    ``.npy`` (float32), ``.gif`` (Pillow; grey
           video files (``.mp4``, ``.avi``, ``.mkv``,   exact, colour through a 256-colour
           ``.webm``, ...: PyAV, the ``video`` extra)   palette), ``.mp4`` (MPEG-4, lossy; the
                                                        ``video`` extra)
=========  ===========================================  =========================================

Read signals are uint8 (images, 8-bit video) or float32 in ``[0, 1]`` (audio: ``0.5`` is silence), ``(C, *axes)``,
with the file's rate where it has one (a ``.wav`` file's sample rate, a GIF's or a video file's frame rate;
``.npy`` arrays have none; a variable-rate video file is retimed to the rate given, or refused without one). A
video file is decoded whole (memory holds all its frames). Image and video files are brought to the channels
asked for (grey repeated to RGB, RGB to ITU-R 601 luma), as image folders are with ``data.channels``. A file of
another kind than the model's (a ``.wav`` for an image model), a ``.npy`` array of the wrong rank and a video file
without the decoder installed are ``ValueError``\\ s naming the file and what this kind takes. Writers clamp to
``[0, 1]``, write to a temporary name and rename (a failed write leaves nothing behind).
"""

from __future__ import annotations

import importlib.util
import os
import wave
from pathlib import Path

import numpy as np
import torch

from fsq.data.signal_files import read_npy, read_wav, write_wav
from fsq.data.signals import IMAGE, VIDEO, SignalKind
from fsq.storage import writing

IMAGE_FILES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_FILES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ogv")
READS = {
    "audio": (".wav", ".npy"),
    "image": (*IMAGE_FILES, ".npy"),
    "video": (".npy", ".gif", *VIDEO_FILES),
}
WRITES = {"audio": (".wav", ".npy"), "image": (".png", ".npy"), "video": (".npy", ".gif", ".mp4")}
GIF_FPS = 10.0  # the frame rate a GIF is written at when the clip has none
VIDEO_EXTRA = "pip install 'fsq-toolkit[video]'"


def _kind_of_extension(suffix: str) -> str | None:
    """The kind a file extension plainly belongs to (``.npy`` and ``.gif`` belong to several: None)."""
    if suffix == ".wav":
        return "audio"
    if suffix in IMAGE_FILES:
        return "image"
    if suffix in VIDEO_FILES:
        return "video"
    return None


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _check_extension(path: Path, kind: SignalKind, allowed: dict[str, tuple[str, ...]], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix in allowed[kind.name]:
        return suffix
    other = _kind_of_extension(suffix)
    clash = f"{path.name} is {_a(other)} file, but " if other else ""
    raise ValueError(
        f"{clash}{path}: {_a(kind.name)} model {what} {kind.name} {kind.layout()} as "
        f"{', '.join(allowed[kind.name])} files"
        + (f", not {suffix or 'files without an extension'}" if not other else "")
    )


def video_codec_available() -> bool:
    """Whether video files can be decoded and ``.mp4`` written (PyAV, the ``video`` extra, is installed)."""
    return importlib.util.find_spec("av") is not None


def video_decoder_missing(path: Path) -> ValueError:
    """The error for a video file when no video decoder is installed."""
    return ValueError(
        f"{path}: reading video files ({path.suffix}) needs a video decoder (PyAV): {VIDEO_EXTRA}; "
        "or give the clip as a .npy array (C, T, H, W) (uint8, or float in [0, 1]) or as a .gif"
    )


def read_signal(
    path: str | os.PathLike, kind: SignalKind, channels: int, *, retime: float | None = None
) -> tuple[torch.Tensor, float | None]:
    """``(signal (C, *axes), rate or None)`` of a file holding one ``kind`` signal; ``channels`` converts image
    and video files (grey <-> RGB) and is checked nowhere else (the caller names a mismatch against its model).
    ``retime``: the frame rate a variable-rate video file is retimed to (refused without it)."""
    path = Path(path)
    suffix = _check_extension(path, kind, READS, "takes")
    if not path.is_file():
        raise FileNotFoundError(f"no such {kind.name} file: {path}")
    rate: float | None = None
    try:
        if suffix == ".npy":
            signal = read_npy(path)
        elif suffix == ".wav":
            signal, rate = read_wav(path)
            with wave.open(os.fspath(path), "rb") as handle:
                declared = handle.getnframes()
            if signal.shape[1] < declared:
                raise ValueError(f"truncated: its header declares {declared} samples, it holds {signal.shape[1]}")
        elif kind is IMAGE:
            from fsq.data.images import decode_image

            signal = decode_image(path, channels=channels if channels in (1, 3) else 3)
        elif suffix == ".gif":
            signal, rate = _read_gif(path, channels)
        elif not video_codec_available():
            raise video_decoder_missing(path)
        else:
            signal, rate = _read_video(path, channels, retime)
    except (OSError, EOFError, SyntaxError, wave.Error) as error:  # truncated or not what its name says
        raise ValueError(f"{path}: not a readable {kind.name} file ({type(error).__name__}: {error})") from error
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise ValueError(f"{path}: not a readable {kind.name} file ({error})") from error
    if signal.ndim != 1 + kind.dims:
        raise ValueError(
            f"{path}: an array of shape {tuple(signal.shape)}, where {_a(kind.name)} {kind.layout()} "
            f"({1 + kind.dims} axes) is expected"
        )
    return signal, rate


def _read_gif(path: Path, channels: int) -> tuple[torch.Tensor, float | None]:
    """uint8 ``(C, T, H, W)`` of an animated GIF and its frame rate (from the first frame's duration)."""
    from PIL import Image, ImageSequence

    from fsq.data.pixels import to_uint8

    with Image.open(path) as image:
        duration = image.info.get("duration")
        frames = [to_uint8(frame.convert("RGB"), channels) for frame in ImageSequence.Iterator(image)]
    clip = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).contiguous()
    return clip, (1000.0 / float(duration) if duration else None)


def check_output(path: str | os.PathLike, kind: SignalKind) -> Path:
    """``path`` when it names a format :func:`write_signal` writes for ``kind``, else a ValueError saying which."""
    path = Path(path)
    if _check_extension(path, kind, WRITES, "writes") == ".mp4" and not video_codec_available():
        raise ValueError(f"{path}: writing .mp4 needs a video encoder (PyAV): {VIDEO_EXTRA}; or write .npy or .gif")
    return path


def _read_video(path: Path, channels: int, retime: float | None) -> tuple[torch.Tensor, float]:
    """uint8 ``(C, T, H, W)`` of every frame of a video file (:mod:`fsq.data.video_files`, PyAV) and its rate; a
    variable-rate file is retimed to ``retime`` (each output frame the last file frame shown at its time)."""
    from fsq.data.video_files import probe, read_window

    info = probe(path)
    if info.variable and retime is None:
        low, high = info.gaps
        raise ValueError(
            f"{path}: a variable frame rate (frame gaps from {low * 1000:.0f} to {high * 1000:.0f} ms): give the rate "
            "to retime it to (--rate, e.g. the model's)"
        )
    rate = retime if info.variable else None
    frames = int(info.timeline(rate).shape[0])
    clip = read_window(path, 0, frames, rate=rate, channels=channels if channels in (1, 3) else 3)
    return clip, float(retime if retime is not None and info.variable else info.rate)


def write_signal(path: str | os.PathLike, signal: torch.Tensor, kind: SignalKind, rate: float | None) -> Path:
    """Write float ``signal`` ``(C, *axes)`` (clamped to ``[0, 1]``) as the file ``path`` names; returns it."""
    path = check_output(path, kind)
    if signal.ndim != 1 + kind.dims:
        raise ValueError(f"{_a(kind.name)} {kind.layout()} is written, got shape {tuple(signal.shape)}")
    suffix = path.suffix.lower()
    if suffix == ".wav" and not rate:
        raise ValueError(f"{path}: a .wav file needs a sample rate, and this audio has none; write .npy instead")
    x = signal.detach().float().cpu().clamp(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")  # the suffix kept: PyAV names the container by it
    with writing(path, temporary, what=f"the decoded {kind.name}"):
        if suffix == ".npy":
            with open(temporary, "wb") as handle:
                np.save(handle, x.numpy().astype(np.float32), allow_pickle=False)
        elif suffix == ".wav":
            assert rate is not None
            write_wav(temporary, x, round(rate))
        elif suffix == ".mp4":
            _write_mp4(temporary, x, rate or GIF_FPS)
        else:
            _write_pillow(temporary, x, kind, rate, "PNG" if suffix == ".png" else "GIF")
        os.replace(temporary, path)
    return path


def _write_mp4(path: Path, x: torch.Tensor, rate: float) -> None:
    """An MPEG-4 video (lossy, yuv420p: even frame sizes) of a clip ``(C, T, H, W)`` in ``[0, 1]`` (PyAV)."""
    from fsq.data.video_files import write_video

    if x.shape[0] not in (1, 3) or x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"an .mp4 holds 1 or 3 channels of even-sized frames, not {tuple(x.shape)}: write .npy")
    write_video(path, x.mul(255).round().to(torch.uint8), rate)


def _write_pillow(path: Path, x: torch.Tensor, kind: SignalKind, rate: float | None, fmt: str) -> None:
    """8-bit PNG of an image ``(C, H, W)`` or animated GIF of a clip ``(C, T, H, W)`` (grey or RGB)."""
    from PIL import Image

    if x.shape[0] not in (1, 3):
        raise ValueError(f"{fmt} holds 1 or 3 channels, not {x.shape[0]}: write .npy")
    pixels = x.mul(255).round().to(torch.uint8)
    mode = "L" if x.shape[0] == 1 else "RGB"

    def picture(array: torch.Tensor) -> Image.Image:  # (C, H, W)
        data = array[0].numpy() if mode == "L" else array.permute(1, 2, 0).contiguous().numpy()
        return Image.fromarray(data, mode=mode)

    if kind is not VIDEO:
        picture(pixels).save(path, format=fmt)
        return
    frames = [picture(pixels[:, t]) for t in range(pixels.shape[1])]
    duration = round(1000.0 / (rate or GIF_FPS))
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=duration, loop=0)
