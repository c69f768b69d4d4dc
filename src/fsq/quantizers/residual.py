"""Residual FSQ: a stack of FSQ stages, each quantizing what the previous ones left over.

Stage 0 is exactly :class:`fsq.FSQ` (so one stage equals FSQ). Its continuous target is the un-rounded code
``t = FSQ.continuous_codes(z)`` and its error ``r_1 = t - c_0`` lies within half a grid step, ``h_1``:
``1 / (2 (L // 2))`` for the ``paper``/``atanh`` grids and ``1 / (L - 1)`` for ``symmetric``, per channel.

Stage ``i >= 1`` quantizes the residual ``r_i`` on a uniform grid of ``L`` points spanning ``[-h_i, h_i]``:
digit ``k = clamp(round((r_i / h_i + 1) (L - 1) / 2), 0, L - 1)``, code ``h_i (2k / (L - 1) - 1)``. Its own error
is within ``h_{i+1} = h_i / (L - 1)`` (the documented per-stage scale): each stage divides the worst-case error of
every channel by ``L - 1`` (so residual stages need ``L >= 3`` to help).

Every stage refines the same ``len(levels)``-channel code ``t``: depth adds precision, never channels, and the
output converges to ``t`` (:meth:`ResidualFSQ.unquantized`, the ceiling of every depth). At a given number of bits
per stage, more channels of fewer levels can raise that ceiling (the README's speech bitrate curve: ``[3] * 6``
against ``[5] * 4`` at 9.5 and 9.3 bits per stage); whether a model is limited by its codebooks or by its latent's
width shows by decoding ``unquantized`` (``eval.unquantized``).

The output is ``c_0 + sum_i code_i`` with the straight-through gradient of stage 0 (the gradient of ``t``).
Indices have one layout everywhere: the input's shape without the channel axis, plus a trailing stage axis of
size ``num_stages`` (also for channel-first input). ``indices_to_codes`` decodes any leading number of stages
(``indices[..., :k]``), giving the coarser reconstruction of the first ``k`` stages.

Quantize dropout (SoundStream, EnCodec, DAC: one model serving several bitrates): in training, each sample of the
batch (the first axis) is, with probability ``quantize_dropout``, given a depth ``k`` drawn uniformly from
``1 .. num_stages`` and its output is the sum of its first ``k`` stages' codes only, so the decoder learns to decode
every prefix ``indices[..., :k]``. The draw uses the global torch generator (seeded and checkpointed by the
training loop), per process and per micro-batch: under DDP each rank draws for its own rows, so a 2-rank run with
quantize dropout matches one process in distribution, not bit for bit. Indices always hold every stage (their
layout does not change); in evaluation mode nothing is dropped, and a depth is chosen by decoding a prefix of the
indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fsq.quantizers.base import QuantizerOutput, as_index_tensor, autocast_off
from fsq.quantizers.fsq import FSQ, Variant


class ResidualFSQ(nn.Module):
    """Residual FSQ with ``num_stages`` stages of the same ``levels``.

    Args:
        levels: levels per channel (as :class:`fsq.FSQ`).
        num_stages: number of stages (>= 1). The effective codebook has ``codebook_size ** num_stages`` entries.
        dim: input width; projections to/from ``len(levels)`` are added when it differs.
        variant: stage 0's FSQ numerics (``"paper"``, ``"atanh"``, ``"symmetric"``).
        channel_axis: the channel axis of inputs and codes (default -1).
        check_finite: raise on NaN/Inf input (as :class:`fsq.FSQ`: at the call on CPU, deferred on CUDA).
        kernel: stage 0's implementation, ``"auto"``, ``"triton"`` or ``"eager"`` (as :class:`fsq.FSQ`); the
            residual stages are small torch ops.
        quantize_dropout: in training, the probability that a sample keeps only a random number of stages
            (see the module docstring); 0 disables it.
    """

    # buffers registered in __init__ (declared here for the type checker)
    stage_half_widths: torch.Tensor
    _levels_f: torch.Tensor

    def __init__(
        self,
        levels: Sequence[int],
        num_stages: int,
        *,
        dim: int | None = None,
        variant: Variant = "paper",
        channel_axis: int = -1,
        check_finite: bool | str = True,
        projection_bias: bool = True,
        kernel: str = "auto",
        quantize_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if int(num_stages) != num_stages or num_stages < 1:
            raise ValueError(f"num_stages must be a positive integer, got {num_stages!r}")
        if not 0.0 <= float(quantize_dropout) <= 1.0:
            raise ValueError(f"quantize_dropout must be a probability in [0, 1], got {quantize_dropout!r}")
        self.num_stages = int(num_stages)
        self.quantize_dropout = float(quantize_dropout)
        # channels last, no projection
        self.stage0 = FSQ(levels, variant=variant, check_finite=check_finite, kernel=kernel)
        self.levels = self.stage0.levels
        self.code_dim = len(self.levels)
        self.codebook_size = self.stage0.codebook_size  # per stage
        self.dim = self.code_dim if dim is None else int(dim)
        self.channel_axis = int(channel_axis)
        needs_projection = self.dim != self.code_dim
        self.project_in = nn.Linear(self.dim, self.code_dim, bias=projection_bias) if needs_projection else None
        self.project_out = nn.Linear(self.code_dim, self.dim, bias=projection_bias) if needs_projection else None
        levels_f = torch.tensor(self.levels, dtype=torch.float64)
        if variant == "symmetric":
            first = 1.0 / (levels_f - 1)
        else:
            first = 1.0 / (2 * torch.div(levels_f, 2, rounding_mode="floor"))
        halves = [first / (levels_f - 1) ** i for i in range(self.num_stages - 1)]
        half_widths = torch.stack(halves).float() if halves else torch.zeros(0, self.code_dim)
        self.register_buffer("stage_half_widths", half_widths, persistent=False)  # (num_stages - 1, code_dim)
        self.register_buffer("_levels_f", levels_f.float(), persistent=False)

    def extra_repr(self) -> str:
        dropout = f", quantize_dropout={self.quantize_dropout}" if self.quantize_dropout else ""
        return f"num_stages={self.num_stages}, dim={self.dim}, channel_axis={self.channel_axis}{dropout}"

    def _move(self, x: torch.Tensor, width: int, what: str, to_last: bool) -> torch.Tensor:
        axis = self.channel_axis if self.channel_axis >= 0 else x.ndim + self.channel_axis
        if to_last:
            if not 0 <= axis < x.ndim or x.shape[axis] != width:
                raise ValueError(f"{what} of shape {tuple(x.shape)} needs {width} channels on axis {self.channel_axis}")
            return x.movedim(axis, -1)
        return x.movedim(-1, axis)

    def _to_code_space(self, z: torch.Tensor) -> torch.Tensor:
        """A floating-point input checked, channels moved last and projected to the code width."""
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise TypeError(
                f"ResidualFSQ input must be a floating-point tensor, got {getattr(z, 'dtype', type(z).__name__)}"
            )
        z = self._move(z, self.dim, "ResidualFSQ input", to_last=True)
        return self.project_in(z) if self.project_in is not None else z

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z``: ``quantized`` like ``z``; ``indices`` int64 (..., num_stages); ``aux_loss`` zero."""
        z, in_dtype = self._to_code_space(z), z.dtype
        with autocast_off(z.device.type):
            z = z.float()
            first = self.stage0(z)
            codes = first.quantized  # carries the straight-through gradient
            indices = [first.indices]
            with torch.no_grad():
                residual = self.stage0.continuous_codes(z) - first.quantized
                refinement = torch.zeros_like(residual)
                depth = self.dropout_depths(z)
                for stage, half_width in enumerate(self.stage_half_widths, start=1):
                    digits = self._residual_digits(residual, half_width)
                    stage_codes = self._residual_codes(digits, half_width)
                    residual = residual - stage_codes
                    if depth is not None:  # samples whose depth is <= this stage leave its code out
                        stage_codes = stage_codes * (depth > stage).to(stage_codes.dtype)
                    refinement += stage_codes
                    indices.append(self.stage0._digits_to_indices(digits))  # in range by construction
            codes = codes + refinement
            if self.project_out is not None:
                codes = self.project_out(codes.to(self.project_out.weight.dtype))
        quantized = self._move(codes.to(in_dtype), self.dim, "", to_last=False)
        aux_loss = torch.zeros((), device=quantized.device, dtype=torch.float32)
        return QuantizerOutput(quantized, torch.stack(indices, dim=-1), aux_loss)

    def unquantized(self, z: torch.Tensor) -> torch.Tensor:
        """The latent the stages approximate, shaped like ``z``: stage 0's bounded continuous code ``t`` (through the
        projections), the limit of the output as ``num_stages`` grows (each stage divides the error by ``L - 1``).
        Decoded, it is the ceiling any depth of this quantizer can reach: what a tokenizer loses to its latent's
        width, not to rounding."""
        z, in_dtype = self._to_code_space(z), z.dtype
        with autocast_off(z.device.type):
            codes = self.stage0.continuous_codes(z.float())
            if self.project_out is not None:
                codes = self.project_out(codes.to(self.project_out.weight.dtype))
        return self._move(codes.to(in_dtype), self.dim, "", to_last=False)

    def dropout_depths(self, z: torch.Tensor) -> torch.Tensor | None:
        """Per sample of ``z`` (channels last, samples on axis 0) the number of stages it keeps, shaped to broadcast
        over ``z`` (None: every stage, outside training or without quantize dropout)."""
        if not (self.training and self.quantize_dropout > 0 and self.num_stages > 1 and z.ndim > 1):
            return None
        n = z.shape[0]
        dropped = torch.rand(n, device=z.device) < self.quantize_dropout
        drawn = torch.randint(1, self.num_stages + 1, (n,), device=z.device)
        depth = torch.where(dropped, drawn, torch.full_like(drawn, self.num_stages))
        return depth.view(n, *([1] * (z.ndim - 1)))

    def _residual_digits(self, residual: torch.Tensor, half_width: torch.Tensor) -> torch.Tensor:
        steps = self._levels_f - 1
        digits = torch.round((residual / half_width + 1) * steps / 2)
        return torch.minimum(digits.clamp(min=0), steps).to(torch.int64)

    def _residual_codes(self, digits: torch.Tensor, half_width: torch.Tensor) -> torch.Tensor:
        return half_width * (2 * digits.float() / (self._levels_f - 1) - 1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Sum of the codes of the first ``k = indices.shape[-1]`` stages (1 <= k <= num_stages), float32.

        ``indices``: (..., k) int64. Returns codes with ``len(levels)`` channels on ``channel_axis`` (no projection).
        """
        indices = as_index_tensor(indices, "indices", self.stage_half_widths.device)
        if indices.ndim == 0 or not 1 <= indices.shape[-1] <= self.num_stages:
            raise ValueError(
                f"ResidualFSQ indices need a trailing stage axis of size 1..{self.num_stages}, "
                f"got shape {tuple(indices.shape)}"
            )
        codes = self.stage0.indices_to_codes(indices[..., 0])  # channels last, float32
        refinement = torch.zeros_like(codes)  # summed in forward's order so decoding is bit-exact
        for stage in range(1, indices.shape[-1]):
            digits = self.stage0.indices_to_digits(indices[..., stage])
            refinement += self._residual_codes(digits, self.stage_half_widths[stage - 1])
        codes = codes + refinement
        return self._move(codes, self.code_dim, "", to_last=False)

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returned as ``quantized`` for these (possibly truncated) indices, float32."""
        codes = self.indices_to_codes(indices)
        if self.project_out is None:
            return codes
        codes = self._move(codes, self.code_dim, "codes", to_last=True)
        codes = self.project_out(codes.to(self.project_out.weight.dtype))
        return self._move(codes, self.dim, "", to_last=False)
