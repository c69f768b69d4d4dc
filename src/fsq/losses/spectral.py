"""Spectral reconstruction losses of audio codecs: multi-resolution STFT and multi-scale mel.

Signals are waveforms ``(B, C, T)`` (or ``(B, T)``) in their natural scale (``[-1, 1]`` audio); both losses are
averages over their resolutions and average over the batch and channels.

- :class:`MultiResolutionSTFTLoss` (Yamamoto et al., Parallel WaveGAN, 2020; as ``auraloss.freq.
  MultiResolutionSTFTLoss`` with its defaults ``w_sc = w_log_mag = 1``): per FFT size, spectral convergence
  ``||Y - X||_F / ||Y||_F`` plus ``mean |log Y - log X|``, magnitudes ``sqrt(max(|STFT|^2, 1e-8))`` of a periodic
  Hann window, centred frames with reflect padding. ``complex_weight`` adds a phase-aware term,
  ``mean |STFT(x) - STFT(y)|`` (the modulus of the complex difference, scaled by ``1 / sqrt(window)``), which is zero
  only when phases match too: magnitude losses alone leave the waveform's phase free.
- :class:`MultiScaleMelLoss` (DAC, Kumar et al., 2023, ``MelSpectrogramLoss`` with ``log_weight = 1``,
  ``mag_weight = 0``): per window ``w``, ``mean |log10 max(M(x), 1e-5) - log10 max(M(y), 1e-5)|`` of mel magnitudes
  ``M`` (``n_mels`` triangular HTK-scale bands over ``[0, rate / 2]``; DAC's ``w * 5 / 32`` bands by default), hop
  ``w / 4``.

Agreement and speed against ``auraloss`` 0.4.0 (its mel loss needs ``librosa``) are measured in
``tests/losses/test_spectral.py`` and ``benchmarks/spectral_losses.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

MAGNITUDE_EPS = 1e-8  # on |STFT|^2, as auraloss
MEL_CLAMP = 1e-5  # DAC's clamp_eps


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    if x.ndim not in (2, 3):
        raise ValueError(f"expected waveforms (B, T) or (B, C, T), got shape {tuple(x.shape)}")
    return x.reshape(-1, x.shape[-1])


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"reconstruction {tuple(x.shape)} and target {tuple(y.shape)} must have the same shape")


def stft(x: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Complex STFT (rows, window // 2 + 1, frames) of (rows, T) float32: centred, reflect padding (T must exceed
    half the window), the window's length as FFT size."""
    n = window.shape[0]
    if x.shape[-1] <= n // 2:
        raise ValueError(f"a {x.shape[-1]}-sample signal is too short for an STFT window of {n} (needs > {n // 2})")
    return torch.stft(x.float(), n, hop, n, window, center=True, pad_mode="reflect", return_complex=True)


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(|spec|^2, 1e-8))``: a magnitude whose log and gradient stay finite at zero."""
    return (spec.real.square() + spec.imag.square()).clamp_min(MAGNITUDE_EPS).sqrt()


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: float) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters equally spaced on the HTK mel scale ``2595 log10(1 + f / 700)``
    over ``[0, sample_rate / 2]``, peak 1 (no area normalisation)."""
    if n_mels < 1 or n_fft < 2 or not sample_rate > 0:
        raise ValueError(
            f"mel_filterbank needs n_mels >= 1, n_fft >= 2, sample_rate > 0; got {n_mels}, {n_fft}, {sample_rate}"
        )
    to_mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    edges_mel = torch.linspace(0.0, to_mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 (+ ``complex_weight`` x complex L1), averaged over ``windows``.

    Args:
        windows: FFT sizes (= window lengths); hops are ``window // 4`` unless ``hops`` is given.
        complex_weight: weight of the phase-aware complex-STFT L1 term (0: magnitudes only, as auraloss).
    """

    def __init__(
        self,
        windows: Sequence[int] = (512, 1024, 2048),
        hops: Sequence[int] | None = None,
        complex_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if not windows or any(int(w) < 2 for w in windows):
            raise ValueError(f"windows must be one or more sizes >= 2, got {list(windows)}")
        hops = [int(w) // 4 for w in windows] if hops is None else list(hops)
        if len(hops) != len(windows) or any(int(h) < 1 for h in hops):
            raise ValueError(f"hops {hops} must be one positive hop per window {list(windows)}")
        self.windows, self.hops, self.complex_weight = [int(w) for w in windows], [int(h) for h in hops], complex_weight
        for w in self.windows:
            self.register_buffer(f"window_{w}", torch.hann_window(w), persistent=False)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(reconstruction, target)
        x, y = _as_rows(reconstruction), _as_rows(target)
        total = x.new_zeros((), dtype=torch.float32)
        for w, hop in zip(self.windows, self.hops):
            window = getattr(self, f"window_{w}")
            sx, sy = stft(x, window, hop), stft(y, window, hop)
            mx, my = magnitude(sx), magnitude(sy)
            convergence = torch.linalg.vector_norm(my - mx) / torch.linalg.vector_norm(my)
            log_magnitude = (my.log() - mx.log()).abs().mean()
            total = total + convergence + log_magnitude
            if self.complex_weight > 0:
                total = total + self.complex_weight * (sx - sy).abs().mean() / math.sqrt(w)
        return total / len(self.windows)


class MultiScaleMelLoss(nn.Module):
    """``mean |log10 mel(x) - log10 mel(y)|`` averaged over ``windows`` (DAC's multi-scale mel loss).

    Args:
        sample_rate: the signals' rate (Hz), which places the mel bands.
        windows: FFT sizes; hops ``window // 4``.
        n_mels: bands per window (None: DAC's ``max(5, window * 5 // 32)``).
    """

    def __init__(
        self,
        sample_rate: float,
        windows: Sequence[int] = (64, 128, 256, 512, 1024, 2048),
        n_mels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not windows or any(int(w) < 2 for w in windows):
            raise ValueError(f"windows must be one or more sizes >= 2, got {list(windows)}")
        bands = [max(5, int(w) * 5 // 32) for w in windows] if n_mels is None else [int(n) for n in n_mels]
        if len(bands) != len(windows):
            raise ValueError(f"n_mels {bands} must give one band count per window {list(windows)}")
        self.windows, self.n_mels, self.sample_rate = [int(w) for w in windows], bands, float(sample_rate)
        for w, n in zip(self.windows, bands):
            self.register_buffer(f"window_{w}", torch.hann_window(w), persistent=False)
            self.register_buffer(f"mel_{w}", mel_filterbank(w, n, sample_rate), persistent=False)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(reconstruction, target)
        x, y = _as_rows(reconstruction), _as_rows(target)
        total = x.new_zeros((), dtype=torch.float32)
        for w in self.windows:
            window, bank = getattr(self, f"window_{w}"), getattr(self, f"mel_{w}")
            mx = bank @ stft(x, window, w // 4).abs()
            my = bank @ stft(y, window, w // 4).abs()
            total = total + (mx.clamp_min(MEL_CLAMP).log10() - my.clamp_min(MEL_CLAMP).log10()).abs().mean()
        return total / len(self.windows)
