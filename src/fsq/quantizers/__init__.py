"""Quantizers: FSQ (and its residual form), the VQ baselines, level choice and codebook statistics."""

from fsq.quantizers.base import QuantizerOutput
from fsq.quantizers.finite import NonFiniteInputError, check_pending
from fsq.quantizers.fsq import FSQ, VARIANTS, mixed_radix_basis, validate_levels
from fsq.quantizers.levels import PAPER_LEVELS, levels_for_codebook_size
from fsq.quantizers.residual import ResidualFSQ
from fsq.quantizers.stats import CodebookUsage, UsageSummary
from fsq.quantizers.vq import VQ, VQ_RECIPES, VQLosses, VQRecipe

__all__ = [
    "FSQ",
    "NonFiniteInputError",
    "PAPER_LEVELS",
    "VARIANTS",
    "VQ",
    "VQ_RECIPES",
    "CodebookUsage",
    "QuantizerOutput",
    "ResidualFSQ",
    "UsageSummary",
    "VQLosses",
    "VQRecipe",
    "check_pending",
    "levels_for_codebook_size",
    "mixed_radix_basis",
    "validate_levels",
]
