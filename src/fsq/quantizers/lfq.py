"""Lookup-free quantization (LFQ; Yu et al., "Language Model Beats Diffusion", MAGVIT-v2, arXiv 2310.05737).

Each of ``d = dim`` channels is quantized to one bit: ``q_i = c`` where ``z_i > 0`` and ``-c`` otherwise (``c = 1``
for LFQ; a zero input takes ``-c``). The codebook is the implicit product ``{-c, c}^d`` of ``2^d`` codes, never
stored; a code's index is ``sum_i 2^i [q_i > 0]`` (channel 0 the least significant bit, as FSQ's mixed radix),
built with integer arithmetic. Gradients pass straight through: ``quantized = z + sg(q - z)``.

The auxiliary loss (computed in float32) is

    ``aux_loss = entropy_weight * (sample_entropy - diversity_weight * codebook_entropy)
    + commitment_weight * mean((z - sg(q))^2)``

with ``p(code | z) = softmax over the 2^d codes of -||z - code||^2 / temperature``. Because the codebook is a
product, ``p`` factorises over channels: channel ``i`` takes ``+c`` with probability ``p_i = sigmoid(4 c z_i /
temperature)``. Hence

    ``sample_entropy = mean over tokens of sum_i H(p_i)`` (exactly the entropy of ``p(code | z)``, in nats), and
    ``codebook_entropy = sum_i H(mean over tokens of p_i)``,

``H(p) = -p log p - (1 - p) log(1 - p)`` (each ``log`` of an argument clamped at ``1e-5``). The second term is the
factorised estimate of the entropy of the batch-averaged code distribution that BSQ-ViT uses (Zhao et al., arXiv
2406.07548): the sum of the per-channel marginal entropies, an upper bound of the exact entropy, equal to it when
the bits are independent. Computing it never builds an ``N x 2^d`` matrix, so 2^18 and larger codebooks cost
``O(N d)``. Minimising ``aux_loss`` makes each token's bits confident and the batch use every bit value evenly.
Under DDP each rank's codebook entropy is that of its own batch (not all-reduced).

:class:`fsq.quantizers.bsq.BSQ` is the same quantizer on the unit sphere.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fsq.quantizers.base import QuantizerOutput

MAX_BITS = 62  # indices are int64: 2^62 codes at most (2^63 - 1 is the largest index)
LOG_EPS = 1e-5  # arguments of log are clamped here (MaskGIT's and vector-quantize-pytorch's entropy eps)


class BinaryLosses(NamedTuple):
    """The unweighted loss terms of one forward (float32 scalars, detached).

    ``commitment = mean((z - sg(q))^2)``, ``sample_entropy`` and ``codebook_entropy`` as in the module docstring.
    """

    commitment: torch.Tensor
    sample_entropy: torch.Tensor
    codebook_entropy: torch.Tensor


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """``-p log p - (1 - p) log(1 - p)`` elementwise, in nats (``log`` arguments clamped at ``1e-5``)."""
    return -(p * torch.log(p.clamp(min=LOG_EPS)) + (1 - p) * torch.log((1 - p).clamp(min=LOG_EPS)))


def entropy_terms(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sample entropy, codebook entropy) of per-channel bit logits ``logits`` (N, d): see the module docstring.

    ``p_i = sigmoid(logits)``; ``O(N d)`` memory and time, whatever ``2^d``.
    """
    p = torch.sigmoid(logits)
    sample = binary_entropy(p).sum(-1).mean()
    codebook = binary_entropy(p.mean(0)).sum()
    return sample, codebook


