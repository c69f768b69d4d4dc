"""fsq: Finite Scalar Quantization (Mentzer et al., ICLR 2024) tokenizers and the models built on them."""

from fsq.quantizers import FSQ, QuantizerOutput

__version__ = "0.1.0"

__all__ = ["FSQ", "QuantizerOutput", "__version__"]
