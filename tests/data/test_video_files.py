"""Video files (.mp4, .avi, .mkv, .webm, .mov, .gif) decoded with PyAV a crop at a time, in folders and shards, and
every kind of bad video file skipped and listed (or named) without a traceback or a hang."""

from __future__ import annotations

import faulthandler
import io
import tarfile

import numpy as np
import pytest
import torch

av = pytest.importorskip("av", reason="video files need PyAV: pip install av (the video extra)")

from fsq.data.items import UnreadableItem  # noqa: E402
from fsq.data.loader import StepLoader, iterate_batches  # noqa: E402
from fsq.data.signal_files import SignalFolderItems, SignalShardItems  # noqa: E402
from fsq.data.signals import VIDEO, SignalTransform  # noqa: E402
from fsq.data.video_files import probe, read_window, write_video  # noqa: E402


@pytest.fixture(autouse=True)
def no_hang():
    """Any test here that hangs (a decoder stuck on a bad file) kills the run after 60 s with a traceback dump."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def moving(frames: int = 20, height: int = 24, width: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    """uint8 (C, T, H, W): a bright square moving right over a smooth background, different per ``seed``."""
    rng = np.random.default_rng(seed)
    clip = np.empty((channels, frames, height, width), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 40 + 80 * (xx / width) + 40 * (yy / height)
    colour = rng.uniform(120, 255, size=channels)
    for t in range(frames):
        x0 = (t * 2 + int(rng.integers(0, 4))) % max(1, width - 8)
        for c in range(channels):
            frame = base.copy()
            frame[8:16, x0 : x0 + 8] = colour[c]
            clip[c, t] = frame.clip(0, 255).astype(np.uint8)
    return clip


def full_decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])  # (T, H, W, 3)


@pytest.mark.parametrize("name", ["a.mp4", "a.avi", "a.mkv", "a.webm", "a.gif"])
def test_a_window_is_the_frames_of_a_full_decode_after_a_seek(tmp_path, name):
    path = write_video(tmp_path / name, moving(frames=24), 12.0, gop=5)
    info = probe(path)
    assert info.frames == 24 and (info.width, info.height) == (32, 24) and abs(info.rate - 12.0) < 1e-3
    assert not info.variable
    full = full_decode(path)
    for start in (0, 7, 16):  # 7 and 16: seeks to a keyframe before the window
        window = read_window(path, start, 8)
        assert window.shape == (3, 8, 24, 32) and window.dtype == torch.uint8
        assert np.array_equal(window.permute(1, 2, 3, 0).numpy(), full[start : start + 8])
    small = read_window(path, 3, 4, short_side=12)
    assert small.shape == (3, 4, 12, 16)  # the shorter side to 12, aspect kept


def _folder(root, count=4, frames=20):
    for i in range(count):
        write_video(root / f"v{i}.mp4", moving(frames=frames, seed=i), 10.0, gop=6)
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_of_videos_streams_crops_identically_with_workers_and_after_resume(tmp_path, workers):
    items = SignalFolderItems(_folder(tmp_path), "all", VIDEO, min_length=9)
    assert len(items) == 4 and items.channels == 3
    transform = SignalTransform("random", VIDEO, length=9, size=16)
    reference = StepLoader(items, transform, global_batch=3, seed=0, stop=4)
    expected = [reference.batch(step)[0] for step in range(4)]
    assert expected[0].shape == (3, 3, 9, 16, 16) and expected[0].dtype == torch.uint8
    assert not torch.equal(expected[0], expected[1])
    loader = StepLoader(items, transform, global_batch=3, seed=0, stop=4, workers=workers)
    assert all(torch.equal(loader.batch(step)[0], expected[step]) for step in range(4))
    resumed = StepLoader(items, transform, global_batch=3, seed=0, stop=4, workers=workers)
    assert torch.equal(resumed.batch(2)[0], expected[2]) and torch.equal(resumed.batch(3)[0], expected[3])
    loader.close(), resumed.close()


def test_a_crop_decodes_the_same_pixels_as_the_whole_file_cropped(tmp_path):
    path = write_video(tmp_path / "x.mkv", moving(frames=16, height=16, width=24), 8.0, gop=4)
    items = SignalFolderItems(tmp_path, "all", VIDEO, min_length=6)
    transform = SignalTransform("random", VIDEO, length=6, size=16)
    whole = torch.from_numpy(full_decode(path)).permute(3, 0, 1, 2)  # frames already 16 px on the shorter side
    for seed in range(3):
        generator, again = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        assert torch.equal(items.read_crop(0, transform, generator), transform(whole, again))


def test_grey_alpha_odd_sizes_and_gif_decode(tmp_path):
    write_video(tmp_path / "grey.mkv", moving(channels=1), 10.0)
    alpha = moving(channels=4)
    alpha[3] = 0  # fully transparent: composited on white
    write_video(tmp_path / "alpha.mov", alpha, 10.0)
    write_video(tmp_path / "odd.mkv", moving(height=21, width=33), 10.0, codec="ffv1")
    write_video(tmp_path / "anim.gif", moving(), 10.0)
    transform = SignalTransform("center", VIDEO, length=9, size=16)
    items = SignalFolderItems(tmp_path, "all", VIDEO, min_length=9)
    clips = {items.name(i): items.read_crop(i, transform, None) for i in range(len(items))}
    assert all(c.shape == (3, 9, 16, 16) for c in clips.values())
    assert (clips["alpha.mov"] == 255).all()
    grey = clips["grey.mkv"]
    assert (grey[0].int() - grey[2].int()).abs().max() <= 2  # grey stays grey in RGB
    one = SignalFolderItems(tmp_path, "all", VIDEO, min_length=9, channels=1)
    assert one.read_crop(0, transform, None).shape == (1, 9, 16, 16)


def _bad_folder(root):
    """One good video and one of each kind of bad video file; returns the expected reason of each bad one."""
    write_video(root / "good.mp4", moving(frames=20), 10.0)
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    data = (root / "good.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    write_video(root / "cut.avi", moving(frames=20), 10.0)
    avi = (root / "cut.avi").read_bytes()
    (root / "cut.avi").write_bytes(avi[: len(avi) // 2])  # AVI: readable header, frames missing past the middle
    with av.open(str(root / "empty.mkv"), mode="w") as container:  # a valid container with no frame
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        container.start_encoding()
    write_video(root / "short.mp4", moving(frames=5), 10.0)
    write_video(root / "tiny.mp4", moving(height=8, width=12), 10.0)  # smaller than the crop: enlarged, as images
    times = [0.0, 0.1, 0.15, 0.4, 0.5, 0.55, 0.9, 1.0, 1.05, 1.3, 1.4, 1.45, 1.5, 1.8, 1.9, 2.2]
    write_video(root / "vfr.mkv", moving(frames=16), 10.0, times=times)
    write_video(root / "rate25.mp4", moving(frames=30), 25.0)
    return {
        "corrupt.mp4": "not a readable video file",
        "truncated.mp4": "not a readable video file|truncated or damaged|damaged after frame",
        "cut.avi": "not a readable video file|truncated or damaged|damaged after frame",
        "empty.mkv": "holds no video frames",
        "short.mp4": "5 frames, shorter than data.length=9",
        "vfr.mkv": "variable frame rate",
        "rate25.mp4": "25 fps where data.sample_rate=10 is configured",
    }


def test_every_bad_video_is_skipped_and_named_in_training_and_evaluation(tmp_path):
    import re

    reasons = _bad_folder(tmp_path)
    items = SignalFolderItems(tmp_path, "all", VIDEO, rate=10.0, min_length=9)
    transform = SignalTransform("random", VIDEO, length=9, size=16)
    loader = StepLoader(items, transform, global_batch=len(items), seed=0, stop=3)
    for step in range(3):
        batch = loader.batch(step)[0]
        assert batch.shape == (len(items), 3, 9, 16, 16)
    assert set(loader.skipped) == set(reasons)  # every bad file listed, the good one never
    for name, pattern in reasons.items():
        assert re.search(pattern, loader.skipped[name]), (name, loader.skipped[name])
    center = SignalTransform("center", VIDEO, length=9, size=16)
    valid = torch.cat([b[3] for b in iterate_batches(items, center, range(len(items)), 4)])
    good = [items.name(i) for i in range(len(items)) if bool(valid[i])]
    assert good == ["good.mp4", "tiny.mp4"]
    with pytest.raises(UnreadableItem, match=r"cannot decode image vfr.mkv: variable frame rate .* set data\."):
        StepLoader(items, transform, global_batch=1, seed=0, stop=1, on_error="raise").dataset[
            (items.relative.index("vfr.mkv"), 0, 0)
        ]


def test_resample_retimes_variable_and_other_rates(tmp_path):
    _bad_folder(tmp_path)
    items = SignalFolderItems(tmp_path, "all", VIDEO, rate=10.0, min_length=9, resample=True)
    transform = SignalTransform("center", VIDEO, length=9, size=16)
    for name in ("vfr.mkv", "rate25.mp4"):
        clip = items.read_crop(items.relative.index(name), transform, None)
        assert clip.shape == (3, 9, 16, 16)
    info = probe(tmp_path / "vfr.mkv")
    assert info.variable and info.timeline(10.0).tolist()[:6] == [0, 1, 2, 2, 3, 4]  # at 0.2 and 0.3 s: 0.15 s


def test_shards_of_video_files(tmp_path):
    with tarfile.open(tmp_path / "train-000.tar", "w") as tar:
        for i, suffix in enumerate(("mp4", "avi", "webm")):
            path = write_video(tmp_path / f"x.{suffix}", moving(frames=12, seed=i), 10.0)
            for name, data in ((f"{i:03d}.{suffix}", path.read_bytes()), (f"{i:03d}.cls", str(i % 2).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("003.mp4")
        info.size = 300
        tar.addfile(info, io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + bytes(288)))
    items = SignalShardItems(str(tmp_path / "train-000.tar"), "all", VIDEO, min_length=8)
    assert len(items) == 4 and items.channels == 3
    transform = SignalTransform("random", VIDEO, length=8, size=16)
    loader = StepLoader(items, transform, global_batch=4, seed=0, stop=1, workers=2)
    assert loader.batch(0)[0].shape == (4, 3, 8, 16, 16)
    assert list(loader.skipped) == ["train-000.tar:003"]
    loader.close()
