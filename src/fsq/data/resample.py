"""Resampling along time: linear interpolation for any signal (:func:`resample_time`; nearest frames for video) and
``soxr``'s HQ resampler for audio when it is installed (:func:`resample_audio`, the ``audio`` extra), which the
audio readers and the training crops' speed perturbation share."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F


def soxr_module() -> ModuleType | None:
    """``soxr``, or None when it is not installed."""
    try:
        import soxr
    except ImportError:
        return None
    return soxr


def resample_time(x: torch.Tensor, rate: float, target: float) -> torch.Tensor:
    """An item ``(C, T)`` or ``(C, T, H, W)`` resampled along time from ``rate`` to ``target``: linear interpolation
    for audio, nearest frames for video; ``T * target / rate`` samples (rounded)."""
    length = max(1, round(x.shape[1] * target / rate))
    batch = x.float()[None]
    if x.ndim == 2:  # audio (C, T)
        out = F.interpolate(batch, size=length, mode="linear", align_corners=False)
    else:
        out = F.interpolate(batch, size=(length, *x.shape[2:]), mode="nearest")
    return out[0].to(x.dtype) if x.dtype == torch.uint8 else out[0]


def resample_audio(audio: np.ndarray, rate: float, target: float) -> np.ndarray:
    """``audio`` ``(C, T)`` in ``[-1, 1]`` from ``rate`` to ``target`` Hz (``soxr`` HQ, else linear interpolation)."""
    soxr = soxr_module()
    if soxr is not None:
        out = soxr.resample(np.ascontiguousarray(audio.T), rate, target, quality="HQ")
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)
    return resample_time(torch.from_numpy(audio), rate, target).numpy()
