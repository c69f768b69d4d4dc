"""Spectral transforms and distances on hand-made cases: the mel scale's fixed points, filters that sum to one, a
sine's STFT peak, distances of scaled copies (known in closed form), and parity with ``auraloss``."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.metrics.spectral import (
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    multi_resolution_stft_distance,
    multi_scale_mel_distance,
    stft_magnitude,
    to_waveform,
)


def _noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_to_waveform_maps_silence_to_zero():
    assert to_waveform(torch.tensor([0.0, 0.5, 1.0])).tolist() == [-1.0, 0.0, 1.0]


def test_slaney_mel_scale_fixed_points_and_inverse():
    assert hz_to_mel(torch.tensor([0.0, 500.0, 1000.0, 6400.0])).tolist() == pytest.approx([0.0, 7.5, 15.0, 42.0])
    hz = torch.tensor([20.0, 999.0, 1000.0, 3000.0, 8000.0])
    assert mel_to_hz(hz_to_mel(hz)).tolist() == pytest.approx(hz.tolist())


def test_unnormalised_filters_peak_at_one_and_sum_to_one_between_centres():
    bank = mel_filterbank(40, 1024, 16000, norm=False).double()
    assert bank.shape == (40, 513) and bank.max() <= 1.0 + 1e-6
    freqs = torch.linspace(0, 8000, 513, dtype=torch.float64)
    centres = mel_to_hz(torch.linspace(0, hz_to_mel(torch.tensor(8000.0)).item(), 42))[1:-1]
    inside = (freqs >= centres[0]) & (freqs <= centres[-1])
    assert bank.sum(0)[inside] == pytest.approx(torch.ones(int(inside.sum())), abs=1e-6)


def test_normalised_filters_have_unit_area():
    bank = mel_filterbank(20, 8192, 16000).double()  # fine bins: the sampled triangles' area is close to exact
    area = bank.sum(1) * (16000 / 8192)
    assert area.tolist() == pytest.approx([1.0] * 20, rel=0.02)


def test_filters_without_bins_are_an_error():
    with pytest.raises(ValueError, match="cover no FFT bin with n_fft=32"):
        mel_filterbank(64, 32, 16000)


def test_stft_magnitude_of_a_bin_centred_sine():
    n_fft, k = 256, 16
    t = torch.arange(4096, dtype=torch.float64)
    x = 0.5 * torch.sin(2 * math.pi * k * t / n_fft)
    mag = stft_magnitude(x[None], n_fft, 64)[0]
    assert mag.shape == (129, 4096 // 64 + 1)
    middle = mag[:, 10:-10]
    assert (middle.argmax(0) == k).all()
    # amplitude A at a bin frequency under a periodic Hann window: |X_k| = A * sum(w) / 2 = A * n_fft / 4
    assert middle[k].tolist() == pytest.approx([0.5 * n_fft / 4] * middle.shape[1], rel=1e-6)


def test_stft_distance_of_a_half_scaled_copy_is_half_plus_log_two():
    x = _noise(3, 8000)
    d = multi_resolution_stft_distance(x, x)
    assert d.total.tolist() == pytest.approx([0.0] * 3, abs=1e-6)
    d = multi_resolution_stft_distance(x, 0.5 * x)
    # spectral convergence ||Y - Y/2|| / ||Y|| = 1/2; |log Y - log(Y/2)| = ln 2 (no magnitude near the floor)
    assert d.spectral_convergence.tolist() == pytest.approx([0.5] * 3, rel=1e-5)
    assert d.log_magnitude.tolist() == pytest.approx([math.log(2)] * 3, rel=1e-4)
    assert d.total.tolist() == pytest.approx([0.5 + math.log(2)] * 3, rel=1e-4)


def test_stft_distance_equals_auraloss_on_one_clip():
    auraloss = pytest.importorskip("auraloss", reason="auraloss is not installed (pip install auraloss)")
    reference, estimate = _noise(1, 1, 16000, seed=1), _noise(1, 1, 16000, seed=2) + _noise(1, 1, 16000, seed=1)
    theirs = auraloss.freq.MultiResolutionSTFTLoss()(estimate, reference)  # (input, target): target normalises
    ours = multi_resolution_stft_distance(reference[:, 0], estimate[:, 0]).total
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_stft_distance_is_per_item():
    """Each clip's distance is its own: a batch gives what each clip gives alone."""
    ref, est = _noise(2, 6000, seed=3), _noise(2, 6000, seed=4)
    est[1] = ref[1] * 0.9
    batch = multi_resolution_stft_distance(ref, est).total
    alone = [multi_resolution_stft_distance(ref[i : i + 1], est[i : i + 1]).total.item() for i in range(2)]
    assert batch.tolist() == pytest.approx(alone, rel=1e-6)
    assert batch[1] < batch[0]


def test_mel_distance_of_a_tenth_scaled_copy():
    x = _noise(2, 16000)
    assert multi_scale_mel_distance(x, x, 16000).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    # |log10((m / 10)^2) - log10(m^2)| = 2 in every band at every one of the 7 scales
    assert multi_scale_mel_distance(x, x / 10, 16000).tolist() == pytest.approx([14.0, 14.0], rel=1e-4)
    assert multi_scale_mel_distance(x, x / 10, 16000, power=1.0).tolist() == pytest.approx([7.0, 7.0], rel=1e-4)


def test_mel_distance_grows_with_noise_and_floors_silence():
    x = _noise(1, 16000)
    near = multi_scale_mel_distance(x, x + 0.01 * _noise(1, 16000, seed=5), 16000)
    far = multi_scale_mel_distance(x, x + 0.3 * _noise(1, 16000, seed=5), 16000)
    assert 0 < near.item() < far.item()
    silence = torch.zeros(1, 16000)
    spec = log_mel_spectrogram(silence, 16000, 256, 64, 40)
    assert torch.all(spec == -5.0)  # log10 of the 1e-5 floor
    assert multi_scale_mel_distance(silence, silence, 16000).item() == 0.0


def test_distances_have_gradients_for_losses():
    ref = _noise(2, 4000)
    est = (ref + 0.1 * _noise(2, 4000, seed=6)).requires_grad_()
    loss = multi_resolution_stft_distance(ref, est).total.mean() + multi_scale_mel_distance(ref, est, 16000).mean()
    loss.backward()
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="shapes differ"):
        multi_resolution_stft_distance(torch.zeros(1, 4000), torch.zeros(1, 4001))
    with pytest.raises(ValueError, match="needs clips longer than 1024"):
        multi_resolution_stft_distance(torch.zeros(1, 1000), torch.zeros(1, 1000))
    with pytest.raises(ValueError, match="differ in length"):
        multi_scale_mel_distance(torch.zeros(1, 4000), torch.zeros(1, 4000), 16000, windows=(64,), n_mels=(5, 10))
