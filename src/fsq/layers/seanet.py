"""SEANet / DAC-style 1-D convolutional encoder and decoder for audio codecs.

The layout of SoundStream (Zeghidour et al., 2021), EnCodec (Defossez et al., 2022, ``encodec/modules/seanet.py``)
and DAC (Kumar et al., 2023, ``dac/model/dac.py``), without their LSTM and weight normalisation:

    encoder: conv7(C_in -> w_0) -> per stride s_i: [residual units, dilations 1, 3, 9 at width w_i]
             -> act -> conv(kernel 2 s_i, stride s_i, w_i -> w_{i+1}) -> act -> conv3(w_last -> code channels)
    decoder: conv7(code channels -> w_last) -> per stride (reversed): act -> transposed conv(kernel 2 s_i,
             stride s_i, w_{i+1} -> w_i) -> [residual units] -> act -> conv7(w_0 -> C_in)
    residual unit: x + conv1(act(conv7_dilated(act(x))))

A ``T``-sample signal gives ``ceil(T / s)`` frames per stride (the input is zero-padded as needed) and the decoder
trims its output back to the encoder's input length, so any length round-trips. ``causal=True`` pads every
convolution on the left only (a frame of ``hop`` samples is encoded from those and earlier samples) and trims the
transposed convolutions on the right, so a decoded sample depends on no later frame than its own.

Activations: ``snake`` (DAC, BigVGAN: ``x + sin^2(alpha x) / alpha`` with a learned ``alpha`` per channel, a periodic
bias that suits voiced speech and tones) or ``elu`` (SEANet, EnCodec). No normalisation layer: the discriminators'
feature matching and the waveform losses see the raw scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("snake", "elu")


class Snake(nn.Module):
    """``x + sin^2(alpha x) / (alpha + 1e-9)`` with a learned ``alpha`` per channel (init 1), on (B, C, T)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.alpha * x).pow(2) / (self.alpha + 1e-9)


def activation(name: str, channels: int) -> nn.Module:
    """The activation ``name`` (``snake`` or ``elu``) for ``channels`` channels."""
    if name == "snake":
        return Snake(channels)
    if name == "elu":
        return nn.ELU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class PaddedConv1d(nn.Conv1d):
    """Conv1d keeping the length (stride 1): ``dilation * (kernel - 1)`` zeros split around it, or all on the left
    when ``causal``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, dilation: int = 1, causal: bool = False
    ) -> None:
        super().__init__(in_channels, out_channels, kernel, dilation=dilation)
        total = dilation * (kernel - 1)
        self.pad = (total, 0) if causal else (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


class ResidualUnit(nn.Module):
    """``x + conv1(act(conv7_dilated(act(x))))`` (DAC's residual unit)."""

    def __init__(self, channels: int, dilation: int, act: str, causal: bool = False) -> None:
        super().__init__()
        self.act1 = activation(act, channels)
        self.conv1 = PaddedConv1d(channels, channels, 7, dilation, causal)
        self.act2 = activation(act, channels)
        self.conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


def _units(channels: int, dilations: Sequence[int], act: str, causal: bool) -> list[nn.Module]:
    return [ResidualUnit(channels, int(d), act, causal) for d in dilations]


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each time step of (B, C, T): no statistic crosses time (causal-safe)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class StridedConv1d(nn.Conv1d):
    """Downsampling by ``stride`` (kernel ``2 * stride``): ``T -> ceil(T / stride)`` frames, zeros padded around the
    input (``stride // 2`` on the left, the rest on the right; ``causal``: ``stride`` on the left)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, causal: bool = False) -> None:
        super().__init__(in_channels, out_channels, 2 * stride, stride=stride)
        self.factor, self.causal = stride, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, length = self.factor, x.shape[-1]
        total = (-(-length // s) + 1) * s - length
        left = s if self.causal else s // 2
        return super().forward(F.pad(x, (left, total - left)))


class StridedTransposeConv1d(nn.ConvTranspose1d):
    """Upsampling by ``stride`` (kernel ``2 * stride``) to ``length`` samples: the inverse framing of
    :class:`StridedConv1d` (``stride // 2`` trimmed on the left; ``causal``: none, so output frame ``k`` comes from
    input frames ``k`` and ``k - 1`` only)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, causal: bool = False) -> None:
        super().__init__(in_channels, out_channels, 2 * stride, stride=stride)
        self.factor, self.causal = stride, causal

    def forward(self, x: torch.Tensor, length: int | None = None) -> torch.Tensor:  # type: ignore[override]
        s = self.factor
        y = super().forward(x)  # (frames + 1) * s samples
        left = 0 if self.causal else s // 2
        length = x.shape[-1] * s if length is None else length
        if not 0 < length <= y.shape[-1] - left:
            raise ValueError(f"cannot upsample {x.shape[-1]} frames by {s} to {length} samples")
        return y[..., left : left + length]


