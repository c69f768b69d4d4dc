"""The voice judge (:mod:`fsq.evaluation.voice_judge`): it learns to tell a few voices of the small synthetic speech
source apart from two clips each, is deterministic, is cached by its settings and reused, and refuses bad input."""

from __future__ import annotations

import pytest
import torch

from fsq.data import SourceUnavailable
from fsq.data.speech_items import SpeechItems
from fsq.evaluation.voice_judge import (
    VoiceClassifier,
    crop_or_pad,
    load_or_train_voice_judge,
    log_mel_features,
    predict_voices,
    train_voice_classifier,
    voice_accuracy,
)

RATE, LENGTH = 16000, 4000
VOICES = [0, 5, 10, 15]  # four training voices of four accents


def _clips(cache, split: str, voices: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
    items = SpeechItems(split, cache_dir=cache)
    pick = [k for k in range(len(items)) if int(items.labels[k]) in voices]
    return [items.read(k) for k in pick], items.labels[pick]


def test_the_judge_learns_to_separate_a_few_voices(speech_cache):
    clips, labels = _clips(speech_cache, "train", VOICES)
    assert len(clips) == 8  # two clips per voice
    model = train_voice_classifier(clips, labels, rate=RATE, length=LENGTH, steps=50, batch_size=8, width=32)
    assert model.voices == VOICES and not model.training
    heldout, heldout_labels = _clips(speech_cache, "heldout", VOICES)  # sentences never used in training
    crops = [crop_or_pad(c, LENGTH, start) for c in heldout for start in (0, (c.shape[-1] - LENGTH) // 2)]
    real = torch.stack(crops)
    truth = heldout_labels.repeat_interleave(2)
    assert set(predict_voices(model, real).tolist()) <= set(VOICES)  # voice ids, not output indices
    assert voice_accuracy(model, real, truth) >= 0.75  # chance: 0.25


def test_training_is_deterministic_and_leaves_the_global_rng_alone(speech_cache):
    clips, labels = _clips(speech_cache, "train", VOICES[:2])
    state = torch.get_rng_state()
    a = train_voice_classifier(clips, labels, rate=RATE, length=LENGTH, steps=3, batch_size=4, width=8, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad():  # trains the same under no_grad (an evaluation training its judge on a first use)
        b = train_voice_classifier(clips, labels, rate=RATE, length=LENGTH, steps=3, batch_size=4, width=8, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_judge_is_cached_by_its_settings_and_reused(speech_cache):
    model, record = load_or_train_voice_judge(2048, cache_dir=speech_cache, steps=4, batch_size=16, width=8)
    assert not record["cached"] and record["voices"] == list(range(28)) and record["chance"] == pytest.approx(1 / 28)
    assert record["num_heldout"] == 28 and 0.0 <= record["heldout_accuracy"] <= 1.0
    assert record["voice_names"][0] == "en-us+m1" and record["length"] == 2048 and record["rate"] == RATE
    again, cached = load_or_train_voice_judge(2048, cache_dir=speech_cache, steps=4, batch_size=16, width=8)
    assert (
        cached["cached"]
        and cached["path"] == record["path"]
        and cached["heldout_accuracy"] == record["heldout_accuracy"]
    )
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), again.state_dict().values()))
    other = load_or_train_voice_judge(2048, cache_dir=speech_cache, steps=5, batch_size=16, width=8)[1]
    assert not other["cached"] and other["path"] != record["path"]  # another setting: its own entry


def test_bad_input_is_refused_with_the_problem_named(speech_cache, tmp_path):
    clips, labels = _clips(speech_cache, "train", VOICES[:2])
    with pytest.raises(ValueError, match=r"expected float mono audio \(N, 1, T\)"):
        log_mel_features(torch.rand(2, 2, 4000), RATE)
    with pytest.raises(ValueError, match="longer than 256 samples"):
        log_mel_features(torch.rand(2, 1, 200), RATE)
    with pytest.raises(ValueError, match=r"training labels must have shape \(4,\)"):
        train_voice_classifier(clips, labels[:3], rate=RATE, length=LENGTH)
    with pytest.raises(ValueError, match="training clip 0 is not float mono audio"):
        train_voice_classifier([c[0] for c in clips], labels, rate=RATE, length=LENGTH)
    with pytest.raises(ValueError, match="at least 2 distinct voices"):
        train_voice_classifier(clips[::2], labels[::2], rate=RATE, length=LENGTH, steps=1)  # voices take turns
    with pytest.raises(ValueError, match="no training clips"):
        train_voice_classifier([], torch.zeros(0, dtype=torch.long), rate=RATE, length=LENGTH)
    with pytest.raises(ValueError, match="length > 256"):
        train_voice_classifier(clips, labels, rate=RATE, length=100)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        voice_accuracy(VoiceClassifier([0, 1], RATE, 4), torch.rand(2, 1, 4000), torch.zeros(3, dtype=torch.long))
    with pytest.raises(SourceUnavailable, match="fsq data prepare speech"):
        load_or_train_voice_judge(4000, cache_dir=tmp_path)


def test_a_judge_trained_through_a_codec_trains_on_its_renderings_and_is_cached_apart(speech_cache):
    settings = {"cache_dir": speech_cache, "steps": 4, "batch_size": 16, "width": 8}
    plain, plain_record = load_or_train_voice_judge(2048, **settings)
    assert plain_record["trained_on"] == "clips" and plain_record["through"] is None
    seen: list[int] = []

    def identity(clip: torch.Tensor) -> torch.Tensor:
        seen.append(clip.shape[-1])
        return clip.clone()

    same, record = load_or_train_voice_judge(2048, **settings, through=identity, through_key="identity")
    assert record["trained_on"] == "reconstructions" and record["through"] == "identity" and not record["cached"]
    assert record["path"] != plain_record["path"] and "through-identity" in record["path"]
    assert len(seen) == record["num_train"]  # every training clip went through it, whole
    # the same clips: the same weights as the plain judge (same seed), under its own cache entry
    assert all(torch.equal(x, y) for x, y in zip(plain.state_dict().values(), same.state_dict().values()))
    assert load_or_train_voice_judge(2048, **settings, through=identity, through_key="identity")[1]["cached"]
    assert len(seen) == record["num_train"]  # loaded, not rendered again

    def silence(clip: torch.Tensor) -> torch.Tensor:  # a codec that keeps nothing: other training data, other weights
        return torch.full_like(clip, 0.5)

    deaf, _ = load_or_train_voice_judge(2048, **settings, through=silence, through_key="silence")
    assert not all(torch.equal(x, y) for x, y in zip(plain.state_dict().values(), deaf.state_dict().values()))


def test_a_judge_through_a_codec_refuses_bad_renderings(speech_cache):
    settings = {"cache_dir": speech_cache, "steps": 2, "batch_size": 8, "width": 4}
    with pytest.raises(ValueError, match="needs both `through` and a non-empty `through_key`"):
        load_or_train_voice_judge(2048, **settings, through=lambda c: c)
    with pytest.raises(ValueError, match="needs both"):
        load_or_train_voice_judge(2048, **settings, through_key="x")
    with pytest.raises(ValueError, match=r"must return float audio of the clip's shape \(1, \d+\), got \(1, 100\)"):
        load_or_train_voice_judge(2048, **settings, through=lambda c: c[..., :100], through_key="short")
    with pytest.raises(ValueError, match="NaN or Inf samples for training clip 0"):
        load_or_train_voice_judge(2048, **settings, through=lambda c: c * float("nan"), through_key="nan")
