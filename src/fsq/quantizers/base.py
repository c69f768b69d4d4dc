"""The one return type every quantizer in :mod:`fsq` shares."""

from __future__ import annotations

from typing import NamedTuple

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
