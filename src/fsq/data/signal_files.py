"""Folders and WebDataset shards of signal files: audio (``.wav``, ``.flac``, ``.ogg``, ``.npy``) and video (``.npy``,
and video files: ``.mp4``, ``.avi``, ``.mkv``, ``.webm``, ``.mov``, ``.gif``) clips, read one by one when asked.

``data.source: audio:DIR`` or ``video:DIR`` names such a folder (``split`` is a sub-folder such as ``train``, or
``all``; class sub-folders give labels, as image folders do); ``audio:wds:SHARDS`` / ``video:wds:SHARDS`` names
WebDataset shards whose samples hold such a member (the shard rules of :mod:`fsq.data.shards`). Folder files are
listed once at start (:func:`fsq.data.scan.scan_folder`: links followed once, hidden names ignored); every clip is
decoded in the loader's workers:

- ``.wav``, ``.flac``, ``.ogg``: :mod:`fsq.data.audio_decode` (``soundfile`` when installed, else PCM ``.wav``
  through Python's ``wave`` module; channels downmixed to a mono config; ``soxr`` resampling), to float32
  ``(C, T)`` in ``[0, 1]`` (``0.5`` is silence); its sample rate is the file's;
- ``.npy``: an array ``(C, T)`` (audio) or ``(C, T, H, W)`` (video), uint8, or floating point in ``[0, 1]``
  (never unpickled); it has no rate of its own;
- video files (PyAV, the ``video`` extra; :mod:`fsq.data.video_files`): only the frames of the crop are decoded
  (from the keyframe before it), each frame's shorter side scaled to ``data.image_size`` (area averaging), then the
  random (training) or centred crop of ``data.image_size`` squared as for ``.npy`` clips. RGB unless
  ``data.channels=1``; alpha composited on white. Their rate is the file's: ``data.sample_rate`` with
  ``data.resample`` retimes every file to it (and is the only way to read a variable-rate file).

A problem with a video file (it cannot be decoded, is cut short, has no frames, fewer frames than ``data.length``,
frames smaller than the crop, a variable or a different rate) raises :class:`~fsq.data.items.UnreadableItem`
naming the file and what to change: skipped and listed in the run dir's ``skipped_files.json``, or raised, as
``data.on_error`` says.

Bad input is a clear error naming the file: an array of the wrong rank (a 2-D signal where video is expected), a
channel count the config cannot take, a rate other than ``data.sample_rate`` (unless ``data.resample``: then
brought to it). A file that cannot be used (not decodable, empty, cut short, NaN or infinite samples, shorter
than the time crop) raises :class:`~fsq.data.items.UnreadableItem` (skipped and reported, or raised, as
``data.on_error`` says).
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from fsq.data.audio_decode import AUDIO_EXTENSIONS, audio_clip
from fsq.data.images import _classes
from fsq.data.items import FolderFiles, UnreadableItem
from fsq.data.resample import resample_time
from fsq.data.scan import scan_folder
from fsq.data.shards import TarShardItems
from fsq.data.signals import SignalKind, SignalTransform, check_rate
from fsq.data.video_files import VIDEO_EXTENSIONS, VideoError, probe, read_window

EXTENSIONS = {"audio": (*AUDIO_EXTENSIONS, ".npy"), "video": (".npy", *VIDEO_EXTENSIONS)}
NPY_MAGIC = b"\x93NUMPY"
VIDEO_MAGIC = (b"RIFF", b"\x1aE\xdf\xa3", b"GIF8")  # AVI (RIFF, not WAVE), Matroska/WebM, GIF; MP4/MOV: "ftyp"


def read_wav(source: Path | BinaryIO) -> tuple[torch.Tensor, float]:
    """``(float32 (C, T) in [0, 1], sample rate)`` of a PCM ``.wav`` file (a path or an open binary file)."""
    with wave.open(source if not isinstance(source, Path) else os.fspath(source), "rb") as handle:
        channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
        frames = handle.readframes(handle.getnframes())
    if width == 1:  # 8-bit PCM is unsigned
        data = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        data = np.frombuffer(frames, dtype=dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"{width * 8}-bit PCM is not supported (8, 16 or 32 bit)")
    audio = data.reshape(-1, channels).T
    return torch.from_numpy(np.ascontiguousarray(audio * 0.5 + 0.5)), float(rate)


def read_npy(source: Path | BinaryIO) -> torch.Tensor:
    """The array of a ``.npy`` file (a path or an open binary file; no pickles) as uint8 or float32."""
    array = np.load(source, allow_pickle=False)
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"a signal array must be uint8 or floating point in [0, 1], got {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def check_clip(
    name: str,
    clip: torch.Tensor,
    file_rate: float | None,
    kind: SignalKind,
    rate: float | None,
    min_length: int | None,
    channels: int | None,
    resample: bool = False,
    item: str | None = None,
) -> torch.Tensor:
    """``clip`` itself (``resample``: brought from its file's rate to ``rate``; audio with more channels than a mono
    config: downmixed), or a ValueError naming ``name`` when its rank, channels or rate is wrong; an
    :class:`UnreadableItem` (listed as ``item``, default ``name``) when it holds NaN or infinite values or is
    shorter than ``min_length``."""
    if clip.ndim != 1 + kind.dims:
        raise ValueError(
            f"{name}: a {clip.ndim - 1}-D signal of shape {tuple(clip.shape)} where {kind.name} {kind.layout()} "
            f"({1 + kind.dims} axes) is expected"
        )
    if clip.is_floating_point() and not bool(torch.isfinite(clip).all()):
        bad = int((~torch.isfinite(clip)).sum())
        raise UnreadableItem(item or name, f"{bad} NaN or infinite values", what=f"{kind.name} file")
    if kind.dims == 1 and clip.shape[0] > 1 and channels in (None, 1):  # audio: downmixed to mono
        mono = clip.float().mean(0, keepdim=True)
        clip = mono.round().to(torch.uint8) if clip.dtype == torch.uint8 else mono
    if channels is not None and clip.shape[0] != channels:
        raise ValueError(f"{name}: {clip.shape[0]} channels (shape {tuple(clip.shape)}), data.channels asks {channels}")
    if resample and file_rate is not None and rate is not None and file_rate != rate:
        clip = resample_time(clip, file_rate, rate)
    else:
        check_rate(name, kind, file_rate, rate if file_rate is not None else None)
    if min_length is not None and clip.shape[1] < min_length:
        raise UnreadableItem(
            item or name,
            f"a time crop of {min_length} is longer than the clip (shape {tuple(clip.shape)}, T={clip.shape[1]}); "
            "lower data.length or remove the file",
            what=f"{kind.name} file",
        )
    return clip


def is_video_bytes(data: bytes) -> bool:
    """Whether member bytes hold a video file (by its magic number) rather than a ``.wav`` or ``.npy``."""
    if data[:4] == b"RIFF":
        return data[8:12] == b"AVI "
    return data[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or data[:4] in VIDEO_MAGIC[1:]


def video_crop(
    name: str,
    source: Path | bytes,
    transform: SignalTransform,
    generator: torch.Generator | None,
    *,
    rate: float | None,
    resample: bool,
    channels: int,
) -> torch.Tensor:
    """The transform's crop of a video file (a path or its bytes), decoding only its frames; every problem is an
    :class:`~fsq.data.items.UnreadableItem` naming ``name`` and what to change."""
    if transform.length is None or transform.size is None:
        raise ValueError(f"{name}: video files are read as crops: set data.length and data.image_size")
    try:
        info = probe(source)
        if rate is not None and not resample and not info.variable and abs(info.rate - rate) > 1e-3 * rate:
            raise VideoError(
                f"{info.rate:g} fps where data.sample_rate={rate:g} is configured: set data.resample=true to retime "
                f"it, or data.sample_rate={info.rate:g}"
            )
        timeline = info.timeline(rate if resample else None)
        frames = int(timeline.shape[0])
        if frames < transform.length:
            raise VideoError(
                f"{frames} frames" + (f" at {rate:g} fps" if rate and resample else "") + ", shorter than data.length="
                f"{transform.length}: lower data.length or remove the file"
            )
        start = transform.window(frames, generator)
        clip = read_window(
            source,
            start,
            transform.length,
            rate=rate if resample else None,
            short_side=transform.size,
            channels=channels,
        )
    except VideoError as error:
        raise UnreadableItem(name, str(error)) from error
    return transform.finish(clip, generator)


class SignalFolderItems(FolderFiles):
    """Audio or video files under a folder (or its ``split`` sub-folder), decoded one by one when read.

    ``rate``: the rate every file must have (None: any; ``resample``: files at another rate are resampled to it);
    ``min_length``: the time crop, which no clip may be
    shorter than; ``limit``: the first files in sorted path order.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        kind: SignalKind,
        *,
        rate: float | None = None,
        min_length: int | None = None,
        channels: int | None = None,
        on_error: str = "skip",
        limit: int | None = None,
        resample: bool = False,
    ) -> None:
        base = Path(root)
        folder = base if split == "all" else base / split
        if not folder.is_dir():
            raise ValueError(
                f"{kind.name} folder {base} has no {split!r} sub-folder"
                if base.is_dir()
                else f"no {kind.name} folder at {os.fspath(root)!r}"
            )
        if kind.name not in EXTENSIONS:
            raise ValueError(f"folders of {kind.name} files are read by the image path, not this one")
        scan = scan_folder(folder)
        if scan.unreadable and on_error == "raise":
            name, reason = scan.unreadable[0]
            raise ValueError(f"{reason}: {folder / name}")
        wanted = EXTENSIONS[kind.name]
        files = [p for p in scan.files if p.suffix.lower() in wanted]
        others = [p for p in scan.files if p.suffix.lower() not in wanted]
        class_names = _classes(folder, files)
        if limit is not None:
            files = files[:limit]
        if not files:
            raise ValueError(
                f"no {kind.name} files in {folder}: expected {', '.join(wanted)} files, optionally in class "
                f"sub-folders; found {len(others)} other files"
            )
        self._set_files(folder, files, class_names)
        self.source, self.split, self.kind = os.fspath(root), split, kind
        self.rate, self.min_length, self.wanted_channels = rate, min_length, channels
        self.resample = resample
        videos = any(p.suffix.lower() in VIDEO_EXTENSIONS for p in files)
        self.channels = channels or (3 if videos else 1)  # video files decode to RGB unless data.channels=1
        other = [(p.relative_to(folder).as_posix(), f"not a {kind.name} file ({p.suffix or 'none'})") for p in others]
        self.skipped = other + scan.duplicates + scan.unreadable

    def read_crop(self, index: int, transform: SignalTransform, generator: torch.Generator | None) -> torch.Tensor:
        """The transformed clip ``index``: of a video file, only the crop's frames decoded (:func:`video_crop`)."""
        name = self.relative[index]
        path = self.root / name
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            return transform(self.read(index), generator)
        return video_crop(
            name, path, transform, generator, rate=self.rate, resample=self.resample, channels=self.channels
        )

    def read(self, index: int) -> torch.Tensor:
        """The clip ``(C, *axes)``; a ValueError naming the file when its rank, channels or rate is wrong, an
        :class:`UnreadableItem` when it cannot be used (see the module docstring)."""
        name = self.relative[index]
        path = self.root / name
        what = f"{self.kind.name} file"
        try:
            data = path.read_bytes() if path.suffix.lower() in AUDIO_EXTENSIONS else None
            clip = read_npy(path) if data is None else None
        except OSError as error:
            raise UnreadableItem(name, error.strerror or str(error), what=what) from error
        except (ValueError, EOFError) as error:
            raise UnreadableItem(name, str(error), what=what) from error
        if clip is None:
            assert data is not None
            return audio_clip(
                name,
                os.fspath(path),
                data,
                path.suffix.lower(),
                rate=self.rate,
                min_length=self.min_length,
                channels=self.wanted_channels,
                resample=self.resample,
            )
        return check_clip(
            os.fspath(path),
            clip,
            None,
            self.kind,
            self.rate,
            self.min_length,
            self.wanted_channels,
            self.resample,
            item=name,
        )


