"""Drop-ins for vector-quantize-pytorch 1.32's FSQ family: change the import, keep the rest.

``from fsq.compat.vector_quantize_pytorch import FSQ, ResidualFSQ, GroupedResidualFSQ`` replaces the same names from
``vector_quantize_pytorch``: same constructors, outputs, indices, state dicts, bit for bit, without that package,
einops or einx. What each keeps and where it differs:

- :class:`FSQ`: :mod:`fsq.compat.finite_scalar_quantization`;
- :class:`ResidualFSQ`, :class:`GroupedResidualFSQ`: :mod:`fsq.compat.residual_fsq`;
- :func:`native_state_dict`: their ``FSQ`` state dict converted on purpose for :class:`fsq.FSQ`, which refuses it.
"""

from __future__ import annotations

from fsq.compat.finite_scalar_quantization import FSQ, INT32_CODEBOOK_LIMIT, DropInError, native_state_dict
from fsq.compat.residual_fsq import GroupedResidualFSQ, ResidualFSQ

__all__ = ["FSQ", "INT32_CODEBOOK_LIMIT", "DropInError", "GroupedResidualFSQ", "ResidualFSQ", "native_state_dict"]
