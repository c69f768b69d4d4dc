"""Drop-in replacements for other libraries' quantizers, so their users can switch with one import.

- :mod:`fsq.compat.vector_quantize_pytorch`: ``FSQ``, ``ResidualFSQ`` and ``GroupedResidualFSQ``, drop-ins for
  vector-quantize-pytorch 1.32's (same arguments, return tuples, state dicts, and bit-identical outputs, indices
  and gradients); implemented in :mod:`fsq.compat.finite_scalar_quantization` and :mod:`fsq.compat.residual_fsq`.

These modules need only torch and :mod:`fsq.quantizers`, never the library they replace.
"""
