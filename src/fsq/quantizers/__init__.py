"""Quantizers: FSQ (and its residual form), the VQ baselines, LFQ and BSQ, level choice, codebook statistics and
the registry of families by name (:mod:`fsq.quantizers.registry`).

The names load lazily (PEP 562), so the torch-free registry (the config sections) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsq.quantizers.base import Quantizer, QuantizerOutput
    from fsq.quantizers.bsq import BSQ
    from fsq.quantizers.finite import NonFiniteInputError, check_pending
    from fsq.quantizers.fsq import FSQ, VARIANTS, mixed_radix_basis, validate_levels
    from fsq.quantizers.levels import PAPER_LEVELS, levels_for_codebook_size
    from fsq.quantizers.lfq import LFQ
    from fsq.quantizers.residual import ResidualFSQ
    from fsq.quantizers.residual_vq import ResidualVQ
    from fsq.quantizers.stats import CodebookUsage, UsageSummary
    from fsq.quantizers.vq import VQ, VQ_RECIPES, VQLosses, VQRecipe

_PUBLIC = {
    "BSQ": "fsq.quantizers.bsq",
    "FSQ": "fsq.quantizers.fsq",
    "LFQ": "fsq.quantizers.lfq",
    "NonFiniteInputError": "fsq.quantizers.finite",
    "PAPER_LEVELS": "fsq.quantizers.levels",
    "VARIANTS": "fsq.quantizers.fsq",
    "VQ": "fsq.quantizers.vq",
    "VQ_RECIPES": "fsq.quantizers.vq",
    "CodebookUsage": "fsq.quantizers.stats",
    "Quantizer": "fsq.quantizers.base",
    "QuantizerOutput": "fsq.quantizers.base",
    "ResidualFSQ": "fsq.quantizers.residual",
    "ResidualVQ": "fsq.quantizers.residual_vq",
    "UsageSummary": "fsq.quantizers.stats",
    "VQLosses": "fsq.quantizers.vq",
    "VQRecipe": "fsq.quantizers.vq",
    "check_pending": "fsq.quantizers.finite",
    "levels_for_codebook_size": "fsq.quantizers.levels",
    "mixed_radix_basis": "fsq.quantizers.fsq",
    "validate_levels": "fsq.quantizers.fsq",
}

__all__ = [
    "BSQ",
    "CodebookUsage",
    "FSQ",
    "LFQ",
    "NonFiniteInputError",
    "PAPER_LEVELS",
    "Quantizer",
    "QuantizerOutput",
    "ResidualFSQ",
    "ResidualVQ",
    "UsageSummary",
    "VARIANTS",
    "VQ",
    "VQLosses",
    "VQRecipe",
    "VQ_RECIPES",
    "check_pending",
    "levels_for_codebook_size",
    "mixed_radix_basis",
    "validate_levels",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fsq.quantizers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
