"""Spectral transforms of audio shared by the audio metrics and the codec losses: STFT magnitudes, the mel
filterbank and log-mel spectrograms, and the two spectral distances built on them.

Everything here is differentiable torch (a loss may call it on a model's output) and works on waveforms of shape
``(..., T)`` in the usual ``[-1, 1]`` scale (``to_waveform`` turns the project's ``[0, 1]`` audio, silence at
``0.5``, into it). Distances are returned per item (one value per leading index), so an evaluation can average over
clips and a loss over a batch.

- :func:`stft_magnitude`: ``|STFT|`` with a Hann window, floored as ``sqrt(max(|X|^2, eps))`` (the floor of
  ``auraloss`` and Parallel WaveGAN, so the log magnitude never sees zero).
- :func:`mel_filterbank`: Slaney-style triangular mel filters (the mel scale of Slaney's Auditory Toolbox: linear
  below 1 kHz, logarithmic above; each filter scaled to unit area, ``2 / (f_high - f_low)``), the defaults of
  librosa that DAC and EnCodec use.
- :func:`multi_resolution_stft_distance`: spectral convergence ``||Y - X||_F / ||Y||_F`` plus the mean absolute log
  magnitude difference, averaged over FFT resolutions (Yamamoto et al. 2020, "Parallel WaveGAN", arXiv
  1910.11480; the defaults are theirs and ``auraloss.freq.MultiResolutionSTFTLoss``'s). ``auraloss`` computes the
  spectral convergence of the whole batch as one norm ratio; here it is per item, so a batch of one equals it.
- :func:`multi_scale_mel_distance`: mean absolute difference of ``log10`` mel magnitudes over several window
  sizes (the evaluation and reconstruction loss of DAC, Kumar et al. 2023, arXiv 2306.06546: windows 32 to 2048,
  hop a quarter window, 5 to 320 mels, magnitudes floored at 1e-5 and squared before the log).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

# Parallel WaveGAN / auraloss defaults for the multi-resolution STFT distance
STFT_FFT_SIZES = (1024, 2048, 512)
STFT_HOP_SIZES = (120, 240, 50)
STFT_WIN_LENGTHS = (600, 1200, 240)
# DAC's multi-scale mel distance
MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)


def to_waveform(x: torch.Tensor) -> torch.Tensor:
    """The project's audio in ``[0, 1]`` with silence at ``0.5`` as a waveform in ``[-1, 1]`` (``2 x - 1``)."""
    return x * 2.0 - 1.0


