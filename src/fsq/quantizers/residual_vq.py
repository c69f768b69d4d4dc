"""Residual vector quantization (RVQ; SoundStream, Zeghidour et al. 2021, algorithm 1): the baseline of audio codecs.

Stage ``i`` is a :class:`~fsq.quantizers.vq.VQ` of its own codebook that quantizes what the previous stages left:
``r_0 = z``, ``e_i = VQ_i(r_i)``, ``r_{i+1} = r_i - e_i``. The output is ``z + sg(sum_i e_i - z)``: one
straight-through estimator for the sum (the encoder's gradient is the decoder's, once; not once per stage), while
each stage's own auxiliary loss (commitment, codebook and entropy terms of its ``recipe``) trains its codebook and
pulls its input ``r_i`` towards it. ``aux_loss`` is the sum over stages.

Quantize dropout as :class:`~fsq.quantizers.residual.ResidualFSQ`: in training each sample keeps, with probability
``quantize_dropout``, only its first ``k`` stages (``k`` uniform in ``1 .. num_stages``). Indices hold every
stage: the input's shape without the channel axis plus a trailing stage axis; ``indices_to_codes`` decodes any
prefix ``indices[..., :k]``.
"""

from __future__ import annotations

import torch
from torch import nn

from fsq.quantizers.base import QuantizerOutput, as_index_tensor, autocast_off, checked_input_axis, resolve_axis
from fsq.quantizers.vq import VQ


class ResidualVQ(nn.Module):
    """``num_stages`` VQ stages of ``codebook_size`` codes of width ``dim`` each.

    Args:
        codebook_size: codes per stage (the token at one position has ``codebook_size ** num_stages`` values).
        dim: channels per vector.
        num_stages: number of stages (>= 1).
        recipe: each stage's VQ recipe (:data:`fsq.quantizers.vq.VQ_RECIPES`; the ``uvim`` recipes standardise and
            l2-normalise their input, which a residual's shrinking scale does not suit; MaskGIT's entropy term
            spreads the later stages' codes over residuals far smaller than the codebook: the default has none).
        channel_axis: the channel axis of inputs and codes (default -1).
        quantize_dropout: in training, the probability that a sample keeps only a random number of stages.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        num_stages: int,
        *,
        recipe: str = "maskgit_noentropy",
        channel_axis: int = -1,
        quantize_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(num_stages, bool) or int(num_stages) != num_stages or num_stages < 1:
            raise ValueError(f"num_stages must be a positive integer, got {num_stages!r}")
        if not 0.0 <= float(quantize_dropout) <= 1.0:
            raise ValueError(f"quantize_dropout must be a probability in [0, 1], got {quantize_dropout!r}")
        self.num_stages, self.quantize_dropout = int(num_stages), float(quantize_dropout)
        self.stages = nn.ModuleList(
            VQ(codebook_size, dim, recipe=recipe, check_finite=i == 0) for i in range(self.num_stages)
        )
        self.codebook_size, self.dim, self.channel_axis = int(codebook_size), int(dim), int(channel_axis)

    def extra_repr(self) -> str:
        return (
            f"num_stages={self.num_stages}, channel_axis={self.channel_axis}, quantize_dropout={self.quantize_dropout}"
        )

    def _axis(self, ndim: int) -> int:
        return resolve_axis(self.channel_axis, ndim)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z``: ``quantized`` like ``z``; ``indices`` int64 (..., num_stages); ``aux_loss`` summed."""
        axis = checked_input_axis(z, "ResidualVQ", self.dim, self.channel_axis)
        with autocast_off(z.device.type):
            x = z.float().movedim(axis, -1)
            depth = self.dropout_depths(x)
            residual, total = x, torch.zeros_like(x)
            aux = torch.zeros((), device=x.device)
            indices = []
            for stage, vq in enumerate(self.stages):
                out = vq(residual)
                codes = out.quantized.detach()  # the codewords e_i (the stage's STE is not used)
                residual = residual - codes
                if depth is not None:
                    codes = codes * (depth > stage).to(codes.dtype)
                total = total + codes
                aux = aux + out.aux_loss
                indices.append(out.indices)
            quantized = x + (total - x).detach()
        quantized = quantized.movedim(-1, axis).to(z.dtype)
        return QuantizerOutput(quantized, torch.stack(indices, dim=-1), aux.float())

    def unquantized(self, z: torch.Tensor) -> torch.Tensor:
        """The latent the stages approximate: ``z`` itself (checked as :meth:`forward` checks it). Decoded, it is
        the ceiling any depth of this quantizer approaches: what a tokenizer loses to its latent, not to its
        codebooks."""
        checked_input_axis(z, "ResidualVQ", self.dim, self.channel_axis)
        return z

    def dropout_depths(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per sample (axis 0) of channels-last ``x`` the number of stages kept, shaped to broadcast (None: all)."""
        if not (self.training and self.quantize_dropout > 0 and self.num_stages > 1 and x.ndim > 1):
            return None
        n = x.shape[0]
        dropped = torch.rand(n, device=x.device) < self.quantize_dropout
        drawn = torch.randint(1, self.num_stages + 1, (n,), device=x.device)
        depth = torch.where(dropped, drawn, torch.full_like(drawn, self.num_stages))
        return depth.view(n, *([1] * (x.ndim - 1)))

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """The sum of the codewords of the first ``k = indices.shape[-1]`` stages, float32, channels on
        ``channel_axis``."""
        stages: list[VQ] = list(self.stages)  # type: ignore[arg-type]  # ModuleList of VQ
        indices = as_index_tensor(indices, "indices", stages[0].get_codebook().device)
        if indices.ndim == 0 or not 1 <= indices.shape[-1] <= self.num_stages:
            raise ValueError(
                f"ResidualVQ indices need a trailing stage axis of size 1..{self.num_stages}, "
                f"got shape {tuple(indices.shape)}"
            )
        total = None
        for stage in range(indices.shape[-1]):
            codes = stages[stage].indices_to_codes(indices[..., stage])  # channels last
            total = codes if total is None else total + codes
        assert total is not None
        return total.movedim(-1, self._axis(total.ndim))

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`indices_to_codes` (no projection)."""
        return self.indices_to_codes(indices)
