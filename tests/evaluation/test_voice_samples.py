"""Helpers of the voice-conditioned MaskGIT evaluation (:mod:`fsq.evaluation.voice_samples`): which runs it judges,
the conditioning labels (the judge's voices in turn), and the wav files written per voice."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fsq.data.signal_files import read_wav
from fsq.evaluation.voice_samples import is_voice_conditioned, voice_labels, write_voice_wavs


def _tokenizer(dims: int) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(dims=dims))


def test_only_labelled_1d_speech_runs_are_judged_by_voice():
    speech, tones = (SimpleNamespace(data=SimpleNamespace(source=s)) for s in ("speech", "tones"))
    assert is_voice_conditioned(speech, _tokenizer(1), 40)
    assert not is_voice_conditioned(speech, _tokenizer(1), 0)  # unconditional
    assert not is_voice_conditioned(tones, _tokenizer(1), 40)
    assert not is_voice_conditioned(speech, _tokenizer(3), 40)


def test_labels_cycle_over_the_judges_voices_and_must_be_model_classes():
    assert voice_labels(7, [2, 5, 9], 40).tolist() == [2, 5, 9, 2, 5, 9, 2]
    with pytest.raises(ValueError, match=r"voices \[2, 45\] are not all among the MaskGIT's 40 classes"):
        voice_labels(4, [2, 45], 40)


def test_wav_files_per_voice(tmp_path):
    clips = torch.rand(6, 1, 400)
    labels = torch.tensor([3, 8, 3, 8, 3, 8])
    assert write_voice_wavs(clips, labels, 16000.0, 2, tmp_path / "g0") == "g0"
    assert sorted(p.name for p in (tmp_path / "g0").iterdir()) == [
        f"voice_0{v}_{k}.wav" for v in (3, 8) for k in (0, 1)
    ]
    audio, rate = read_wav(tmp_path / "g0" / "voice_08_1.wav")  # the second clip of voice 8: clips[3]
    assert rate == 16000 and torch.allclose(audio, clips[3], atol=1 / 32767)


def test_a_judge_of_reconstructions_is_refused_before_training_where_there_is_no_voice_judge():
    from fsq.config import MaskGITExperiment, from_dict
    from fsq.stages.maskgit import check_judge_data

    cfg = from_dict(MaskGITExperiment, {"name": "m", "eval": {"judge_data": "reconstructions"}})
    speech = {"source": "speech", "signal": "audio"}
    check_judge_data(cfg, speech, 28)  # voice-conditioned speech: fine
    with pytest.raises(ValueError, match="eval.judge_data=reconstructions: .* audio tokens of 'speech' without class"):
        check_judge_data(cfg, speech, 0)
    with pytest.raises(ValueError, match="these tokens are image tokens of 'mnist'"):
        check_judge_data(cfg, {"source": "mnist"}, 10)
    with pytest.raises(ValueError, match="audio tokens of 'tones'"):
        check_judge_data(cfg, {"source": "tones", "signal": "audio"}, 4)
    check_judge_data(from_dict(MaskGITExperiment, {"name": "m"}), {"source": "mnist"}, 10)  # the default: clips
