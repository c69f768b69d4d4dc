"""Folders of audio (.wav, .npy) and video (.npy) files: decoding, labels, and bad files named clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq.data.items import UnreadableItem
from fsq.data.loader import StepLoader, iterate_batches
from fsq.data.signal_files import SignalFolderItems, read_wav, write_wav
from fsq.data.signals import AUDIO, VIDEO, SignalTransform
from fsq.data.synthetic_signals import blob_clip, tone_clip


def _audio_folder(root, rate=8000, count=3, length=300):
    for label in ("a", "b"):
        (root / "train" / label).mkdir(parents=True)
        for i in range(count):
            write_wav(root / "train" / label / f"{i}.wav", tone_clip(ord(label), i, length=length), rate)
    return root


def test_wav_round_trips_at_16_bit(tmp_path):
    audio = torch.rand(2, 500) * 0.8 + 0.1
    write_wav(tmp_path / "x.wav", audio, 16000)
    back, rate = read_wav(tmp_path / "x.wav")
    assert rate == 16000 and back.shape == (2, 500) and back.dtype == torch.float32
    assert (back - audio).abs().max() < 1e-4


def test_audio_folder_with_labels_and_npy(tmp_path):
    root = _audio_folder(tmp_path)
    np.save(root / "train" / "a" / "extra.npy", np.full((1, 400), 0.5, dtype=np.float32))
    (root / "train" / "notes.txt").write_text("not audio")
    items = SignalFolderItems(root, "train", AUDIO, rate=8000)
    assert len(items) == 7 and items.class_names == ["a", "b"] and items.has_labels
    assert items.read(0).shape == (1, 300) and items.label(0) == 0 and items.label(6) == 1
    assert [name for name, _ in items.skipped] == ["notes.txt"]


def test_bad_audio_files_are_named(tmp_path):
    root = _audio_folder(tmp_path, rate=16000, count=1)
    with pytest.raises(ValueError, match=r"a/0.wav' gives audio at 16000 Hz but 8000 Hz"):
        SignalFolderItems(root, "train", AUDIO, rate=8000).read(0)
    with pytest.raises(ValueError, match=r"a/0.wav: a time crop of 512 is longer than the clip \(shape \(1, 300\)"):
        SignalFolderItems(root, "train", AUDIO, min_length=512).read(0)
    (root / "train" / "a" / "0.wav").write_bytes(b"RIFF not really")
    with pytest.raises(UnreadableItem, match="0.wav"):
        SignalFolderItems(root, "train", AUDIO).read(0)


def test_a_2d_signal_in_a_video_folder_is_named(tmp_path):
    np.save(tmp_path / "frame.npy", np.zeros((1, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"frame.npy: a 2-D signal of shape \(1, 8, 8\) where video \(C, T, H, W\)"):
        SignalFolderItems(tmp_path, "all", VIDEO).read(0)
    np.save(tmp_path / "frame.npy", np.zeros((1, 8, 8), dtype=np.int64))
    with pytest.raises(UnreadableItem, match="uint8 or floating point"):
        SignalFolderItems(tmp_path, "all", VIDEO).read(0)


@pytest.mark.parametrize("workers", [0, 2])
def test_video_folder_streams_random_crops_in_space_and_time(tmp_path, workers):
    for i in range(5):
        np.save(tmp_path / f"{i}.npy", blob_clip(0, i, frames=12, size=20).numpy())
    items = SignalFolderItems(tmp_path, "all", VIDEO, min_length=5)
    transform = SignalTransform("random", VIDEO, length=5, size=16)
    loader = StepLoader(items, transform, global_batch=4, seed=0, stop=2, workers=workers)
    batch = loader.batch(1)[0]
    assert batch.shape == (4, 1, 5, 16, 16) and batch.dtype == torch.uint8
    assert torch.equal(StepLoader(items, transform, global_batch=4, seed=0, stop=2).batch(1)[0], batch)
    loader.close()


def test_evaluation_leaves_an_unreadable_clip_out_with_a_zero_clip_of_its_shape(tmp_path):
    root = _audio_folder(tmp_path, count=2)
    (root / "train" / "b" / "1.wav").write_bytes(b"broken")
    items = SignalFolderItems(root, "train", AUDIO)
    batches = list(iterate_batches(items, SignalTransform("center", AUDIO, length=256), range(len(items)), 4))
    clips = torch.cat([b[1] for b in batches])
    valid = torch.cat([b[3] for b in batches])
    assert clips.shape == (4, 1, 256) and valid.tolist() == [True, True, True, False]


def _add(tar, name: str, data: bytes) -> None:
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_webdataset_shards_of_audio_and_video(tmp_path):
    import io
    import tarfile

    from fsq.data.signal_files import SignalShardItems

    with tarfile.open(tmp_path / "train-000.tar", "w") as tar:
        for i in range(3):
            write_wav(tmp_path / "x.wav", tone_clip(0, i, length=200), 8000)
            _add(tar, f"{i:03d}.wav", (tmp_path / "x.wav").read_bytes())
            _add(tar, f"{i:03d}.cls", str(i % 2).encode())
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((1, 5, 4, 4), dtype=np.uint8))  # a video clip among audio samples
        _add(tar, "003.npy", buffer.getvalue())
    items = SignalShardItems(str(tmp_path / "{split}-*.tar"), "train", AUDIO, rate=8000, min_length=100)
    assert len(items) == 4 and items.has_labels is False  # 003 has no label
    assert torch.allclose(items.read(1), tone_clip(0, 1, length=200), atol=1e-4) and items.label(1) == 1
    with pytest.raises(ValueError, match=r"\(train-000.tar:003\): a 3-D signal of shape \(1, 5, 4, 4\) where audio"):
        items.read(3)
    with pytest.raises(ValueError, match=r"\(train-000.tar:000\): a time crop of 500 is longer than the clip"):
        SignalShardItems(str(tmp_path / "train-000.tar"), "all", AUDIO, min_length=500).read(0)
    video = SignalShardItems(str(tmp_path / "train-000.tar"), "all", VIDEO)
    assert len(video) == 1 and video.read(0).shape == (1, 5, 4, 4)  # only the .npy member is a video sample


def test_resample_brings_files_to_the_configured_rate(tmp_path):
    root = _audio_folder(tmp_path, rate=16000, count=1, length=400)
    clip = SignalFolderItems(root, "train", AUDIO, rate=8000, resample=True).read(0)
    assert clip.shape == (1, 200)  # 400 samples at 16 kHz -> 200 at 8 kHz
    with pytest.raises(ValueError, match=r"a time crop of 300 is longer than the clip \(shape \(1, 200\)"):
        SignalFolderItems(root, "train", AUDIO, rate=8000, resample=True, min_length=300).read(0)
