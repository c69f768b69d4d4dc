"""A one-minute FSQ-vs-VQ comparison on real photo patches: usage and reconstruction error by codebook size.

The data is the photograph that ships with matplotlib (``grace_hopper.jpg``, 600x512 RGB): 4x4 RGB patches
(48 values in [0, 1]), the top 75% of rows for training and the bottom 25% held out. For each codebook size, a
small MLP autoencoder is trained with the same budget, three times, with only the quantizer changed:

* FSQ with the paper's levels for that size (``levels_for_codebook_size``); the encoder outputs ``len(levels)``
  channels and the decoder takes them, as in the paper;
* VQ, MaskGIT recipe (commitment 0.25, codebook loss, entropy penalty 0.1), codes of width 8;
* VQ without the entropy penalty.

Reported on the held-out patches: codes used, usage fraction, perplexity and PSNR (dB, pixels in [0, 1]), plus
each model's parameter count. This is the paper's Fig. 3 in miniature; ``fsq study`` is the full version.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from fsq.quantizers import FSQ, VQ, CodebookUsage, levels_for_codebook_size

PATCH = 4


def photo_patches(patch: int = PATCH, stride: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) patches of matplotlib's sample photo, float32 (N, patch*patch*3) in [0, 1]."""
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = np.asarray(Image.open(handle).convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(image).permute(2, 0, 1)  # (3, H, W)
    split = int(tensor.shape[1] * 0.75) // patch * patch
    out = []
    for part, step in ((tensor[:, :split], stride), (tensor[:, split:], patch)):
        tiles = part.unfold(1, patch, step).unfold(2, patch, step)  # (3, nh, nw, p, p)
        out.append(tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3 * patch * patch).contiguous())
    return out[0], out[1]


class PatchAutoencoder(nn.Module):
    """MLP encoder -> quantizer -> MLP decoder over flattened patches."""

    def __init__(self, quantizer: nn.Module, latent_dim: int, in_dim: int = 3 * PATCH * PATCH, width: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, latent_dim))
        self.quantizer = quantizer
        self.decoder = nn.Sequential(nn.Linear(latent_dim, width), nn.GELU(), nn.Linear(width, in_dim))

    def forward(self, x: torch.Tensor):
        out = self.quantizer(self.encoder(x))
        return self.decoder(out.quantized), out


@dataclass
class PatchResult:
    quantizer: str
    codebook_size: int
    levels: str
    codes_used: int
    usage_fraction: float
    perplexity: float
    psnr_db: float
    parameters: int
    seconds: float


def _build(kind: str, size: int) -> tuple[nn.Module, int, str]:
    if kind == "FSQ":
        levels = levels_for_codebook_size(size)
        return FSQ(levels), len(levels), str(levels)
    recipe = "maskgit" if kind == "VQ" else "maskgit_noentropy"
    return VQ(size, 8, recipe=recipe), 8, "-"


def train_and_evaluate(
    kind: str, size: int, train: torch.Tensor, held_out: torch.Tensor, *, steps: int, batch: int, seed: int
) -> PatchResult:
    """Train one patch autoencoder with quantizer ``kind`` ("FSQ", "VQ", "VQ-noent") and evaluate it."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    quantizer, latent_dim, levels = _build(kind, size)
    model = PatchAutoencoder(quantizer, latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = train[torch.randint(0, train.shape[0], (batch,), generator=generator)]
        reconstruction, out = model(x)
        loss = (reconstruction - x).square().mean() + out.aux_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    usage = CodebookUsage(size if kind != "FSQ" else quantizer.codebook_size)
    with torch.no_grad():
        reconstruction, out = model(held_out)
        usage.update(out.indices)
    mse = float((reconstruction.clamp(0, 1) - held_out).square().mean())
    summary = usage.summary()
    return PatchResult(
        quantizer=kind,
        codebook_size=usage.codebook_size,
        levels=levels,
        codes_used=summary.codes_used,
        usage_fraction=summary.usage_fraction,
        perplexity=summary.perplexity,
        psnr_db=10 * math.log10(1.0 / mse),
        parameters=sum(p.numel() for p in model.parameters()),
        seconds=time.perf_counter() - start,
    )


def run(
    sizes: tuple[int, ...] = (2**6, 2**8, 2**10, 2**12, 2**14),
    kinds: tuple[str, ...] = ("FSQ", "VQ", "VQ-noent"),
    *,
    steps: int = 300,
    batch: int = 256,
    seed: int = 0,
) -> list[PatchResult]:
    """Run the comparison; returns one :class:`PatchResult` per (size, quantizer)."""
    train, held_out = photo_patches()
    return [
        train_and_evaluate(kind, size, train, held_out, steps=steps, batch=batch, seed=seed)
        for size in sizes
        for kind in kinds
    ]


def format_table(results: list[PatchResult], held_out_tokens: int | None = None) -> str:
    """A plain-text table of the results."""
    header = f"{'quantizer':<9} {'K':>6} {'levels':<16} {'used':>6} {'usage':>7} {'perplexity':>10} {'PSNR dB':>8}"
    header += f" {'params':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.quantizer:<9} {r.codebook_size:>6} {r.levels:<16} {r.codes_used:>6} {r.usage_fraction:>7.1%} "
            f"{r.perplexity:>10.1f} {r.psnr_db:>8.2f} {r.parameters:>7}"
        )
    return "\n".join(lines)


def results_as_dicts(results: list[PatchResult]) -> list[dict]:
    return [asdict(r) for r in results]
