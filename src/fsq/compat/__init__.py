"""Drop-in replacements for other libraries' quantizers, so their users can switch with one import.

- :mod:`fsq.compat.vector_quantize_pytorch`: ``FSQ``, a drop-in for vector-quantize-pytorch 1.32's ``FSQ``
  (same arguments, ``(quantized, indices)`` return, state dicts, and bit-identical outputs and gradients).

These modules need only torch and :mod:`fsq.quantizers`, never the library they replace.
"""
