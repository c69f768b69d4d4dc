"""Binary spherical quantization (BSQ; Zhao, Xiong, Krähenbühl, "Image and Video Tokenization with Binary
Spherical Quantization", arXiv 2406.07548).

The input is projected onto the unit sphere, ``u = z / ||z||`` (over the ``d = dim`` channels), then each channel
is quantized to one bit: ``q_i = 1/sqrt(d)`` where ``u_i > 0`` and ``-1/sqrt(d)`` otherwise, so every code lies on
the sphere too. Gradients pass straight through the sign, ``quantized = u + sg(q - u)``, and through the
normalisation. Indices, the ``2^d`` implicit codes and the loss are :class:`fsq.quantizers.lfq.LFQ`'s with ``u`` in
place of ``z`` and code magnitude ``c = 1/sqrt(d)``: ``p_i = sigmoid(4 u_i / (sqrt(d) temperature))`` (the paper's
``softmax(tau c.u)`` with ``tau = 2 / temperature``), the exact per-sample entropy and the factorised codebook
entropy ``sum_i H(mean p_i)``, so 2^18 and larger codebooks never build an ``N x 2^d`` matrix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fsq.quantizers.lfq import LFQ

NORM_EPS = 1e-12  # F.normalize's: an all-zero vector stays zero (and quantizes to all -1/sqrt(d))


class BSQ(LFQ):
    """Binary spherical quantizer over ``dim`` channels (codebook ``2^dim``); arguments as :class:`LFQ`.

    ``temperature`` defaults to 0.1 here: ``u``'s channels are about ``1/sqrt(d)`` in size, so the bit logits
    ``4 u_i / (sqrt(d) temperature)`` are about ``4 / (d temperature)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        entropy_weight: float = 0.1,
        diversity_weight: float = 1.0,
        commitment_weight: float = 0.25,
        temperature: float = 0.1,
        channel_axis: int = -1,
    ) -> None:
        super().__init__(
            dim,
            entropy_weight=entropy_weight,
            diversity_weight=diversity_weight,
            commitment_weight=commitment_weight,
            temperature=temperature,
            channel_axis=channel_axis,
        )

    @property
    def code_scale(self) -> float:
        """The magnitude ``c`` of every code channel: ``1 / sqrt(dim)`` (codes have unit norm)."""
        return 1.0 / math.sqrt(self.dim)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """``z / max(||z||, 1e-12)`` over the last axis (the channels)."""
        return F.normalize(z, dim=-1, eps=NORM_EPS)
