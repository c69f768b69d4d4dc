"""Audio metrics on hand-made cases: SI-SNR of known mixtures, bitrates of published codecs, PESQ and STOI through
their packages on a synthetic voiced signal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fsq.metrics.bitrate import bits_per_second, bits_per_token, clip_bits_per_second, tokens_per_second
from fsq.metrics.si_snr import si_snr
from fsq.metrics.speech_quality import mean_scores, pesq_wb, stoi, unavailable


# --------------------------------------------------------------------------------------------------------- SI-SNR
def test_si_snr_of_a_known_orthogonal_mixture():
    t = torch.arange(1000, dtype=torch.float64)
    s = torch.sin(2 * math.pi * 5 * t / 1000)  # zero-mean over whole periods
    n = torch.cos(2 * math.pi * 5 * t / 1000)  # orthogonal to s, same power
    assert si_snr(s, s + 0.1 * n).item() == pytest.approx(20.0, abs=1e-9)  # power ratio 1 / 0.01
    assert si_snr(s, s + n).item() == pytest.approx(0.0, abs=1e-9)
    assert si_snr(s, s + 10 * n).item() == pytest.approx(-20.0, abs=1e-9)


def test_si_snr_ignores_gain_and_offset_but_not_delay():
    g = torch.Generator().manual_seed(0)
    s, e = torch.randn(2, 4000, generator=g, dtype=torch.float64)
    est = s + 0.3 * e
    base = si_snr(s, est).item()
    assert si_snr(s, 3.0 * est + 0.5).item() == pytest.approx(base, abs=1e-9)
    assert si_snr(0.5 * s + 0.5, est).item() == pytest.approx(base, abs=1e-9)  # [0, 1] audio vs waveform
    assert si_snr(s, -est).item() == pytest.approx(base, abs=1e-9)  # a negative gain is a gain too
    assert si_snr(s, torch.roll(s, 7)).item() < 0  # white noise shifted by 7 samples is uncorrelated


def test_si_snr_caps_and_shapes():
    x = torch.randn(3, 2, 500, generator=torch.Generator().manual_seed(1))
    assert si_snr(x, x).shape == (3, 2) and torch.all(si_snr(x, x) == 100.0)
    assert si_snr(torch.zeros(1, 100), torch.randn(1, 100)).item() == -100.0  # silent reference
    with pytest.raises(ValueError, match="shapes differ"):
        si_snr(torch.zeros(1, 10), torch.zeros(1, 11))


# -------------------------------------------------------------------------------------------------------- bitrate
def test_bitrates_of_published_codecs():
    # NeMo low-frame-rate codec: 8 FSQ codebooks of 8*7*6*6 = 2016 codes at 21.5 frames/s: 1.89 kbps
    assert bits_per_second(21.5, [8 * 7 * 6 * 6] * 8) == pytest.approx(1889.0, abs=1.0)
    # X-Codec-2: one FSQ codebook of 65,536 at 50 tokens/s (16 kHz, hop 320): 800 bps
    assert bits_per_second(tokens_per_second(16000, 320), [65536]) == 800.0
    # EnCodec 24 kHz at 75 frames/s, 1024-code RVQ: 1.5 kbps with 2 stages, 6 kbps with 8 of 32
    assert bits_per_second(75, [1024] * 32, depth=2) == 1500.0
    assert bits_per_second(75, [1024] * 32, depth=8) == 6000.0
    # a 1-second clip at 16 kHz, 100 positions of 3 residual stages of 1000 codes: 300 log2(1000) bits/s
    assert clip_bits_per_second(300, 1000, 16000, 16000) == pytest.approx(300 * math.log2(1000))
    assert bits_per_token([2**40, 2]) == 41.0  # huge implicit codebooks stay exact


def test_bitrate_bad_input():
    with pytest.raises(ValueError, match="integers >= 2"):
        bits_per_token([1])
    with pytest.raises(ValueError, match=r"depth must be in \[1, 2\]"):
        bits_per_token([4, 4], depth=3)
    with pytest.raises(ValueError, match="positive"):
        tokens_per_second(16000, 0)


# --------------------------------------------------------------------------------------------------- PESQ / STOI
def _voiced(seconds: float = 3.0, rate: int = 16000) -> np.ndarray:
    """A vowel-like harmonic signal (f0 100-140 Hz, 29 harmonics) with a syllable-rate envelope."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 30))
    return 0.3 * x * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) / np.abs(x).max()


def _noisy(x: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(len(x))
    return x + noise * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))


@pytest.fixture(scope="module")
def voiced() -> np.ndarray:
    for metric in ("pesq", "stoi"):
        reason = unavailable(metric, 16000)
        if reason:
            pytest.skip(reason)
    return _voiced()


def test_pesq_and_stoi_rank_clean_above_noisy(voiced):
    assert pesq_wb(voiced, voiced) == pytest.approx(4.64, abs=0.01)  # the top of the wideband MOS-LQO scale
    assert pesq_wb(voiced, _noisy(voiced, 5)) < 2.0
    assert stoi(voiced, voiced, 16000) == pytest.approx(1.0, abs=1e-6)
    assert stoi(voiced, _noisy(voiced, 20), 16000) > stoi(voiced, _noisy(voiced, 0), 16000) > 0.5


def test_mean_scores_and_the_reasons_for_skipping(voiced):
    scores = mean_scores([voiced, voiced], [voiced, _noisy(voiced, 0)], 16000)
    assert 1.0 < scores["pesq_wb"] < 4.64 and 0.5 < scores["stoi"] < 1.0
    scores = mean_scores([voiced[::2]], [voiced[::2]], 8000)
    assert "16000 Hz" in scores["pesq_wb_skipped"] and "10 kHz" in scores["stoi_skipped"]
    silent = np.zeros(16000)
    scores = mean_scores([silent], [silent], 16000)
    assert scores["pesq_wb_unscored_clips"] == 1.0 and "pesq_wb" not in scores
    with pytest.raises(ValueError, match="reference is silent"):
        stoi(silent, silent, 16000)
    with pytest.raises(ValueError, match="Not enough STFT frames"):  # 0.2 s: under pystoi's 30 frames
        stoi(voiced[:3200], voiced[:3200], 16000)
    with pytest.raises(ValueError, match="one length"):
        pesq_wb(voiced, voiced[:-1])
