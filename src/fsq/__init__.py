"""fsq: Finite Scalar Quantization (Mentzer et al., ICLR 2024) tokenizers and the models built on them.

The public names load lazily (PEP 562), so torch-free parts (``fsq.config``, ``fsq.studies``, ``fsq report``)
run without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the one source of the version: pyproject.toml reads it (setuptools dynamic)

_PUBLIC = {
    "FSQ": "fsq.quantizers.fsq",
    "VQ": "fsq.quantizers.vq",
    "ResidualFSQ": "fsq.quantizers.residual",
    "LFQ": "fsq.quantizers.lfq",
    "BSQ": "fsq.quantizers.bsq",
    "QuantizerOutput": "fsq.quantizers.base",
    "CodebookUsage": "fsq.quantizers.stats",
    "levels_for_codebook_size": "fsq.quantizers.levels",
    "check_pending": "fsq.quantizers.finite",
    "NonFiniteInputError": "fsq.quantizers.finite",
    "Tokenizer": "fsq.models.autoencoder",
    "train": "fsq.api",  # training and evaluation (the `train` extra): fsq.train("fsq_mnist", stage="tokenizer")
    "evaluate": "fsq.api",
    "encode": "fsq.api",  # a tokenizer as a codec: fsq.encode(model, "in.wav", out="codes.npz")
    "decode": "fsq.api",
}

__all__ = [*sorted(_PUBLIC), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fsq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
