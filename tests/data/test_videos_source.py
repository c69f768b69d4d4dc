"""The ``videos`` source: Debian opencv-doc's sample videos prepared into the cache (checksummed), split by video,
served as random clips in training and fixed clips in evaluation, through the step loader."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch

from fsq.data import videos
from fsq.data.loader import StepLoader, iterate_batches
from fsq.data.signals import VIDEO, SignalTransform
from fsq.data.source_errors import SourceCorrupt, SourceUnavailable
from fsq.data.sources import cache_dir


def _prepared_or_skip():
    pytest.importorskip("av", reason="decoding needs PyAV: pip install av (the video extra)")
    try:
        videos.verify(cache_dir() / "videos")
    except SourceUnavailable as error:
        pytest.skip(f"videos source not prepared (scripts/fetch_data.sh prepares it): {error}")


def test_unprepared_and_corrupt_caches_say_what_to_do(tmp_path):
    with pytest.raises(SourceUnavailable, match=r"fsq data prepare videos.*apt-get download opencv-doc"):
        videos.open_videos("train", image_size=32, cache_dir=tmp_path)
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "manifest.json").write_text("{broken")
    with pytest.raises(SourceCorrupt, match=r"rm -r .*videos"):
        videos.verify(folder)
    entries = [{"name": n, "size": 3, "split": videos.split_of(n)} for n in videos.FILES]
    (folder / "manifest.json").write_text(json.dumps({"files": entries}))
    for name in videos.FILES:
        (folder / name).write_bytes(b"abc")
    with pytest.raises(SourceCorrupt, match="does not match its sha256"):
        videos.verify(folder)
    with pytest.raises(ValueError, match="split 'val'"):
        videos.open_videos("val", image_size=32, cache_dir=tmp_path)


def test_members_are_read_from_a_debian_package_without_installing_it(tmp_path):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:xz") as tar:
        for path, data in (("./usr/share/doc/x/a.avi", b"first"), ("./usr/share/doc/x/other.html", b"<p>")):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", b"xx"), ("data.tar.xz", payload.getvalue())]
    deb = tmp_path / "x_1_all.deb"
    with open(deb, "wb") as handle:
        handle.write(b"!<arch>\n")
        for name, data in members:
            handle.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
            handle.write(data + (b"\n" if len(data) % 2 else b""))
    assert videos._extract_from_deb(deb, {"usr/share/doc/x/a.avi": "a.avi"}) == {"a.avi": b"first"}
    (tmp_path / "plain").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a Debian package"):
        videos._extract_from_deb(tmp_path / "plain", {})


def test_split_by_video_with_the_held_out_video_and_its_frame_rate():
    _prepared_or_skip()
    entries = {e["name"]: e for e in videos.verify(cache_dir() / "videos")}
    assert {n for n, e in entries.items() if e["split"] == "test"} == {"cup.mp4"}
    assert entries["vtest.avi"]["fps"] == 10.0 and entries["tree.avi"]["variable_rate"] is True
    test = videos.open_videos("test", image_size=16, length=9, count=6)
    assert test.names == ["cup.mp4"] and test.rate == videos.RATE and len(test) == 6
    assert test.videos[0].shape[:3] == (3, 81, 32)  # 217 frames at 26.8 fps -> 81 at 10 fps; 480 px -> 2 x 16
    center = SignalTransform("center", VIDEO, 9, size=16)
    batches = [b[1] for b in iterate_batches(test, center, range(6), 3)]
    assert batches[0].shape == (3, 3, 9, 16, 16) and torch.equal(batches[0][0], test.read(0))
    assert not torch.equal(batches[0][0], batches[1][0])  # windows spread over the video
    again = videos.open_videos("test", image_size=16, length=9, count=6)
    same = [b[1] for b in iterate_batches(again, center, range(6), 3, workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(batches, same))  # fixed clips: every evaluation sees the same
    grey = videos.open_videos("test", image_size=16, length=9, count=2, channels=1, rate=5.0)
    assert grey.videos[0].shape[:2] == (1, 40)


def test_training_clips_are_random_crops_exactly_resumable_with_workers():
    _prepared_or_skip()
    train = videos.open_videos("train", image_size=16, length=9, count=64)
    assert train.names == ["Megamind.avi", "Megamind_bugy.avi", "box.mp4", "tree.avi", "vtest.avi"]
    transform = SignalTransform("random", VIDEO, 9, size=16)
    first = StepLoader(train, transform, global_batch=8, seed=3, stop=3)
    expected = [first.batch(step)[0] for step in range(3)]
    assert expected[0].shape == (8, 3, 9, 16, 16) and not torch.equal(expected[0], expected[1])
    resumed = StepLoader(train, transform, global_batch=8, seed=3, stop=3, workers=2)
    assert torch.equal(resumed.batch(1)[0], expected[1]) and torch.equal(resumed.batch(2)[0], expected[2])
    resumed.close()
