"""Putting FSQ into your own VQGAN: swap the VQ layer for FSQ and delete the codebook and commitment losses.

A VQGAN is an encoder, a vector quantizer, a decoder, a reconstruction (+ perceptual) loss, a patch discriminator
and the VQ terms (codebook loss, commitment loss, often an entropy penalty or EMA updates). With FSQ:

1. the encoder's last layer outputs ``len(levels)`` channels (instead of the code width), and the decoder's
   first layer takes them; no projection is needed (FSQ paper, sec. 3.3);
2. ``quantized, indices, aux_loss = FSQ(levels, channel_axis=1)(z)``; ``aux_loss`` is always zero, so the VQ terms
   simply go away; the straight-through gradient is built in;
3. the rest (adversarial loss, discriminator, optimizers) is unchanged.

This script trains such a model for a few steps on synthetic 32 x 32 shapes (no data needed), with a hinge-loss
patch discriminator that switches on after ``--disc-start`` steps, and prints the losses and the tokens.

    python examples/vqgan_with_fsq.py --steps 60
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from fsq import FSQ


def shapes(batch: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, 3, 32, 32) images in [0, 1]: one coloured axis-aligned rectangle on a dark background."""
    images = torch.full((batch, 3, 32, 32), 0.1)
    for i in range(batch):
        x0, y0 = torch.randint(0, 20, (2,), generator=generator).tolist()
        w, h = torch.randint(6, 12, (2,), generator=generator).tolist()
        images[i, :, y0 : y0 + h, x0 : x0 + w] = torch.rand(3, 1, 1, generator=generator)
    return images


def block(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


class FSQGAN(nn.Module):
    """A small VQGAN generator whose quantizer is FSQ: 32 x 32 images -> 8 x 8 tokens of 8*8*8*6*5 codes."""

    def __init__(self, levels: list[int], width: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            block(3, width), nn.AvgPool2d(2), block(width, width), nn.AvgPool2d(2), block(width, width),
            nn.Conv2d(width, len(levels), 1),  # 1. len(levels) channels, no projection
        )  # fmt: skip
        self.quantizer = FSQ(levels, channel_axis=1)  # 2. where VectorQuantizer(num_codes, dim) used to be
        self.decoder = nn.Sequential(
            nn.Conv2d(len(levels), width, 3, padding=1), block(width, width), nn.Upsample(scale_factor=2),
            block(width, width), nn.Upsample(scale_factor=2), block(width, width), nn.Conv2d(width, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, images: torch.Tensor):
        quantized, indices, aux_loss = self.quantizer(self.encoder(images * 2 - 1))
        return (self.decoder(quantized) + 1) / 2, indices, aux_loss


def patch_discriminator(width: int = 64) -> nn.Module:
    """PatchGAN: a logit per 4 x 4 patch."""
    return nn.Sequential(
        nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 1, 3, padding=1),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--disc-start", type=int, default=20, help="step at which the adversarial loss starts")
    parser.add_argument("--disc-weight", type=float, default=0.1)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model, disc = FSQGAN([8, 8, 8, 6, 5]), patch_discriminator()
    opt_g = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.9))
    first = last = 0.0
    for step in range(args.steps):
        real = shapes(16, gen)
        fake, indices, aux_loss = model(real)
        recon = F.l1_loss(fake, real)
        loss = recon + aux_loss  # 2. aux_loss == 0: no codebook / commitment / entropy terms
        if step >= args.disc_start:  # 3. the GAN part is the VQGAN's, unchanged (hinge loss)
            loss = loss - args.disc_weight * disc(fake * 2 - 1).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if step >= args.disc_start:
            d_loss = F.relu(1 - disc(real * 2 - 1)).mean() + F.relu(1 + disc(fake.detach() * 2 - 1)).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
        last = float(recon.detach())
        first = last if step == 0 else first
    assert float(aux_loss) == 0.0
    print(f"tokens per image: {tuple(indices.shape[1:])}, codebook {model.quantizer.codebook_size} (implicit)")
    print(f"L1 reconstruction: {first:.3f} at step 0 -> {last:.3f} at step {args.steps - 1}")
    return {"l1_first": first, "l1_last": last}


if __name__ == "__main__":
    main()
