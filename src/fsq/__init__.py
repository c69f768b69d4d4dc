"""fsq: Finite Scalar Quantization (Mentzer et al., ICLR 2024) tokenizers and the models built on them."""

from fsq.quantizers import (
    FSQ,
    VQ,
    CodebookUsage,
    QuantizerOutput,
    ResidualFSQ,
    levels_for_codebook_size,
)

__version__ = "0.1.0"

__all__ = [
    "FSQ",
    "VQ",
    "CodebookUsage",
    "QuantizerOutput",
    "ResidualFSQ",
    "__version__",
    "levels_for_codebook_size",
]
