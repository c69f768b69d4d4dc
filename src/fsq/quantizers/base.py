"""The one return type every quantizer in :mod:`fsq` shares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol, runtime_checkable

import torch


class QuantizerOutput(NamedTuple):
    """What a quantizer's ``forward`` returns.

    Attributes:
        quantized: the quantized tensor, same shape and dtype as the input (straight-through gradient).
        indices: int64 code indices, the input's shape without the channel axis (plus a trailing axis of
            size ``num_codebooks`` / ``num_stages`` for grouped and residual quantizers).
        aux_loss: scalar float32 training loss the quantizer asks to be added (zero for FSQ).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    aux_loss: torch.Tensor


@runtime_checkable
class Quantizer(Protocol):
    """What models need of any quantizer module (FSQ, ResidualFSQ, VQ, LFQ, BSQ, or a registered family's).

    ``quantizer(z)`` returns :class:`QuantizerOutput`; ``indices_to_quantized(indices)`` gives back what it
    returned as ``quantized`` (float32); ``codebook_size`` counts the codes one index addresses.
    """

    codebook_size: int
    channel_axis: int

    def __call__(self, z: torch.Tensor) -> QuantizerOutput: ...

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...