class LFQ(nn.Module):
    """Lookup-free quantizer over ``dim`` channels (codebook ``2^dim``).

    Args:
        dim: channels (bits) per token, 1 .. 62.
        entropy_weight: weight of the entropy term (0 disables it).
        diversity_weight: weight of the codebook entropy inside the entropy term (MAGVIT-v2's gamma).
        commitment_weight: weight of ``mean((z - sg(q))^2)``.
        temperature: of ``p(code | z)`` (see the module docstring), > 0.
        channel_axis: the axis holding the channels (default -1; 1 for ``(B, C, ...)``). Never guessed.

    ``forward(z)`` returns :class:`QuantizerOutput`: ``quantized`` (``z``'s shape and dtype), ``indices`` (int64,
    ``z``'s shape without the channel axis) and ``aux_loss`` (float32 scalar). :attr:`last_losses` holds the
    unweighted terms of the last forward. Quantization runs in float32, also under autocast.
    """

    _bits: torch.Tensor  # 2^i per channel, registered in __init__

    def __init__(
        self,
        dim: int,
        *,
        entropy_weight: float = 0.1,
        diversity_weight: float = 1.0,
        commitment_weight: float = 0.25,
        temperature: float = 0.01,
        channel_axis: int = -1,
    ) -> None:
        super().__init__()
        if isinstance(dim, bool) or not float(dim).is_integer() or not 1 <= dim <= MAX_BITS:
            raise ValueError(f"dim must be an integer in [1, {MAX_BITS}] (2^dim codes, int64 indices), got {dim!r}")
        for name, value in (
            ("entropy_weight", entropy_weight),
            ("diversity_weight", diversity_weight),
            ("commitment_weight", commitment_weight),
        ):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.dim = self.code_dim = int(dim)
        self.codebook_size: int = 2**self.dim  # a Python int, exact
        self.entropy_weight = float(entropy_weight)
        self.diversity_weight = float(diversity_weight)
        self.commitment_weight = float(commitment_weight)
        self.temperature = float(temperature)
        self.channel_axis = int(channel_axis)
        self.register_buffer("_bits", 2 ** torch.arange(self.dim, dtype=torch.int64), persistent=False)
        zero = torch.zeros(())
        self.last_losses = BinaryLosses(zero, zero, zero)

    @property
    def code_scale(self) -> float:
        """The magnitude ``c`` of every code channel: 1 (LFQ)."""
        return 1.0

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size=2**{self.dim}, entropy_weight={self.entropy_weight}, "
            f"diversity_weight={self.diversity_weight}, commitment_weight={self.commitment_weight}, "
            f"temperature={self.temperature}, channel_axis={self.channel_axis}"
        )

    # ---------------------------------------------------------------------------------------------- layout
    def _axis(self, x: torch.Tensor, what: str) -> int:
        axis = self.channel_axis if self.channel_axis >= 0 else x.ndim + self.channel_axis
        if not 0 <= axis < x.ndim:
            raise ValueError(f"channel_axis={self.channel_axis} is out of range for {what} of shape {tuple(x.shape)}")
        if x.shape[axis] != self.dim:
            raise ValueError(
                f"{what} has {x.shape[axis]} channels on axis {self.channel_axis} (shape {tuple(x.shape)}), "
                f"expected dim={self.dim}"
            )
        return axis

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """What is quantized, channels last: ``z`` itself (BSQ: ``z / ||z||``)."""
        return z

    # --------------------------------------------------------------------------------------------- forward
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z``; see the class docstring for shapes."""
        if not z.is_floating_point():
            raise TypeError(f"{type(self).__name__} input must be a floating-point tensor, got {z.dtype}")
        axis = self._axis(z, f"{type(self).__name__} input")
        with torch.autocast(device_type=z.device.type, enabled=False):
            moved = z.float().movedim(axis, -1)
            u = self.normalize(moved)
            positive = u > 0
            q = torch.where(positive, self.code_scale, -self.code_scale)
            quantized = u + (q - u).detach()
            indices = (positive.long() * self._bits).sum(-1)
            flat = u.reshape(-1, self.dim)
            zero = torch.zeros((), device=z.device)
            sample = codebook = commitment = zero
            if flat.shape[0] > 0:
                if self.entropy_weight > 0:
                    sample, codebook = entropy_terms(4 * self.code_scale * flat / self.temperature)
                if self.commitment_weight > 0:
                    commitment = F.mse_loss(u, q)
            entropy = sample - self.diversity_weight * codebook
            aux_loss = self.entropy_weight * entropy + self.commitment_weight * commitment
            self.last_losses = BinaryLosses(commitment.detach(), sample.detach(), codebook.detach())
        quantized = quantized.movedim(-1, axis).to(z.dtype)
        return QuantizerOutput(quantized, indices, aux_loss.float())

    # ------------------------------------------------------------------------------------ codes <-> indices
    def _check_indices(self, indices: torch.Tensor) -> None:
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and not torch.compiler.is_compiling():
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= self.codebook_size:
                raise ValueError(
                    f"indices out of range: found values in [{lo}, {hi}], valid range is "
                    f"[0, {self.codebook_size - 1}] (codebook_size = 2**{self.dim})"
                )

    def indices_to_digits(self, indices: torch.Tensor) -> torch.Tensor:
        """The bits of ``indices`` (int64 in ``{0, 1}``, shape ``indices.shape + (dim,)``; 1 means ``+c``)."""
        self._check_indices(indices)
        return torch.bitwise_and(indices.long().unsqueeze(-1), self._bits).ne(0).long()

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (float32, ``dim`` channels on ``channel_axis``) of ``indices``: ``+c`` for a set bit, else ``-c``."""
        bits = self.indices_to_digits(indices)
        codes = (2 * bits - 1).float() * self.code_scale
        axis = self.channel_axis if self.channel_axis >= 0 else codes.ndim + self.channel_axis
        return codes.movedim(-1, axis)

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returned as ``quantized`` for these indices (no projection: the codes), float32."""
        return self.indices_to_codes(indices)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Indices of codes with ``dim`` channels on ``channel_axis`` (a channel's sign is its bit)."""
        moved = codes.movedim(self._axis(codes, "codes"), -1)
        return ((moved > 0).long() * self._bits).sum(-1)
