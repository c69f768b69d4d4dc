"""Spectral reconstruction losses of audio codecs: multi-resolution STFT and multi-scale mel, as modules over a
batch, built on the shared transforms and distances of :mod:`fsq.metrics.spectral` (the evaluation's own).

Signals are waveforms ``(B, C, T)`` (or ``(B, T)``) in their natural scale (``[-1, 1]`` audio); each loss is the
batch mean of a per-clip distance.

- :class:`MultiResolutionSTFTLoss` (Yamamoto et al., Parallel WaveGAN, 2020): per FFT size (window = FFT size, hop
  a quarter window), spectral convergence ``||Y - X||_F / ||Y||_F`` plus ``mean |log Y - log X|``, averaged over
  the sizes (:func:`fsq.metrics.spectral.multi_resolution_stft_distance`; for one clip it equals
  ``auraloss.freq.MultiResolutionSTFTLoss``, which takes the convergence of a whole batch at once).
  ``complex_weight`` adds a phase-aware term, ``mean |STFT(x) - STFT(y)| / sqrt(window)`` (the modulus of the
  complex difference), which is zero only when the phases match too: magnitude losses alone leave the waveform's
  phase free, and a codec trained on them alone can match spectra with an incoherent waveform.
- :class:`MultiScaleMelLoss` (DAC, Kumar et al., 2023): ``mean |log10 mel(x)^2 - log10 mel(y)^2|`` (mel magnitudes
  floored at 1e-5, Slaney filters) summed over the windows
  (:func:`fsq.metrics.spectral.multi_scale_mel_distance`); DAC's ``window * 5 / 32`` bands by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fsq.metrics.spectral import multi_resolution_stft_distance, multi_scale_mel_distance


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"reconstruction {tuple(x.shape)} and target {tuple(y.shape)} must have the same shape")
    if x.ndim not in (2, 3):
        raise ValueError(f"expected waveforms (B, T) or (B, C, T), got shape {tuple(x.shape)}")


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

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(reconstruction, target)
        x, y = reconstruction.float(), target.float()
        total = multi_resolution_stft_distance(y, x, self.windows, self.hops, self.windows).total.mean()
        if self.complex_weight > 0:
            phase = x.new_zeros(())
            for w, hop in zip(self.windows, self.hops):
                window = torch.hann_window(w, device=x.device)
                difference = torch.stft((x - y).reshape(-1, x.shape[-1]), w, hop, w, window, return_complex=True)
                phase = phase + difference.abs().mean() / math.sqrt(w)  # STFT is linear: STFT(x) - STFT(y)
            total = total + self.complex_weight * phase / len(self.windows)
        return total


MEL_EPS = 1e-14  # bin power floor of the mel loss: magnitudes of 1e-7, far under the 1e-5 mel floor


class MultiScaleMelLoss(nn.Module):
    """DAC's multi-scale mel distance, batch mean (summed over ``windows``; hops ``window // 4``).

    Args:
        sample_rate: the signals' rate (Hz), which places the mel bands.
        windows: FFT sizes.
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

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(reconstruction, target)
        x, y = reconstruction.float(), target.float()
        # a positive floor under each bin's square root: a silent span (bins of exactly zero power) would give an
        # infinite square-root gradient, NaN through the mel floor (seen: a speech codec diverged at step 2834)
        distance = multi_scale_mel_distance(y, x, self.sample_rate, self.windows, self.n_mels, magnitude_eps=MEL_EPS)
        return distance.mean()