def zero_biases(module: nn.Module) -> None:
    """Zero every convolution bias (DAC's init): at the start a network's activations come from the signal alone.

    PyTorch's default bias init (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``) is large beside speech at an RMS of ~0.07:
    the encoder's output was then nearly the same vector at every frame (its normalised bias pattern), so FSQ gave
    one or two codes and training did not leave them (measured on synthetic speech)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)) and m.bias is not None:
            nn.init.zeros_(m.bias)


def _check(widths: Sequence[int], strides: Sequence[int], dilations: Sequence[int], act: str) -> None:
    if len(widths) != len(strides) + 1:
        raise ValueError(f"{len(strides)} strides need {len(strides) + 1} widths, got {list(widths)}")
    if any(int(s) < 1 for s in strides) or any(int(w) < 1 for w in widths) or any(int(d) < 1 for d in dilations):
        raise ValueError(f"widths, strides and dilations must be positive: {list(widths)} {list(strides)}")
    activation(act, 1)  # an unknown name is refused here


class SEANetEncoder(nn.Module):
    """(B, in_channels, T) -> (B, code_channels, ceil(T / prod(strides))); ``widths[i]`` is the width before stride
    ``i`` (``len(strides) + 1`` widths)."""

    def __init__(
        self,
        in_channels: int,
        code_channels: int,
        widths: Sequence[int],
        strides: Sequence[int],
        dilations: Sequence[int] = (1, 3, 9),
        act: str = "elu",
        causal: bool = False,
    ) -> None:
        super().__init__()
        _check(widths, strides, dilations, act)
        self.stem = PaddedConv1d(in_channels, widths[0], 7, causal=causal)
        blocks: list[nn.Module] = []
        for i, stride in enumerate(strides):
            blocks += _units(widths[i], dilations, act, causal)
            blocks += [activation(act, widths[i]), StridedConv1d(widths[i], widths[i + 1], int(stride), causal)]
        self.blocks = nn.Sequential(*blocks)
        self.norm = ChannelNorm(widths[-1])
        self.act = activation(act, widths[-1])
        self.head = PaddedConv1d(widths[-1], code_channels, 3, causal=causal)
        zero_biases(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.norm(self.blocks(self.stem(x)))))


class DecoderStage(nn.Module):
    """act -> transposed strided conv (to a given length) -> residual units."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, dilations: Sequence[int], act: str, causal: bool
    ):
        super().__init__()
        self.act = activation(act, in_channels)
        self.up = StridedTransposeConv1d(in_channels, out_channels, stride, causal)
        self.units = nn.Sequential(*_units(out_channels, dilations, act, causal))

    def forward(self, x: torch.Tensor, length: int | None = None) -> torch.Tensor:
        return self.units(self.up(self.act(x), length))


class SEANetDecoder(nn.Module):
    """(B, code_channels, frames) -> (B, out_channels, T): the mirror of :class:`SEANetEncoder` (same ``widths``,
    ``strides``); ``lengths`` (the encoder's per-stage input lengths, input first) trims each upsampling, else
    ``frames * prod(strides)`` samples."""

    def __init__(
        self,
        out_channels: int,
        code_channels: int,
        widths: Sequence[int],
        strides: Sequence[int],
        dilations: Sequence[int] = (1, 3, 9),
        act: str = "elu",
        causal: bool = False,
    ) -> None:
        super().__init__()
        _check(widths, strides, dilations, act)
        self.stem = PaddedConv1d(code_channels, widths[-1], 7, causal=causal)
        self.stages = nn.ModuleList(
            DecoderStage(widths[i + 1], widths[i], int(strides[i]), dilations, act, causal)
            for i in reversed(range(len(strides)))
        )
        self.act = activation(act, widths[0])
        self.head = PaddedConv1d(widths[0], out_channels, 7, causal=causal)
        zero_biases(self)

    def forward(self, z: torch.Tensor, lengths: Sequence[int] | None = None) -> torch.Tensor:
        h = self.stem(z)
        for i, stage in enumerate(self.stages):
            h = stage(h, None if lengths is None else lengths[len(self.stages) - 1 - i])
        return self.head(self.act(h))
