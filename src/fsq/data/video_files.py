"""Video files (``.mp4``, ``.avi``, ``.mkv``, ``.webm``, ``.mov``, ``.gif``) decoded with PyAV, a window of frames at
a time.

PyAV (``pip install av``, the ``video`` extra) bundles FFmpeg in its wheel, so it decodes offline with nothing else
installed; of the three FFmpeg wheels compared on Debian opencv-doc's sample videos (``benchmarks/video_decoders.py``)
it is the one that seeks by timestamp inside the process and gives each frame's timestamp, and it encodes too
(tests, sample clips). OpenCV decodes full-size frames faster (its own colour conversion) but seeks approximately
and hides the timestamps; ``imageio-ffmpeg`` pipes a subprocess and duplicates frames to a constant rate.

A file is first *probed* (:func:`probe`): its video packets are demuxed, not decoded (milliseconds), which gives
the frame count, every frame's timestamp (sorted: presentation order), the keyframes, the frame rate and whether the
rate is variable. A window of frames (:func:`read_window`) is then decoded from the last keyframe before it to its
end only, each frame converted (and shrunk, with area averaging) by FFmpeg's scaler: memory holds one window,
whatever the file's length. Decoded frames are counted in the order the decoder gives them, never matched by their
timestamps (some files label them out of order); a decoder that gives up to :data:`END_SLACK` frames fewer than
the packets at a file's very end (opencv-doc's ``box.mp4``) has its last frame repeated. Probes are kept in a
small per-process cache (:data:`PROBE_CACHE` files), so memory stays flat in the number of videos too.

Frames on a timeline: a constant-rate file's frames are its decoded frames, at its nominal rate. A variable-rate
file (frame gaps differing by more than :data:`VFR_TOLERANCE`, e.g. Debian's ``tree.avi``, whose AVI leaves out
repeated frames) is refused unless a ``rate`` is given: then any file is retimed to that rate, each output frame
showing the last frame shown at its time (as ``ffmpeg -r``). Grey files give 1 channel or are repeated to 3;
frames with alpha (PNG/QuickTime RLE/VP8 with alpha, transparent GIFs) are composited on white, as images are.

Every problem with a file is a :class:`VideoError` whose message names what is wrong and what to change.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".gif")
VFR_TOLERANCE = 0.25  # a frame gap this much (relative) away from the median gap makes the rate variable
PROBE_CACHE = 64  # probed files kept per process
END_SLACK = 2  # frames at a file's end that may be counted yet not decoded: repeated from the last one decoded
INSTALL = "pip install av (or the video extra: pip install 'fsq-toolkit[video]')"


class VideoError(ValueError):
    """A video that cannot be read as asked: the message says why (and, where it can, what to change)."""


def _av() -> Any:
    try:
        import av
    except ImportError as error:
        raise VideoError(f"decoding video files needs PyAV: {INSTALL}") from error
    return av


@functools.cache
def scale_threads() -> dict[str, int]:
    """The frame scaler's thread count, one: PyAV >= 17 scales frames on a thread pool of its own (``threads=0``,
    automatic, by default), and a process forked after it ran, as a DataLoader worker is, waits forever for the
    pool's threads, which the fork did not copy (seen with PyAV 18.1.1: the loader's workers hung in
    ``sws_scale_frame``). The decoding workers are single-threaded anyway. Empty for older PyAV, which scales on
    the calling thread and takes no ``threads``."""
    major = int(str(_av().__version__).split(".")[0])
    return {"threads": 1} if major >= 17 else {}


@dataclass(frozen=True)
class VideoInfo:
    """What a probe found: the presentation time of every frame (seconds, increasing), the frame size, the
    nominal rate (fps), whether the rate is variable, and whether the frames carry alpha."""

    times: np.ndarray  # float64 (N,), seconds
    pts: np.ndarray  # int64 (N,), the stream's time base
    keyframes: np.ndarray  # int64: the frame indices (into ``pts``) of the keyframes, increasing
    width: int
    height: int
    rate: float
    variable: bool
    alpha: bool
    gaps: tuple[float, float]  # the shortest and longest frame gap (seconds)

    @property
    def frames(self) -> int:
        return int(self.times.shape[0])

    def timeline(self, rate: float | None) -> np.ndarray:
        """The file frame shown at each output frame: identity at the file's own rate, else the frames retimed to
        ``rate`` (int64 indices, non-decreasing). Raises :class:`VideoError` for a variable rate without one."""
        if rate is None:
            if self.variable:
                low, high = self.gaps
                raise VideoError(
                    f"variable frame rate (frame gaps from {low * 1000:.0f} to {high * 1000:.0f} ms): set "
                    "data.sample_rate (and data.resample=true) to retime it to a constant rate"
                )
            return np.arange(self.frames, dtype=np.int64)
        if not self.variable and abs(rate - self.rate) <= 1e-3 * rate:
            return np.arange(self.frames, dtype=np.int64)
        step = float(np.median(np.diff(self.times))) if self.frames > 1 else 1.0 / self.rate
        span = float(self.times[-1] - self.times[0]) + step
        count = max(1, math.floor(span * rate + 1e-6))
        grid = self.times[0] + np.arange(count) / rate
        return np.searchsorted(self.times, grid + 1e-6, side="right").astype(np.int64) - 1


_CACHE: OrderedDict[tuple, VideoInfo] = OrderedDict()


def _open(av: Any, source: Path | bytes) -> Any:
    return av.open(io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source), mode="r")


def _key(source: Path | bytes) -> tuple:
    if isinstance(source, bytes):
        return ("bytes", len(source), hash(source))
    stat = source.stat()
    return (os.fspath(source), stat.st_size, stat.st_mtime_ns)


def probe(source: Path | bytes) -> VideoInfo:
    """The :class:`VideoInfo` of a file (a path or its bytes), cached per process; :class:`VideoError` when it
    holds no video stream or no frame, or cannot be opened."""
    av = _av()
    key = _key(source)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    try:
        with _open(av, source) as container:
            if not container.streams.video:
                raise VideoError("no video stream in the file")
            stream = container.streams.video[0]
            time_base = stream.time_base or Fraction(1, 1)
            stamps: list[int] = []
            keys: list[int] = []
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # the demuxer's flush packet, or an empty AVI chunk (a repeated frame)
                        continue
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    stamps.append(len(stamps) if stamp is None else int(stamp))
                    if packet.is_keyframe and stamp is not None:
                        keys.append(int(stamp))
            except av.error.EOFError:
                pass  # a container that ends where its frames would start: no frames (checked below)
            except av.FFmpegError as error:
                raise VideoError(f"the file is damaged after frame {len(stamps)} ({error})") from error
            context = stream.codec_context
            width, height = int(context.width or 0), int(context.height or 0)
            fmt = context.format
            alpha = fmt is not None and (fmt.has_palette or any(c.is_alpha for c in fmt.components))
            nominal = stream.guessed_rate or stream.average_rate
    except av.error.EOFError as error:
        raise VideoError("the file holds no video frames (it ends after its header)") from error
    except av.FFmpegError as error:
        raise VideoError(f"not a readable video file ({error})") from error
    if not stamps:
        raise VideoError("the file holds no video frames")
    if width < 1 or height < 1:
        raise VideoError(f"the video stream reports a frame size of {width}x{height}")
    pts = np.unique(np.asarray(stamps, dtype=np.int64))  # presentation order (decode order may differ)
    times = pts * float(time_base)
    gaps = np.diff(times)
    median = float(np.median(gaps)) if gaps.size else 0.0
    variable = bool(gaps.size and median > 0 and np.abs(gaps - median).max() > VFR_TOLERANCE * median)
    rate = float(nominal) if nominal and not variable else (1.0 / median if median > 0 else 1.0)
    low, high = (float(gaps.min()), float(gaps.max())) if gaps.size else (0.0, 0.0)
    keyframes = np.searchsorted(pts, np.unique(np.asarray(keys, dtype=np.int64)))
    info = VideoInfo(times, pts, keyframes, width, height, rate, variable, alpha, (low, high))
    _CACHE[key] = info
    while len(_CACHE) > PROBE_CACHE:
        _CACHE.popitem(last=False)
    return info


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """``(width, height)`` with the shorter side brought to ``short_side`` (aspect kept; None: unchanged)."""
    if short_side is None:
        return width, height
    short = min(width, height)
    return max(short_side, round(width * short_side / short)), max(short_side, round(height * short_side / short))


def _to_array(frame: Any, size: tuple[int, int], channels: int, alpha: bool) -> np.ndarray:
    width, height = size
    shrink = width < frame.width or height < frame.height
    kwargs = {"width": width, "height": height, "interpolation": "AREA" if shrink else "BILINEAR", **scale_threads()}
    if alpha:
        rgba = frame.to_ndarray(format="rgba", **kwargs).astype(np.uint16)
        a = rgba[..., 3:]
        rgb = (rgba[..., :3] * a + 255 * (255 - a) + 127) // 255
        if channels == 3:
            return rgb.astype(np.uint8)
        rgb = rgb.astype(np.uint32)
        grey = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000  # PIL's "L"
        return grey.astype(np.uint8)[..., None]
    if channels == 1:
        return frame.to_ndarray(format="gray", **kwargs)[..., None]
    return frame.to_ndarray(format="rgb24", **kwargs)


def read_window(
    source: Path | bytes,
    start: int,
    length: int,
    *,
    rate: float | None = None,
    short_side: int | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """Frames ``start .. start + length - 1`` of the file's timeline (:meth:`VideoInfo.timeline` at ``rate``),
    uint8 ``(channels, length, H, W)``, the shorter side scaled to ``short_side`` (None: the file's size).

    Only the frames from the last keyframe before the window to the window's end are decoded. Raises
    :class:`VideoError` when the window does not fit the timeline or the file ends (is damaged) before it."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    info = probe(source)
    timeline = info.timeline(rate)
    if start < 0 or length < 1 or start + length > timeline.shape[0]:
        raise VideoError(
            f"frames {start}..{start + length - 1} asked of a video of {timeline.shape[0]} frames"
            + (f" at {rate:g} fps" if rate else "")
        )
    wanted = timeline[start : start + length]
    first, last = int(wanted[0]), int(wanted[-1])
    size = scaled_size(info.width, info.height, short_side)
    decoded = _decode(source, info, first, last, size, channels)
    short = last - first + 1 - len(decoded)
    if decoded and 0 < short <= END_SLACK and last >= info.frames - END_SLACK:
        decoded += [decoded[-1]] * short  # a last frame or two the decoder drops (as ffmpeg's constant-rate output)
    elif short > 0:
        found = first + len(decoded)
        raise VideoError(
            f"decoding stopped at frame {found} of {info.frames} (the window needs frames {first}..{last}): the file "
            "is truncated or damaged"
        )
    clip = np.stack([decoded[int(k) - first] for k in wanted])  # (T, H, W, C)
    return torch.from_numpy(clip).permute(3, 0, 1, 2).contiguous()


def _decode(
    source: Path | bytes, info: VideoInfo, first: int, last: int, size: tuple[int, int], channels: int
) -> list[np.ndarray]:
    """File frames ``first .. last`` (fewer when the file ends early), decoded from the keyframe before ``first``.

    Frames are counted in the order the decoder gives them, never matched by their timestamps: files with packed
    B-frames (DivX AVIs) or muxed with pts = dts (opencv-doc's ``box.mp4``) label decoded frames with shuffled
    timestamps. After the seek, frames before the keyframe are passed over (open-GOP leftovers); when the keyframe
    does not show up (a container that cannot seek exactly), the file is decoded from its start instead. The
    frames of a window are a pure function of the file and the window."""
    before = info.keyframes[info.keyframes <= first]
    key = int(before[-1]) if before.size else 0
    if key > 0:
        found = _decode_from(source, info, first, last, size, channels, key)
        if found is not None:
            return found
    return _decode_from(source, info, first, last, size, channels, 0) or []


def _decode_from(
    source: Path | bytes, info: VideoInfo, first: int, last: int, size: tuple[int, int], channels: int, key: int
) -> list[np.ndarray] | None:
    av = _av()
    target = int(info.pts[key])
    out: list[np.ndarray] = []
    k = -1 if key > 0 else 0  # the index of the frame just decoded (-1: the keyframe is not found yet)
    try:
        with _open(av, source) as container:
            stream = container.streams.video[0]
            if key > 0:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            for passed, frame in enumerate(container.decode(stream)):
                if k < 0:
                    if frame.pts is None or passed >= 64:
                        return None
                    if int(frame.pts) != target:
                        continue
                    k = key
                elif passed:
                    k += 1
                if k >= first:
                    out.append(_to_array(frame, size, channels, info.alpha))
                if k >= last:
                    break
    except av.FFmpegError as error:
        if not out:
            raise VideoError(f"decoding failed ({error})") from error
    return out if k >= 0 else None


def write_video(
    path: str | os.PathLike,
    clip: torch.Tensor | np.ndarray,
    rate: float,
    *,
    codec: str | None = None,
    gop: int | None = None,
    times: list[float] | None = None,
) -> Path:
    """Write uint8 ``(C, T, H, W)`` frames (C = 1, 3 or 4) as a video file; the codec follows the suffix (``.gif``:
    GIF, 4 channels: PNG frames with alpha (``.mov``, ``.mkv``), ``.webm``: VP9, else MPEG-4 Part 2), or ``codec``.
    ``gop``: frames between keyframes; ``times``: each frame's time in seconds (a variable rate), else ``t / rate``.
    For tests, examples and the benchmark."""
    av = _av()
    path = Path(path)
    array = clip.numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)
    if array.ndim != 4 or array.dtype != np.uint8 or array.shape[0] not in (1, 3, 4):
        raise ValueError(f"write_video takes uint8 (C, T, H, W) with C in 1, 3, 4; got {array.dtype} {array.shape}")
    channels, _, height, width = array.shape
    suffix = path.suffix.lower()
    fmt_in = {1: "gray", 3: "rgb24", 4: "rgba"}[channels]
    if codec is None:
        codec = {".gif": "gif", ".webm": "libvpx-vp9"}.get(suffix, "png" if channels == 4 else "mpeg4")
    pix_fmt = {"gif": "rgb8", "png": "rgba" if channels == 4 else "rgb24", "ffv1": "yuv420p"}.get(codec, "yuv420p")
    if codec == "ffv1" and channels == 4:
        pix_fmt = "yuva420p"
    frame_rate = Fraction(rate).limit_denominator(1001)
    with av.open(os.fspath(path), mode="w") as container:
        stream = container.add_stream(codec, rate=frame_rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "mpeg4":
            stream.bit_rate = 4_000_000
        if gop is not None:
            stream.codec_context.gop_size = gop
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for t in range(array.shape[1]):
            image = np.ascontiguousarray(array[:, t].transpose(1, 2, 0))
            frame = av.VideoFrame.from_ndarray(image[..., 0] if channels == 1 else image, format=fmt_in)
            if times is not None:
                frame.pts, frame.time_base = round(times[t] * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
