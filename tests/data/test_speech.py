"""The ``speech`` source (synthetic speech by espeak-ng): split by voice, prepared once and checksummed, served as
random crops with voice labels through the step loader, resumed exactly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from fsq.data import speech
from fsq.data.loader import StepLoader
from fsq.data.signals import AUDIO, SignalTransform
from fsq.data.source_cache import SourceCorrupt, SourceUnavailable
from fsq.data.sources import list_sources, load_images, prepare
from fsq.data.speech_items import SpeechItems


def test_test_voices_are_never_heard_in_training():
    by_split = {split: {v.variant for v in speech.split_voices(split)} for split in speech.SPLITS}
    assert len(by_split["train"]) == 28 and len(by_split["val"]) == len(by_split["test"]) == 6
    assert by_split["heldout"] == by_split["train"]
    assert not by_split["train"] & by_split["val"] and not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]
    assert len({v.name for v in speech.voices()}) == 40 and len({v.accent for v in speech.voices()}) == 8


def test_sentences_of_the_splits_never_overlap_and_the_plan_is_seeded():
    sentences, files = speech.read_sentences()
    assert len(sentences) > 400 and set(files) == set(speech.FORTUNE_FILES)
    pools = speech.split_sentences(sentences)
    assert sum(len(p) for p in pools.values()) == len(sentences)
    assert all(not set(pools[a]) & set(pools[b]) for a in pools for b in pools if a < b)
    small, full = speech.plan(sentences, {"train": 2}), speech.plan(sentences)
    assert full == speech.plan(sentences) and small["val"] == full["val"]
    assert small["train"] == [c for c in full["train"] if full["train"].index(c) % 50 < 2]
    assert {c["text"] for c in full["heldout"]} <= set(pools["heldout"])
    speeds, pitches = [c["speed"] for c in full["train"]], [c["pitch"] for c in full["train"]]
    assert min(speeds) >= 130 and max(speeds) <= 200 and len(set(speeds)) > 30 and len(set(pitches)) > 30


def test_manifest_lists_the_voices_and_files_of_each_split(speech_cache):
    manifest = speech.read_manifest(speech_cache / "speech")
    assert manifest["name"] == "synthetic speech" and manifest["rate"] == 16000
    assert "eSpeak NG" in manifest["generator"]
    for split in speech.SPLITS:
        entry = manifest["splits"][split]
        assert entry["voices"] == [v.id for v in speech.split_voices(split)]
        assert {c["voice"] for c in entry["clips"]} == set(entry["voices"])
        samples = np.load(speech_cache / "speech" / entry["file"], mmap_mode="r")
        assert samples.dtype == np.int16 and samples.size == sum(c["length"] for c in entry["clips"])


def test_prepare_is_idempotent_and_a_corrupt_file_is_named(speech_cache, tmp_path):
    folder = speech_cache / "speech"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    speech.prepare_speech(folder, clips_per_voice={"train": 2, "heldout": 1, "val": 2, "test": 2})
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # verified, not generated again
    copy = tmp_path / "speech"
    shutil.copytree(folder, copy)
    data = bytearray((copy / "val.npy").read_bytes())
    data[-1] ^= 0xFF
    (copy / "val.npy").write_bytes(bytes(data))
    with pytest.raises(SourceCorrupt, match=r"val.npy has sha256 .*rm -r"):
        SpeechItems("val", cache_dir=tmp_path)
    assert len(SpeechItems("train", cache_dir=tmp_path)) == 56  # the other splits are intact


def test_missing_source_and_missing_espeak_say_what_to_install(tmp_path, monkeypatch):
    with pytest.raises(SourceUnavailable, match=r"not prepared .*apt-get install -y espeak-ng fortunes-min"):
        SpeechItems("train", cache_dir=tmp_path)
    with pytest.raises(SourceUnavailable, match="fsq data prepare speech"):
        load_images("speech", "train", cache_dir=tmp_path)
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(SourceUnavailable, match="espeak-ng is not installed"):
        prepare("speech", tmp_path)
    assert {s.name: s.prepared for s in list_sources(tmp_path)}["speech"] is False


def test_clips_are_float_crops_with_voice_labels(speech_cache):
    items = SpeechItems("test", cache_dir=speech_cache, rate=16000)
    assert len(items) == 12 and items.has_labels and len(items.class_names) == 40
    names = {items.class_names[items.label(i)] for i in range(len(items))}
    assert names == {v.name for v in speech.split_voices("test")}
    clip = items.read(0)
    assert clip.dtype == torch.float32 and clip.shape == (1, int(items.lengths[0])) and clip.shape[1] > 8000
    assert 0 <= float(clip.min()) and float(clip.max()) <= 1 and float((clip - 0.5).abs().mean()) > 0.005
    half = SpeechItems("test", cache_dir=speech_cache, rate=8000, resample=True).read(0)
    assert abs(half.shape[1] - clip.shape[1] / 2) <= 1
    with pytest.raises(ValueError, match="speech' gives audio at 16000 Hz but 8000 Hz"):
        SpeechItems("test", cache_dir=speech_cache, rate=8000)
    with pytest.raises(ValueError, match="is mono: data.channels=2"):
        SpeechItems("test", cache_dir=speech_cache, channels=2)


def test_clips_shorter_than_the_crop_are_listed_or_an_error(speech_cache):
    lengths = SpeechItems("val", cache_dir=speech_cache).lengths
    crop = int(np.sort(lengths)[3]) + 1  # longer than the 4 shortest clips
    items = SpeechItems("val", cache_dir=speech_cache, min_length=crop)
    assert len(items) == 8 and len(items.skipped) == 4 and "shorter than the time crop" in items.skipped[0][1]
    with pytest.raises(ValueError, match=rf"4 clips are shorter than the time crop data.length={crop}, the first val/"):
        SpeechItems("val", cache_dir=speech_cache, min_length=crop, on_error="raise")
    with pytest.raises(ValueError, match=r"no clip is as long as the time crop data.length=999999 \(the longest has"):
        SpeechItems("val", cache_dir=speech_cache, min_length=999_999)


def test_random_crops_resume_exactly_with_any_number_of_workers(speech_cache):
    items = SpeechItems("train", cache_dir=speech_cache, min_length=4000)
    transform = SignalTransform("random", AUDIO, length=4000)

    def batches(workers: int, start: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        loader = StepLoader(items, transform, global_batch=8, seed=3, stop=6, workers=workers)
        out = [loader.batch(step) for step in range(start, 6)]
        loader.close()
        return out

    straight = batches(0, 0)
    drawn = StepLoader(items, transform, global_batch=8, seed=3, stop=6).sampler.indices(0).tolist()
    assert straight[0][0].shape == (8, 1, 4000) and straight[0][1].tolist() == [items.label(i) for i in drawn]
    for got, want in zip(batches(2, 0) + batches(0, 4), straight + straight[4:]):  # 2 workers; resumed at step 4
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert not torch.equal(straight[0][0], straight[1][0])
