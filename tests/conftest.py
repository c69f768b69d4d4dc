"""Shared test set-up: the Triton interpreter on CPU-only machines, data-source requirements, the DDP harness.

``TRITON_INTERPRET=1`` must be set before anything imports triton (``torch.compile`` does), so it is set here,
at collection start, when no CUDA device is present: Triton kernels then run on CPU tensors.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
