"""ResidualFSQ: stages of FSQ, each quantizing what the previous ones left over, for finer codes from small levels.

Each stage adds ``len(levels)`` digits per vector; the error falls geometrically with the number of stages, and a
prefix of the stages' indices decodes to a coarser version of the same vector (``indices_to_quantized`` takes any
number of stages from 1 to ``num_stages``). Here: random 64-wide features projected to 4 code channels, 4 stages
of levels [8, 5, 5, 5] (1000 codes per stage).

    python examples/residual_fsq.py
"""

from __future__ import annotations

import torch

from fsq import FSQ, ResidualFSQ


def main() -> dict[str, list[float]]:
    torch.manual_seed(0)
    levels = [8, 5, 5, 5]
    x = torch.randn(4096, 4) * 0.5  # already 4 channels: no projection, so the error is the quantizer's alone
    rfsq = ResidualFSQ(levels, num_stages=4)
    out = rfsq(x)
    assert out.indices.shape == (4096, 4)  # one index per stage
    bounded = rfsq.stage0.continuous_codes(x)  # what the stages approximate (the bounded latent)
    errors = []
    for stages in range(1, 5):
        approx = rfsq.indices_to_quantized(out.indices[..., :stages])
        errors.append(float((approx - bounded).pow(2).mean()))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    single = FSQ(levels)(x).quantized
    assert torch.allclose(rfsq.indices_to_quantized(out.indices[..., :1]), single)  # stage 1 is plain FSQ
    projected = ResidualFSQ(levels, num_stages=2, dim=64, channel_axis=1)  # (B, 64, H, W) feature maps
    features = torch.randn(2, 64, 8, 8)
    q = projected(features)
    assert q.quantized.shape == features.shape and q.indices.shape == (2, 8, 8, 2)
    for stages, error in enumerate(errors, 1):
        print(f"{stages} stage(s): {stages * 10:.0f} bits per vector, MSE {error:.2e}")
    print(f"with dim=64 and channel_axis=1: {tuple(features.shape)} -> indices {tuple(q.indices.shape)}")
    return {"mse": errors}


if __name__ == "__main__":
    main()
