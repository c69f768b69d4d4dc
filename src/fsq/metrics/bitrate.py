"""Bitrate of a tokenizer or codec: bits per second from the token rate and the codebook sizes.

A token position that holds one index from each of several codebooks (residual stages, groups) carries
``sum_k log2(K_k)`` bits; a residual quantizer of depth ``d`` over codebooks of ``K`` codes carries ``d log2 K``.
This is the rate of fixed-length codes (no entropy coding), the convention of EnCodec, DAC and the FSQ codecs
(NeMo's low-frame-rate codec: 8 codebooks of 8 * 7 * 6 * 6 = 2016 codes at 21.5 frames/s is 1.89 kbps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def bits_per_token(codebook_sizes: Sequence[int], depth: int | None = None) -> float:
    """Bits of one token position: ``sum log2(K)`` over ``codebook_sizes`` (one per codebook, in order), or over
    the first ``depth`` of them (a residual quantizer decoded at a smaller depth)."""
    sizes = list(codebook_sizes)
    if not sizes or any(int(k) != k or k < 2 for k in sizes):
        raise ValueError(f"codebook sizes must be integers >= 2, got {sizes}")
    if depth is not None:
        if not 1 <= depth <= len(sizes):
            raise ValueError(f"depth must be in [1, {len(sizes)}] for {len(sizes)} codebooks, got {depth}")
        sizes = sizes[:depth]
    return sum(math.log2(int(k)) for k in sizes)  # log2 of an int is exact for powers of two and beyond 2**53


def tokens_per_second(sample_rate: float, samples_per_token: float) -> float:
    """Token positions per second of a codec with one position per ``samples_per_token`` samples (its hop)."""
    if sample_rate <= 0 or samples_per_token <= 0:
        raise ValueError(f"sample_rate and samples_per_token must be positive, got {sample_rate}, {samples_per_token}")
    return sample_rate / samples_per_token


def bits_per_second(token_rate: float, codebook_sizes: Sequence[int], depth: int | None = None) -> float:
    """Bitrate in bits/s of ``token_rate`` token positions per second, each holding one index of every codebook
    in ``codebook_sizes`` (or the first ``depth``)."""
    if token_rate <= 0:
        raise ValueError(f"token_rate must be positive, got {token_rate}")
    return token_rate * bits_per_token(codebook_sizes, depth)


def clip_bits_per_second(tokens_per_clip: int, codebook_size: int, clip_samples: int, sample_rate: float) -> float:
    """Bitrate of a tokenizer from one clip: ``tokens_per_clip`` indices (every position and stage counted) of
    ``codebook_size`` codes each for ``clip_samples`` samples at ``sample_rate``."""
    if tokens_per_clip < 1 or clip_samples < 1:
        raise ValueError(f"tokens_per_clip and clip_samples must be positive, got {tokens_per_clip}, {clip_samples}")
    return bits_per_second(tokens_per_clip * sample_rate / clip_samples, [codebook_size])
