"""Audio files through soundfile (wav of every sample format, flac, ogg) or Python's wave module, resampled by
soxr, downmixed to a mono config; bad files listed and skipped, or a one-line error naming the file."""

from __future__ import annotations

import io
import math
import tarfile

import numpy as np
import pytest
import torch

from fsq.data import audio_decode
from fsq.data.audio_decode import decode_audio, wav_truncation
from fsq.data.items import UnreadableItem
from fsq.data.loader import StepLoader, iterate_batches, worker_error_message
from fsq.data.signal_files import SignalFolderItems, SignalShardItems
from fsq.data.signals import AUDIO, SignalTransform

sf = pytest.importorskip("soundfile", reason="the audio extra (soundfile) is not installed")


def _sine(rate: float, seconds: float = 0.25, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.stack([0.5 * np.sin(2 * math.pi * freq * (k + 1) * t) for k in range(channels)], 1).astype(np.float32)


def _write(path, audio: np.ndarray, rate: int = 16000, subtype: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype=subtype)


@pytest.mark.parametrize(
    ("name", "subtype", "atol"),
    [
        ("u8.wav", "PCM_U8", 1e-2),
        ("s16.wav", "PCM_16", 1e-4),
        ("s24.wav", "PCM_24", 1e-6),
        ("s32.wav", "PCM_32", 1e-6),
        ("f32.wav", "FLOAT", 1e-7),
        ("f64.wav", "DOUBLE", 1e-7),
        ("x.flac", None, 1e-4),
        ("x.ogg", None, 0.2),  # lossy
    ],
)
def test_every_sample_format_decodes_to_the_same_clip(tmp_path, name, subtype, atol):
    audio = _sine(16000)
    _write(tmp_path / name, audio, subtype=subtype)
    clip = SignalFolderItems(tmp_path, "all", AUDIO, rate=16000).read(0)
    assert clip.shape == (1, 4000) and clip.dtype == torch.float32
    assert (clip[0] - (torch.from_numpy(audio[:, 0]) * 0.5 + 0.5)).abs().max() <= atol


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32"])
def test_without_soundfile_pcm_wav_still_decodes_through_wave(tmp_path, monkeypatch, subtype):
    audio = _sine(8000, channels=2)
    _write(tmp_path / "x.wav", audio, 8000, subtype)
    expected, _ = decode_audio((tmp_path / "x.wav").read_bytes())
    monkeypatch.setattr(audio_decode, "soundfile_module", lambda: None)
    got, rate = decode_audio((tmp_path / "x.wav").read_bytes())
    assert rate == 8000 and got.shape == (2, 2000) and np.abs(got - expected).max() < 1e-6


def test_without_soundfile_float_wav_and_flac_name_the_extra(tmp_path, monkeypatch):
    _write(tmp_path / "f.wav", _sine(8000), 8000, "FLOAT")
    _write(tmp_path / "x.flac", _sine(8000), 8000)
    monkeypatch.setattr(audio_decode, "soundfile_module", lambda: None)
    items = SignalFolderItems(tmp_path, "all", AUDIO)
    for index, name in enumerate(["f.wav", "x.flac"]):
        with pytest.raises(UnreadableItem, match=rf"{name}: .*needs? soundfile.*fsq-toolkit\[audio\]"):
            items.read(index)


def _bad_folder(root):
    good = _sine(16000)
    _write(root / "a_good.wav", good)
    (root / "b_empty.wav").write_bytes(b"")
    data = (root / "a_good.wav").read_bytes()
    (root / "c_truncated.wav").write_bytes(data[: len(data) // 2])
    (root / "d_text.wav").write_text("this is not audio\n" * 20)
    nan = good.copy()
    nan[10, 0], nan[20, 0] = np.nan, np.inf
    _write(root / "e_nan.wav", nan, subtype="FLOAT")
    _write(root / "f_short.flac", good[:100])
    return root


BAD = {
    "b_empty.wav": "an empty file",
    "c_truncated.wav": "truncated: its header declares 8000 bytes of samples, the file holds 3978",
    "d_text.wav": "not a readable audio file",
    "e_nan.wav": "2 NaN or infinite samples",
    "f_short.flac": r"a time crop of 1000 is longer than the clip \(shape \(1, 100\)",
}


def test_each_bad_file_is_unreadable_with_its_reason(tmp_path):
    items = SignalFolderItems(_bad_folder(tmp_path), "all", AUDIO, rate=16000, min_length=1000)
    assert items.read(0).shape == (1, 4000)
    for index, (name, reason) in enumerate(BAD.items(), start=1):
        with pytest.raises(UnreadableItem, match=f"cannot decode audio file {name}: {reason}"):
            items.read(index)


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_files_are_skipped_and_listed_or_raised_in_one_line(tmp_path, workers):
    items = SignalFolderItems(_bad_folder(tmp_path), "all", AUDIO, rate=16000, min_length=1000)
    transform = SignalTransform("random", AUDIO, length=1000)
    loader = StepLoader(items, transform, global_batch=6, seed=0, stop=2, workers=workers)
    clips, _ = loader.batch(0)  # every bad file drawn falls back to the good one
    assert clips.shape == (6, 1, 1000) and sorted(loader.skipped) == sorted(BAD)
    evaluation = list(iterate_batches(items, SignalTransform("center", AUDIO, length=1000), range(6), 6))
    assert evaluation[0][3].tolist() == [True] + [False] * 5
    strict = StepLoader(items, transform, global_batch=6, seed=0, stop=2, workers=workers, on_error="raise")
    with pytest.raises(ValueError) as error:
        strict.batch(0)
    assert str(error.value).startswith("cannot decode audio file ") and "Traceback" not in str(error.value)


def test_stereo_is_downmixed_to_a_mono_config_and_other_mismatches_are_named(tmp_path):
    stereo = _sine(16000, channels=2)
    _write(tmp_path / "s.wav", stereo)
    for channels in (None, 1):
        clip = SignalFolderItems(tmp_path, "all", AUDIO, channels=channels).read(0)
        assert torch.allclose(clip[0], torch.from_numpy(stereo.mean(1)) * 0.5 + 0.5, atol=1e-4)
    assert SignalFolderItems(tmp_path, "all", AUDIO, channels=2).read(0).shape == (2, 4000)
    _write(tmp_path / "t.wav", _sine(16000))
    items = SignalFolderItems(tmp_path, "all", AUDIO, channels=2)
    with pytest.raises(ValueError, match=r"t.wav: 1 channel\(s\) but data.channels=2: .*downmixed only to mono"):
        items.read(1)


def test_a_channel_mismatch_in_a_worker_is_one_line_naming_the_file(tmp_path):
    _write(tmp_path / "t.wav", _sine(16000))
    items = SignalFolderItems(tmp_path, "all", AUDIO, channels=2)
    loader = StepLoader(items, SignalTransform("random", AUDIO, length=100), global_batch=2, seed=0, stop=1, workers=1)
    with pytest.raises(ValueError) as error:
        loader.batch(0)
    assert str(error.value).startswith(f"{tmp_path / 't.wav'}: 1 channel(s) but data.channels=2")
    assert "\n" not in str(error.value)


def test_soxr_resamples_a_sine_cleanly_and_a_rate_mismatch_stays_an_error(tmp_path):
    pytest.importorskip("soxr", reason="the audio extra (soxr) is not installed")
    _write(tmp_path / "x.wav", _sine(22050, seconds=0.5), 22050, "FLOAT")
    with pytest.raises(ValueError, match=r"x.wav' gives audio at 22050 Hz but 16000 Hz was configured"):
        SignalFolderItems(tmp_path, "all", AUDIO, rate=16000).read(0)
    clip = SignalFolderItems(tmp_path, "all", AUDIO, rate=16000, resample=True).read(0)
    assert clip.shape == (1, 8000)
    expected = torch.from_numpy(_sine(16000, seconds=0.5)[:, 0]) * 0.5 + 0.5
    error = (clip[0] - expected)[200:-200]  # away from the filter's edges
    snr = 10 * torch.log10((expected[200:-200] - 0.5).pow(2).mean() / error.pow(2).mean())
    assert snr > 60, f"soxr resampling SNR {snr:.1f} dB"


def test_shards_hold_flac_members_and_bad_ones_are_unreadable(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, _sine(16000), 16000, format="FLAC")
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for name, data in (("000.flac", buffer.getvalue()), ("001.wav", b"RIFF broken")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    items = SignalShardItems(str(tmp_path / "s.tar"), "all", AUDIO, rate=16000)
    assert len(items) == 2 and items.read(0).shape == (1, 4000)
    with pytest.raises(UnreadableItem, match=r"s.tar:001\): not a readable audio file"):
        items.read(1)


def test_wav_truncation_reads_the_riff_chunks():
    header = b"RIFF" + (100).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little") + bytes(16)
    whole = header + b"data" + (8).to_bytes(4, "little") + bytes(8)
    assert wav_truncation(whole) is None and wav_truncation(b"fLaC....") is None
    assert wav_truncation(whole[:-3]) == "truncated: its header declares 8 bytes of samples, the file holds 5"
    streamed = header + b"data" + (0xFFFFFFFF).to_bytes(4, "little") + bytes(8)  # size unknown when written
    assert wav_truncation(streamed) is None
    espeak = header + b"data" + (0x7FFFF000).to_bytes(4, "little") + bytes(8)  # `espeak-ng --stdout > x.wav`
    assert wav_truncation(espeak) is None
    assert wav_truncation(header[:-4]).startswith("truncated: no sample data")


def test_worker_error_message_unwraps_only_value_errors():
    wrapped = (
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    raise ValueError(...)\nValueError: /data/a.wav: 1 channel(s) but ...'
    )
    assert worker_error_message(RuntimeError(wrapped)) == "/data/a.wav: 1 channel(s) but ..."
    chained = (
        wrapped
        + "\n\nThe above exception was the direct cause of the following exception:\n\n"
        + ('Traceback (most recent call last):\n  File "y.py", line 2, in g\nfsq.data.items.UnreadableItem: cannot x')
    )
    assert worker_error_message(RuntimeError(chained)) == "cannot x"
    assert worker_error_message(RuntimeError(wrapped.replace("ValueError:", "KeyError:"))) is None
    assert worker_error_message(ValueError("plain")) is None
