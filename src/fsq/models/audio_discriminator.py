"""Audio discriminators of GAN-trained codecs: multi-period (HiFi-GAN) and multi-resolution STFT (EnCodec / DAC).

:class:`AudioDiscriminator` holds both kinds and maps a waveform batch ``(B, 1, T)`` (``[-1, 1]``) to one
``(logits, features)`` pair per sub-discriminator: ``logits`` a map of per-patch real/fake scores, ``features`` the
activations of every layer (for the feature-matching loss, :func:`fsq.losses.adversarial.feature_matching_loss`).

- Multi-period (Kong et al., HiFi-GAN, 2020, ``MultiPeriodDiscriminator``): for each period ``p`` the signal is
  folded into ``(B, 1, T / p, p)`` (reflect-padded to a multiple of ``p``) and judged by 2-D convolutions of kernel
  ``(5, 1)``, stride ``(3, 1)``: each column sees samples ``p`` apart, so periodic structure (pitch) is judged.
  HiFi-GAN's widths are 32, 128, 512, 1024, 1024; here ``channels * (1, 2, 4, 4)`` for CPU budgets.
- Multi-resolution STFT (Defossez et al., EnCodec, 2022, ``MultiScaleSTFTDiscriminator``): for each window the
  complex STFT as two channels (real, imaginary; so phase is judged, not only magnitude), then 2-D convolutions
  of kernel ``(3, 9)`` with frequency stride 2 and a ``(3, 3)`` convolution, as EnCodec's ``DiscriminatorSTFT``.

Leaky ReLU 0.2 between layers; no normalisation (EnCodec and HiFi-GAN use weight norm, left out as in the image
discriminator).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NEGATIVE_SLOPE = 0.2
Judgement = tuple[torch.Tensor, list[torch.Tensor]]  # (logits, features of every layer)


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's sub-discriminator of one period: ``(B, 1, T)`` -> logits ``(B, 1, frames, period)``."""

    def __init__(self, period: int, channels: int = 16) -> None:
        super().__init__()
        if period < 1 or channels < 1:
            raise ValueError(f"period and channels must be positive, got {period}, {channels}")
        self.period = int(period)
        widths = [1] + [channels * m for m in (1, 2, 4, 4)]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, (5, 1), (3, 1) if i < len(widths) - 2 else 1, padding=(2, 0))
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.out = nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> Judgement:
        b, c, t = x.shape
        pad = (-t) % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect" if pad < t else "constant")
        h = x.view(b, c, -1, self.period)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), NEGATIVE_SLOPE)
            features.append(h)
        logits = self.out(h)
        features.append(logits)
        return logits, features


class STFTDiscriminator(nn.Module):
    """EnCodec's sub-discriminator of one STFT resolution: the complex STFT (real, imaginary channels) of window
    ``window`` (hop ``window // 4``) -> logits ``(B, 1, frames, bins')``."""

    window: torch.Tensor  # buffer

    def __init__(self, window: int, channels: int = 16) -> None:
        super().__init__()
        if window < 4 or channels < 1:
            raise ValueError(f"window must be >= 4 and channels positive, got {window}, {channels}")
        self.n_fft, self.hop = int(window), int(window) // 4
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.convs = nn.ModuleList(
            [nn.Conv2d(2, channels, (3, 9), padding=(1, 4))]
            + [nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4)) for _ in range(3)]
            + [nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))]
        )
        self.out = nn.Conv2d(channels, 1, (3, 3), padding=(1, 1))

    def forward(self, x: torch.Tensor) -> Judgement:
        rows = x.reshape(-1, x.shape[-1]).float()
        if rows.shape[-1] <= self.n_fft // 2:
            raise ValueError(f"a {rows.shape[-1]}-sample signal is too short for the STFT discriminator's {self.n_fft}")
        spec = torch.stft(rows, self.n_fft, self.hop, self.n_fft, self.window, center=True, return_complex=True)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, frames, bins)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), NEGATIVE_SLOPE)
            features.append(h)
        logits = self.out(h)
        features.append(logits)
        return logits, features


class AudioDiscriminator(nn.Module):
    """Multi-period and multi-resolution STFT sub-discriminators of mono waveforms ``(B, 1, T)`` in ``[-1, 1]``.

    Args:
        periods: the multi-period discriminator's periods (HiFi-GAN: 2, 3, 5, 7, 11; empty: none).
        windows: the STFT discriminator's windows (empty: none).
        channels: base width of every sub-discriminator.
    """

    def __init__(
        self, periods: Sequence[int] = (2, 3, 5, 7, 11), windows: Sequence[int] = (512, 1024, 2048), channels: int = 16
    ) -> None:
        super().__init__()
        if not periods and not windows:
            raise ValueError("an AudioDiscriminator needs at least one period or one STFT window")
        self.periods = nn.ModuleList(PeriodDiscriminator(int(p), channels) for p in periods)
        self.resolutions = nn.ModuleList(STFTDiscriminator(int(w), channels) for w in windows)

    def forward(self, x: torch.Tensor) -> list[Judgement]:
        """One ``(logits, features)`` per sub-discriminator: the periods first, then the STFT resolutions."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"the audio discriminator takes mono waveforms (B, 1, T), got shape {tuple(x.shape)}")
        return [d(x) for d in self.periods] + [d(x) for d in self.resolutions]
