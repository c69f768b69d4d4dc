"""FSQ on a video tensor (B, C, T, H, W): quantize along ``channel_axis=1`` and get one token per (t, h, w).

A Conv3d encoder turns a clip (B, 3, 8, 32, 32) into latents (B, 5, 4, 8, 8); ``FSQ([8, 8, 8, 5, 5],
channel_axis=1)`` quantizes them in place (no transpose to channels-last needed) and returns indices of shape
(B, 4, 8, 8): a 3-D token grid for a video transformer. ``indices_to_quantized`` maps tokens back to the latents,
bit for bit, with the channel axis where it was. Nothing is trained: the point is the layout.

    python examples/video_tokens.py
"""

from __future__ import annotations

import torch
from torch import nn

from fsq import FSQ


def main() -> dict[str, object]:
    torch.manual_seed(0)
    levels = [8, 8, 8, 5, 5]  # 12800 codes per token
    encoder = nn.Sequential(
        nn.Conv3d(3, 32, kernel_size=(3, 4, 4), stride=(2, 4, 4), padding=(1, 0, 0)),
        nn.GELU(),
        nn.Conv3d(32, len(levels), kernel_size=1),
    )
    quantizer = FSQ(levels, channel_axis=1)
    decoder = nn.Sequential(
        nn.Conv3d(len(levels), 32, kernel_size=1),
        nn.GELU(),
        nn.ConvTranspose3d(32, 3, kernel_size=(4, 4, 4), stride=(2, 4, 4), padding=(1, 0, 0)),
    )
    video = torch.rand(2, 3, 8, 32, 32)  # (B, C, T, H, W)
    latents = encoder(video)
    out = quantizer(latents)
    assert out.quantized.shape == latents.shape and out.indices.shape == (2, 4, 8, 8)
    again = quantizer.indices_to_quantized(out.indices)
    assert torch.equal(again, out.quantized)  # tokens -> latents, exactly
    reconstruction = decoder(again)
    assert reconstruction.shape == video.shape
    out.quantized.sum().backward()  # straight-through: gradients reach the encoder
    assert encoder[0].weight.grad is not None
    print(f"video {tuple(video.shape)} -> latents {tuple(latents.shape)} -> tokens {tuple(out.indices.shape)}")
    print(f"codebook: {quantizer.codebook_size} codes, tokens in [{out.indices.min()}, {out.indices.max()}]")
    print(f"decoded back to {tuple(reconstruction.shape)}; indices_to_quantized matches forward exactly")
    return {"tokens": tuple(out.indices.shape), "codebook_size": quantizer.codebook_size}


if __name__ == "__main__":
    main()