def stft_magnitude(
    x: torch.Tensor, n_fft: int, hop: int, win_length: int | None = None, eps: float = 1e-8, center: bool = True
) -> torch.Tensor:
    """``|STFT(x)|`` of waveforms ``(..., T)``: ``(..., n_fft // 2 + 1, frames)``, Hann window of ``win_length``
    (default ``n_fft``) centred in the FFT frame, reflect padding when ``center``, magnitude
    ``sqrt(max(re^2 + im^2, eps))``."""
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft or hop <= 0:
        raise ValueError(f"STFT needs 0 < win_length <= n_fft and hop > 0, got {n_fft=}, {hop=}, {win_length=}")
    if x.shape[-1] <= n_fft // 2 and center:
        raise ValueError(f"STFT with n_fft={n_fft} needs clips longer than {n_fft // 2} samples, got {x.shape[-1]}")
    lead = x.shape[:-1]
    window = torch.hann_window(win_length, device=x.device, dtype=x.dtype)
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop, win_length, window, center=center, return_complex=True)
    magnitude = (spec.real.square() + spec.imag.square()).clamp_min(eps).sqrt()
    return magnitude.reshape(*lead, *magnitude.shape[-2:])


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: ``3 f / 200`` below 1 kHz (15 mel at 1 kHz), then ``27 / ln 6.4`` mel per natural-log
    unit of frequency (6.4 kHz is 42 mel)."""
    hz = torch.as_tensor(hz, dtype=torch.float64)
    log_step = math.log(6.4) / 27.0
    return torch.where(hz < 1000.0, hz * 3.0 / 200.0, 15.0 + torch.log(hz.clamp_min(1e-10) / 1000.0) / log_step)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`hz_to_mel`."""
    mel = torch.as_tensor(mel, dtype=torch.float64)
    log_step = math.log(6.4) / 27.0
    return torch.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * torch.exp(log_step * (mel - 15.0)))


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: float, f_min: float = 0.0, f_max: float | None = None, norm: bool = True
) -> torch.Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` (float32) on the FFT bins of ``n_fft`` at
    ``sample_rate``: filter ``m`` rises from mel point ``m`` to ``m + 1`` and falls to ``m + 2`` (``n_mels + 2``
    points evenly spaced in mel from ``f_min`` to ``f_max``, default Nyquist); ``norm`` scales each to unit area
    (``2 / (f_{m+2} - f_m)``, Slaney), else their peaks are 1 and they sum to 1 between the first and last centre.
    A filter that covers no FFT bin (too many mels for the FFT size) is a ValueError naming both."""
    f_max = sample_rate / 2 if f_max is None else f_max
    if n_mels < 1 or not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"mel filterbank needs n_mels >= 1 and 0 <= f_min < f_max <= sample_rate / 2, got "
            f"{n_mels=}, {f_min=}, {f_max=}, {sample_rate=}"
        )
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    points = mel_to_hz(
        torch.linspace(
            hz_to_mel(torch.tensor(f_min)).item(),
            hz_to_mel(torch.tensor(f_max)).item(),
            n_mels + 2,
            dtype=torch.float64,
        )
    )
    low, centre, high = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    bank = torch.minimum(rising, falling).clamp_min(0.0)
    if norm:
        bank = bank * (2.0 / (high - low))
    empty = (bank.sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"mel filterbank: {len(empty)} of {n_mels} mel filters cover no FFT bin with n_fft={n_fft} at "
            f"{sample_rate:g} Hz (filters {empty[:5]}...); use fewer mels or a larger FFT"
        )
    return bank.float()


def log_mel_spectrogram(
    x: torch.Tensor,
    sample_rate: float,
    n_fft: int,
    hop: int,
    n_mels: int,
    floor: float = 1e-5,
    power: float = 1.0,
    magnitude_eps: float = 0.0,
) -> torch.Tensor:
    """``log10(max(mel(|STFT(x)|), floor) ** power)`` of waveforms ``(..., T)``: ``(..., n_mels, frames)``, Hann
    window of ``n_fft``; the mel filters are applied to magnitudes (DAC's ``MelSpectrogramLoss`` uses ``power=2``
    on magnitudes, which doubles every log, the same distance up to a factor 2). ``magnitude_eps``: the floor of
    each bin's power under the square root; 0 (a metric) is exact, a loss needs it positive: the square root's
    gradient at a bin of exactly zero power (a silent span) is infinite, and NaN once the floor zeroes it."""
    bank = mel_filterbank(n_mels, n_fft, sample_rate).to(device=x.device, dtype=x.dtype)
    mel = torch.matmul(bank, stft_magnitude(x, n_fft, hop, eps=magnitude_eps))
    return mel.clamp_min(floor).pow(power).log10()


class STFTDistance(NamedTuple):
    """Per-item multi-resolution STFT distance (B,) and its two terms, each averaged over resolutions."""

    total: torch.Tensor
    spectral_convergence: torch.Tensor
    log_magnitude: torch.Tensor


def multi_resolution_stft_distance(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    fft_sizes: Sequence[int] = STFT_FFT_SIZES,
    hop_sizes: Sequence[int] = STFT_HOP_SIZES,
    win_lengths: Sequence[int] = STFT_WIN_LENGTHS,
    eps: float = 1e-8,
) -> STFTDistance:
    """Spectral convergence ``||Y - X||_F / ||Y||_F`` (``Y`` the reference's magnitudes) plus mean
    ``|log Y - log X|``, per item of waveforms ``(..., T)`` and averaged over the resolutions (0 for identical
    clips; the log term is in natural-log units)."""
    _check_pair(reference, estimate)
    if not len(fft_sizes) == len(hop_sizes) == len(win_lengths) > 0:
        raise ValueError(
            f"fft_sizes, hop_sizes and win_lengths differ in length: {fft_sizes}, {hop_sizes}, {win_lengths}"
        )
    sc = log_mag = torch.zeros(reference.shape[:-1], device=reference.device, dtype=reference.dtype)
    for n_fft, hop, win in zip(fft_sizes, hop_sizes, win_lengths):
        y = stft_magnitude(reference, n_fft, hop, win, eps)
        x = stft_magnitude(estimate, n_fft, hop, win, eps)
        sc = sc + (y - x).square().sum((-2, -1)).sqrt() / y.square().sum((-2, -1)).sqrt()
        log_mag = log_mag + (y.log() - x.log()).abs().mean((-2, -1))
    n = len(fft_sizes)
    return STFTDistance((sc + log_mag) / n, sc / n, log_mag / n)


def multi_scale_mel_distance(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    sample_rate: float,
    windows: Sequence[int] = MEL_WINDOWS,
    n_mels: Sequence[int] = MEL_BANDS,
    floor: float = 1e-5,
    power: float = 2.0,
    magnitude_eps: float = 0.0,
) -> torch.Tensor:
    """Mean absolute difference of :func:`log_mel_spectrogram` (``log10`` of floored mel magnitudes to ``power``,
    2 as in DAC) per item of waveforms ``(..., T)``, summed over the window sizes (hop a quarter window,
    ``n_mels[i]`` bands for ``windows[i]``), as DAC reports it; 0 for identical clips. ``magnitude_eps`` (0: exact)
    as in :func:`log_mel_spectrogram`: positive for a loss, whose gradient must stay finite on silent spans."""
    _check_pair(reference, estimate)
    if len(windows) != len(n_mels) or not windows:
        raise ValueError(f"windows and n_mels differ in length: {windows}, {n_mels}")
    total = torch.zeros(reference.shape[:-1], device=reference.device, dtype=reference.dtype)
    for window, bands in zip(windows, n_mels):
        hop = max(window // 4, 1)
        y = log_mel_spectrogram(reference, sample_rate, window, hop, bands, floor, power, magnitude_eps)
        x = log_mel_spectrogram(estimate, sample_rate, window, hop, bands, floor, power, magnitude_eps)
        total = total + (y - x).abs().mean((-2, -1))
    return total


def _check_pair(reference: torch.Tensor, estimate: torch.Tensor) -> None:
    if reference.shape != estimate.shape:
        raise ValueError(f"reference and estimate shapes differ: {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    if not reference.is_floating_point() or not estimate.is_floating_point():
        raise ValueError(f"waveforms must be floating point, got {reference.dtype} and {estimate.dtype}")
