"""Video samples to files, read back: a PNG strip (a row per clip), an animated GIF (grey levels exact) and an MP4
(PyAV; lossy H.264)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from fsq.clips import mp4_available, save_clips, save_gif, save_mp4, save_strip, tiled_frames


def clips(n: int = 3, c: int = 1, t: int = 5, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, t, size, size, generator=torch.Generator().manual_seed(seed))


def test_strip_has_a_row_per_clip_and_a_column_per_frame(tmp_path):
    save_strip(clips(3, t=5), tmp_path / "s.png", fit=1)
    with Image.open(tmp_path / "s.png") as image:
        assert image.size == (5 * 10, 3 * 10)  # 8 px tiles in a 1-px white frame, no upscaling at fit=1
        grid = np.asarray(image.convert("L"))
    x = (clips(3, t=5) * 255).round().to(torch.uint8)
    assert np.array_equal(grid[1 + 10 * 2 : 9 + 10 * 2, 1 + 10 * 4 : 9 + 10 * 4], x[2, 0, 4].numpy())  # clip 2, frame 4


def test_gif_frames_read_back_exactly_for_grey_clips(tmp_path):
    x = clips(4, t=6)
    save_gif(x, tmp_path / "a.gif", fps=5, columns=2, fit=1)
    expected = tiled_frames(x, columns=2)[..., 0]  # (T, H', W')
    with Image.open(tmp_path / "a.gif") as image:
        assert image.n_frames == 6 and image.info["loop"] == 0 and image.info["duration"] == 200
        frames = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(image)]
    assert all(np.array_equal(f, e) for f, e in zip(frames, expected))
    assert expected.shape[1:] == (2 * 10, 2 * 10)


def test_colour_gif_and_bad_input(tmp_path):
    save_gif(clips(2, c=3, t=3), tmp_path / "c.gif", fit=64)
    with Image.open(tmp_path / "c.gif") as image:
        assert image.n_frames == 3 and image.size == (3 * 20, 3 * 10)  # two 10-px tiles, upscaled x3 to near 64
    with pytest.raises(ValueError, match=r"clips must be \(N, C, T, H, W\) with C = 1 or 3.*\(2, 1, 8, 8\)"):
        save_gif(torch.rand(2, 1, 8, 8), tmp_path / "bad.gif")
    with pytest.raises(ValueError, match="fps must be > 0"):
        save_gif(clips(), tmp_path / "bad.gif", fps=0)


@pytest.mark.skipif(not mp4_available(), reason="PyAV (`av`) is not installed: no MP4 writer")
def test_mp4_reads_back_with_its_frames_and_size(tmp_path):
    import av

    x = torch.zeros(2, 1, 7, 9, 9)
    x[:, :, :, 2:7, 2:7] = torch.linspace(0.2, 1.0, 7).view(1, 1, 7, 1, 1)  # a square brightening frame by frame
    save_mp4(x, tmp_path / "v.mp4", fps=10, fit=1)
    with av.open(str(tmp_path / "v.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    expected = tiled_frames(x)  # (7, 11, 22, 3): odd height padded to 12
    assert len(frames) == 7 and frames[0].shape == (12, 22, 3)
    error = np.abs(np.stack(frames)[:, :11].astype(float) - expected.astype(float)).mean()
    assert error < 8  # H.264 at crf 18 on 8-bit levels


def test_save_clips_writes_strip_gif_and_mp4_when_it_can(tmp_path):
    written = save_clips(clips(), tmp_path / "samples", fps=10)
    names = sorted(p.name for p in written)
    assert names == sorted(["samples.png", "samples.gif"] + (["samples.mp4"] if mp4_available() else []))
    assert all(p.stat().st_size > 0 for p in written)
