"""Audio evaluation: the metrics of a 1-D tokenizer's held-out clips (SI-SNR, spectral distances, bitrate, PESQ and
STOI or the reason they were skipped) and the Codec2 / Opus anchors on the same clips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.anchors.alignment import calibration_signal
from fsq.anchors.audio import anchor, missing
from fsq.config import TokenizerExperiment, load_config
from fsq.evaluation.audio_scores import AnchorScores, AudioScores

ROOT = Path(__file__).parents[2]


def _unit(wave: torch.Tensor) -> torch.Tensor:
    return (wave + 1) / 2  # the project's audio: [0, 1], silence 0.5


def test_scores_of_a_known_reconstruction_at_16k():
    wave = torch.from_numpy(calibration_signal(16000, seconds=1.0, seed=1)).float()[None, None]
    noise = 0.1 * wave.std() * torch.randn(wave.shape, generator=torch.Generator().manual_seed(0))
    scores = AudioScores(16000, wave.shape[-1])
    scores.update(_unit(wave), _unit(wave + noise))  # noise at -20 dB of the signal
    out = scores.summary()
    assert out["si_snr_db"] == pytest.approx(20.0, abs=0.5)
    assert (
        0 < out["mel_distance"]
        and 0 < out["stft_distance"]
        and len(out["audio_metric_settings"]["stft_resolutions"]) == 3
    )
    for key in ("pesq_wb", "stoi"):  # both packages are in the audio-eval extra, installed here
        assert key in out or key in out.get("audio_metrics_skipped", {}), key
    if "stoi" in out:
        assert 0.9 < out["stoi"] <= 1.0


def test_short_clips_at_8k_skip_what_cannot_run_and_say_why():
    scores = AudioScores(8000, 256)
    x = torch.rand(2, 1, 256)
    scores.update(x, x)
    out = scores.summary()
    skipped = out["audio_metrics_skipped"]
    assert "shorter than every FFT size" in skipped["stft_distance"] and "stft_distance" not in out
    assert "16000 Hz" in skipped["pesq_wb"] or "not installed" in skipped["pesq_wb"]
    assert out["mel_distance"] == 0.0 and out["si_snr_db"] == 100.0
    assert out["audio_metric_settings"]["mel_windows_and_bands"][-1] == [256, 40]  # windows up to the clip's half


def test_unknown_anchor_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown audio anchor 'codec3'.*codec2-2400"):
        AnchorScores(["codec3"], 16000, 16000)
    with pytest.raises(ValueError, match="needs a source with a sample rate"):
        AnchorScores(["opus-6k"], None, 16000)


def test_silence_is_the_trivial_anchor_decoding_nothing_at_no_bits():
    from fsq.anchors.audio import run_anchor

    clip = calibration_signal(16000, seconds=1.0, seed=1)
    result = run_anchor("silence", clip, 16000)
    assert result.decoded.shape == clip.shape and not result.decoded.any()
    assert result.bits == 0 and result.bits_per_second == 0.0 and result.payload_bits_per_second == 0.0
    assert missing(anchor("silence")) is None and anchor("silence").nominal_bps == 0.0
    scores = AnchorScores(["silence"], 16000, 16000, speech_quality=False)
    scores.update(_unit(torch.from_numpy(clip)[None, None]))
    row = scores.summary()["silence"]
    assert row["bits_per_second"] == 0.0 and row["mel_distance"] > 5.0  # far from any codec of the clip


@pytest.mark.integration
def test_tones_tokenizer_evaluation_reports_audio_metrics_and_anchors(tmp_path):
    names = ["codec2-2400", "opus-6k"]
    for name in names:
        if missing(anchor(name)):
            pytest.skip(missing(anchor(name)))
    cfg = load_config(
        TokenizerExperiment,
        [ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml", ROOT / "configs" / "presets" / "smoke.yaml"],
        ["train.steps=2", "train.threads=1", "data.eval_limit=8", f"eval.audio_anchors={names}".replace("'", "")],
    )
    app.train(cfg, tmp_path)
    results = json.loads((tmp_path / "eval" / "step_000002.json").read_text())
    assert results["rate"] == 8000 and results["num_samples"] == 8
    # 256 samples -> 32 tokens of 8*5*5*5 = 1000 codes: 32 log2(1000) bits per 32 ms
    assert results["tokens_per_second"] == 1000.0
    assert results["bits_per_second"] == pytest.approx(1000 * math.log2(1000))
    assert math.isfinite(results["si_snr_db"]) and math.isfinite(results["mel_distance"])
    assert "pesq_wb" in results["audio_metrics_skipped"]  # 8 kHz: no wideband PESQ
    for name in names:
        row = results["anchors"][name]
        assert row["nominal_bits_per_second"] == anchor(name).nominal_bps
        assert row["bits_per_second"] > 0 and math.isfinite(row["si_snr_db"]) and math.isfinite(row["mel_distance"])
