"""Video clips to files for viewing: PNG strips, animated GIFs (Pillow) and MP4s (PyAV, when installed).

Clips are float (N, C, T, H, W) in ``[0, 1]`` (clamped) or uint8, grey (C = 1) or RGB (C = 3).

- ``save_strip``: one PNG, a row per clip, its frames side by side (:func:`fsq.grids.save_grid`'s 1-px white frame
  around each tile);
- ``save_gif``: an animated GIF of the clips tiled ``columns`` wide (the same frames as a grid), looping;
- ``save_mp4``: the same tiles as an H.264 MP4 (yuv420p, so lossy; sides padded to even sizes) when the ``av``
  package (PyAV, bundling FFmpeg) is installed; :func:`mp4_available` says whether it is.

Small clips are upscaled by an integer factor (nearest neighbour) so that the longer side reaches ``fit`` pixels.
Writes go through :mod:`fsq.storage` (a full disk names the path and leaves no half-written file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from fsq import storage
from fsq.grids import grid_array, save_grid


def check_clips(clips: torch.Tensor) -> torch.Tensor:
    """``clips`` as uint8 (N, C, T, H, W); a ValueError naming the shape unless it is a batch of 1- or 3-channel
    clips."""
    if clips.ndim != 5 or clips.shape[1] not in (1, 3) or min(clips.shape) < 1:
        raise ValueError(f"clips must be (N, C, T, H, W) with C = 1 or 3 and no empty axis, got {tuple(clips.shape)}")
    return clips if clips.dtype == torch.uint8 else (clips.float().clamp(0, 1) * 255).round().to(torch.uint8)


def tiled_frames(clips: torch.Tensor, columns: int | None = None) -> np.ndarray:
    """uint8 (T, H', W', 3): at each time step, the clips' frames tiled ``columns`` wide (default: all in one row),
    as :func:`fsq.grids.grid_array` tiles images."""
    clips = check_clips(clips).cpu()
    columns = min(columns or clips.shape[0], clips.shape[0])
    frames = []
    for t in range(clips.shape[2]):
        images = clips[:, :, t]
        rows = [images[i : i + columns] for i in range(0, images.shape[0], columns)]
        frames.append(grid_array(rows, columns))
    return np.stack(frames)


def _scale(array: np.ndarray, fit: int) -> np.ndarray:
    """Upscale (T, H, W, 3) frames by the integer factor that brings the longer side nearest ``fit`` (>= 1)."""
    factor = max(1, fit // max(array.shape[1], array.shape[2]))
    return array.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else array


def save_strip(clips: torch.Tensor, path: str | Path, *, fit: int = 1024) -> None:
    """A PNG: one row per clip, its frames side by side, upscaled so that the width reaches about ``fit`` px."""
    clips = check_clips(clips).cpu()
    save_grid([clip.transpose(0, 1) for clip in clips], path, fit=("width", fit))


def save_gif(
    clips: torch.Tensor, path: str | Path, *, fps: float = 10.0, columns: int | None = None, fit: int = 256
) -> None:
    """An animated GIF (looping, ``fps`` frames a second) of the clips tiled ``columns`` wide.

    Grey clips keep their 256 levels exactly; colour ones go through Pillow's palette (lossy). Pillow stores
    consecutive identical frames once with their durations added, so a still clip has fewer GIF frames.
    """
    from PIL import Image

    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    clips = check_clips(clips)
    frames = _scale(tiled_frames(clips, columns), fit)
    grey = clips.shape[1] == 1
    images = [Image.fromarray(f[..., 0] if grey else f) for f in frames]
    duration = max(20, round(1000 / fps))  # GIF delays are in centiseconds; browsers slow anything under 20 ms
    with storage.writing(path, path, what="animated GIF"):
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False)


def mp4_available() -> bool:
    """Whether MP4s can be written (the ``av`` package, PyAV, is installed)."""
    return importlib.util.find_spec("av") is not None


def save_mp4(
    clips: torch.Tensor, path: str | Path, *, fps: float = 10.0, columns: int | None = None, fit: int = 256
) -> None:
    """An H.264 MP4 (yuv420p, ``fps`` frames a second) of the clips tiled ``columns`` wide; needs PyAV (``av``)."""
    if not mp4_available():
        raise ModuleNotFoundError("writing MP4 needs the `av` package (PyAV): pip install av")
    from fractions import Fraction

    import av

    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    frames = _scale(tiled_frames(clips, columns), fit)
    t, h, w = frames.shape[:3]
    padded = np.zeros((t, h + h % 2, w + w % 2, 3), dtype=np.uint8)  # yuv420p needs even sides
    padded[:, :h, :w] = frames
    with storage.writing(path, path, what="MP4 video"), av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in padded:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def save_clips(clips: torch.Tensor, stem: str | Path, *, fps: float = 10.0, columns: int | None = None) -> list[Path]:
    """``stem.png`` (a strip, one row per clip), ``stem.gif`` and, with PyAV installed, ``stem.mp4``; returns the
    paths written."""
    stem = Path(stem)
    written = [stem.with_suffix(".png"), stem.with_suffix(".gif")]
    save_strip(clips, written[0])
    save_gif(clips, written[1], fps=fps, columns=columns)
    if mp4_available():
        written.append(stem.with_suffix(".mp4"))
        save_mp4(clips, written[2], fps=fps, columns=columns)
    return written
