"""FSQ in a 1-D autoencoder: waveforms (B, 1, T) -> conv encoder -> FSQ on (B, C, T/8) -> conv decoder.

The signal is synthetic audio (a few random sines and a decaying envelope per clip), so the script needs no data.
FSQ sits on the channel axis of a channels-first sequence: ``FSQ(levels, channel_axis=1)``; its indices are
(B, T/8), one token per 8 samples (here 8*5*5*5 = 1000 codes per token). FSQ has no codebook and no auxiliary
loss: the training loss is the reconstruction alone.

    python examples/audio_autoencoder.py --steps 300  # about 10 s on 2 CPU cores
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from fsq import FSQ


def synthetic_audio(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, 1, length) clips: three sines of random frequency and phase under a decaying envelope, in [-1, 1]."""
    t = torch.arange(length) / length
    freq = torch.randint(2, 40, (batch, 3, 1), generator=generator).float()
    phase = torch.rand(batch, 3, 1, generator=generator) * 2 * math.pi
    amp = torch.rand(batch, 3, 1, generator=generator)
    decay = torch.exp(-t * torch.rand(batch, 1, 1, generator=generator) * 4)
    wave = (amp * torch.sin(2 * math.pi * freq * t + phase)).sum(1, keepdim=True) * decay
    return wave / wave.abs().amax(-1, keepdim=True).clamp_min(1e-6)


class AudioAutoencoder(nn.Module):
    """Three stride-2 conv1d layers down, FSQ, three transposed convs up."""

    def __init__(self, levels: list[int], width: int = 32) -> None:
        super().__init__()
        c = len(levels)
        self.encoder = nn.Sequential(
            nn.Conv1d(1, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, c, 1),
        )  # fmt: skip
        self.quantizer = FSQ(levels, channel_axis=1)  # channels-first sequences: (B, C, T)
        self.decoder = nn.Sequential(
            nn.Conv1d(c, width, 1), nn.GELU(),
            nn.ConvTranspose1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose1d(width, 1, 4, stride=2, padding=1),
        )  # fmt: skip

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.quantizer(self.encoder(wave))
        return self.decoder(out.quantized), out.indices


def snr_db(clean: torch.Tensor, estimate: torch.Tensor) -> float:
    """Signal-to-noise ratio of a reconstruction in dB (over the whole batch)."""
    return float(10 * torch.log10(clean.pow(2).sum() / (clean - estimate).pow(2).sum()))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--length", type=int, default=512, help="samples per clip (a multiple of 8)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = AudioAutoencoder([8, 5, 5, 5])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    test = synthetic_audio(16, args.length, torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = snr_db(test, model(test)[0])
    for _ in range(args.steps):
        wave = synthetic_audio(16, args.length, gen)
        recon, _ = model(wave)
        loss = (recon - wave).pow(2).mean()  # FSQ adds no codebook or commitment loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        recon, indices = model(test)
    after = snr_db(test, recon)
    print(f"tokens per clip: {tuple(indices.shape[1:])} of {model.quantizer.codebook_size} codes")
    print(f"test SNR: {before:.1f} dB untrained -> {after:.1f} dB after {args.steps} steps")
    print(f"codes used on the test clips: {indices.unique().numel()}")
    return {"snr_before": before, "snr_after": after}


if __name__ == "__main__":
    main()