class SignalShardItems(TarShardItems):
    """WebDataset shards (``.tar``; :mod:`fsq.data.shards`) whose samples hold a ``.wav`` or ``.npy`` member (audio)
    or a ``.npy`` member (video), read by random access and checked as folder files are."""

    def __init__(
        self,
        path: str,
        split: str,
        kind: SignalKind,
        *,
        rate: float | None = None,
        min_length: int | None = None,
        channels: int | None = None,
        limit: int | None = None,
        resample: bool = False,
    ) -> None:
        if kind.name not in EXTENSIONS:
            raise ValueError(f"shards of {kind.name} samples are read by the image path, not this one")
        self.member_extensions = tuple(ext.lstrip(".") for ext in EXTENSIONS[kind.name])
        self.kind, self.rate, self.min_length, self.wanted_channels = kind, rate, min_length, channels
        self.resample = resample
        super().__init__(path, split, channels=channels or (3 if kind.name == "video" else 1), limit=limit)

    def read_crop(self, index: int, transform: SignalTransform, generator: torch.Generator | None) -> torch.Tensor:
        """The transformed clip ``index``: of a video file member, only the crop's frames decoded."""
        data = self.member(index)
        if not is_video_bytes(data):
            return transform(self.decode(data, index), generator)
        channels = self.channels
        key = self.keys[index]
        return video_crop(key, data, transform, generator, rate=self.rate, resample=self.resample, channels=channels)

    def decode(self, data: bytes, index: int) -> torch.Tensor:
        """The clip in member bytes ``data`` (``.npy`` by its magic bytes, else an audio file), checked."""
        key = self.keys[index]
        name = f"{self.source} ({key})"
        if data[:6] != NPY_MAGIC and self.kind.dims == 1:
            suffix = "." + key.rsplit(".", 1)[-1] if "." in key else ""
            return audio_clip(
                name,
                name,
                data,
                suffix,
                rate=self.rate,
                min_length=self.min_length,
                channels=self.wanted_channels,
                resample=self.resample,
            )
        try:
            clip = read_npy(io.BytesIO(data))
        except (OSError, ValueError, EOFError) as error:
            raise UnreadableItem(key, str(error), what=f"{self.kind.name} member") from error
        return check_clip(name, clip, None, self.kind, self.rate, self.min_length, self.wanted_channels, self.resample)


def write_wav(path: str | os.PathLike, audio: torch.Tensor, rate: int) -> None:
    """Write float ``(C, T)`` audio in ``[0, 1]`` as a 16-bit PCM ``.wav`` file (for tests and examples)."""
    data = ((audio.clamp(0, 1).double() - 0.5) * 2 * 32767).round().to(torch.int16).T.contiguous().numpy()
    with wave.open(os.fspath(path), "wb") as handle:
        handle.setnchannels(int(audio.shape[0]))
        handle.setsampwidth(2)
        handle.setframerate(int(rate))
        handle.writeframes(data.tobytes())
