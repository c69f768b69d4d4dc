"""The tokenizer stage's audio loss terms, built from the ``loss`` section: waveform L1, multi-resolution STFT
(optionally phase-aware), multi-scale mel, and the audio GAN (multi-period + multi-resolution STFT discriminators,
least squares, feature matching).

The tokenizer's signals are in ``[0, 1]`` (silence 0.5); every term here sees the waveform in ``[-1, 1]``. The
GAN's discriminator is the phase's :class:`~fsq.stages.base.Critic`, so the training loop steps, checkpoints and
(under torchrun) synchronises it as it does the image discriminator.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fsq.config import ConfigError, TokenizerExperiment
from fsq.losses.adversarial import (
    discriminator_loss_least_squares,
    feature_matching_loss,
    generator_loss_least_squares,
)
from fsq.losses.spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss
from fsq.models.audio_discriminator import AudioDiscriminator
from fsq.stages.base import StepOutput


def waveform(x: torch.Tensor) -> torch.Tensor:
    """A ``[0, 1]`` signal as a ``[-1, 1]`` waveform."""
    return x * 2 - 1


class AudioLosses(nn.Module):
    """The ``loss`` section's audio reconstruction terms (those of weight > 0).

    ``sample_rate``: the data's rate (Hz), needed by the mel term only.
    """

    def __init__(self, cfg: TokenizerExperiment, sample_rate: float | None) -> None:
        super().__init__()
        lw = cfg.loss
        self.l1_weight, self.stft_weight, self.mel_weight = lw.l1_weight, lw.stft_weight, lw.mel_weight
        self.stft = None
        if lw.stft_weight > 0:
            self.stft = MultiResolutionSTFTLoss(lw.stft_windows, complex_weight=lw.complex_stft_weight)
        self.mel = None
        if lw.mel_weight > 0:
            if sample_rate is None:
                raise ConfigError(
                    f"loss.mel_weight={lw.mel_weight} places mel bands by the sample rate, which data.source="
                    f"{cfg.data.source!r} does not give: set data.sample_rate"
                )
            self.mel = MultiScaleMelLoss(sample_rate, lw.mel_windows)

    @property
    def active(self) -> bool:
        return self.l1_weight > 0 or self.stft is not None or self.mel is not None

    def forward(self, reconstruction: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """The weighted sum of the terms and each unweighted term (detached) by name."""
        fake, real = waveform(reconstruction), waveform(x)
        total = torch.zeros((), device=x.device)
        values: dict[str, Any] = {}
        if self.l1_weight > 0:
            l1 = (fake - real).abs().mean()
            total, values["l1_loss"] = total + self.l1_weight * l1, l1.detach()
        if self.stft is not None:
            stft = self.stft(fake, real)
            total, values["stft_loss"] = total + self.stft_weight * stft, stft.detach()
        if self.mel is not None:
            mel = self.mel(fake, real)
            total, values["mel_loss"] = total + self.mel_weight * mel, mel.detach()
        return total, values


def audio_discriminator(cfg: TokenizerExperiment) -> AudioDiscriminator:
    """The audio discriminator the ``loss`` section describes."""
    lw = cfg.loss
    return AudioDiscriminator(lw.discriminator_periods, lw.discriminator_windows, lw.discriminator_channels)


def generator_terms(
    discriminator: nn.Module, reconstruction: torch.Tensor, x: torch.Tensor, cfg: TokenizerExperiment
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The generator's adversarial (least squares) and feature-matching terms, weighted, and each unweighted."""
    fake = discriminator(waveform(reconstruction))
    with torch.no_grad():
        real = discriminator(waveform(x))
    adversarial = generator_loss_least_squares(fake)
    lw = cfg.loss
    total = lw.adversarial_weight * adversarial
    values: dict[str, Any] = {"g_adv_loss": adversarial.detach()}
    if lw.feature_matching_weight > 0:
        matching = feature_matching_loss(real, fake)
        total = total + lw.feature_matching_weight * matching
        values["feature_matching_loss"] = matching.detach()
    return total, values


def discriminator_step(network: nn.Module, passed: dict[str, torch.Tensor], step: int) -> StepOutput:
    """The audio discriminator's step on one micro-batch: least squares on the reals and the detached fakes."""
    d_loss = discriminator_loss_least_squares(network(waveform(passed["real"])), network(waveform(passed["fake"])))
    return StepOutput(d_loss, {"d_loss": d_loss.detach()})
