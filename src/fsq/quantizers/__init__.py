"""Quantizers: FSQ (and its residual form), the VQ baselines, level choice and codebook statistics."""

from fsq.quantizers.base import QuantizerOutput
from fsq.quantizers.fsq import FSQ, VARIANTS, mixed_radix_basis, validate_levels

__all__ = ["FSQ", "QuantizerOutput", "VARIANTS", "mixed_radix_basis", "validate_levels"]
