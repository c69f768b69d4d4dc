"""Perceptual speech quality: wideband PESQ (ITU-T P.862.2) and STOI, through the ``pesq`` and ``pystoi`` packages
(the ``audio-eval`` extra).

Both compare a clean reference with a degraded clip of the same length, as numpy float waveforms. PESQ wideband
needs 16 kHz (8 kHz is narrowband only); its score is a MOS-LQO from about 1.04 to 4.64. STOI (Taal et al. 2011)
resamples to 10 kHz itself and returns an intelligibility index in about ``[0, 1]``. Neither package is imported
until asked; :func:`unavailable` says why a score cannot be computed (a missing package, a wrong sample rate), so
an evaluation can skip it with that reason instead of failing.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence

import numpy as np

PESQ_RATE = 16000


def unavailable(metric: str, sample_rate: float) -> str | None:
    """Why ``metric`` (``"pesq"`` or ``"stoi"``) cannot be computed at ``sample_rate``, or None when it can."""
    package = {"pesq": "pesq", "stoi": "pystoi"}.get(metric)
    if package is None:
        raise ValueError(f"unknown speech-quality metric {metric!r}; known: pesq, stoi")
    if importlib.util.find_spec(package) is None:
        return f"the {package!r} package is not installed (pip install 'fsq-toolkit[audio-eval]')"
    if metric == "pesq" and sample_rate != PESQ_RATE:
        return f"wideband PESQ needs {PESQ_RATE} Hz audio, these clips are {sample_rate:g} Hz"
    if metric == "stoi" and sample_rate < 10000:
        return f"STOI resamples to 10 kHz and needs at least that, these clips are {sample_rate:g} Hz"
    return None


def _pair(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, deg = np.asarray(reference, dtype=np.float64), np.asarray(degraded, dtype=np.float64)
    if ref.shape != deg.shape or ref.ndim != 1:
        raise ValueError(f"speech quality needs two mono clips of one length, got {ref.shape} and {deg.shape}")
    if not (np.isfinite(ref).all() and np.isfinite(deg).all()):
        raise ValueError("speech quality: the clips hold NaN or Inf samples")
    return ref, deg


def pesq_wb(reference: np.ndarray, degraded: np.ndarray, sample_rate: int = PESQ_RATE) -> float:
    """Wideband PESQ (MOS-LQO) of one degraded mono clip against its reference, both waveforms at 16 kHz.
    A clip in which PESQ finds no speech (silence) is a ValueError saying so."""
    reason = unavailable("pesq", sample_rate)
    if reason:
        raise RuntimeError(f"PESQ: {reason}")
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    ref, deg = _pair(reference, degraded)
    if not np.abs(ref).max(initial=0.0) > 0:
        raise ValueError(f"PESQ cannot score this clip of {len(ref)} samples: the reference is silent")
    try:
        return float(pesq(sample_rate, ref, deg, "wb"))
    except (NoUtterancesError, BufferTooShortError) as error:
        raise ValueError(f"PESQ cannot score this clip of {len(ref)} samples: {type(error).__name__}") from error


def stoi(reference: np.ndarray, degraded: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """STOI (or extended STOI) of one degraded mono clip against its reference at ``sample_rate``. A clip with
    too little sound left after pystoi drops its silent frames (pystoi then warns and returns 1e-5), or a silent
    reference (pystoi returns 0), is a ValueError saying so."""
    reason = unavailable("stoi", sample_rate)
    if reason:
        raise RuntimeError(f"STOI: {reason}")
    from pystoi import stoi as pystoi_stoi

    ref, deg = _pair(reference, degraded)
    if not np.abs(ref).max(initial=0.0) > 0:
        raise ValueError(f"STOI cannot score this clip of {len(ref)} samples: the reference is silent")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi_stoi(ref, deg, sample_rate, extended=extended))
    if caught:
        raise ValueError(f"STOI cannot score this clip of {len(ref)} samples: {caught[0].message}")
    return value


def mean_scores(
    references: Sequence[np.ndarray], estimates: Sequence[np.ndarray], sample_rate: int
) -> dict[str, float | str]:
    """``{"pesq_wb": mean, "stoi": mean}`` over clips, or for a metric that cannot run here, its key with
    ``_skipped`` and the reason; clips a metric cannot score (no speech, too short) are left out of its mean and
    counted in ``KEY_unscored_clips``."""
    out: dict[str, float | str] = {}
    reason = unavailable("pesq", sample_rate)
    if reason:
        out["pesq_wb_skipped"] = reason
    else:
        values = []
        for ref, est in zip(references, estimates):
            try:
                values.append(pesq_wb(ref, est, sample_rate))
            except ValueError:
                pass
        _mean_into(out, "pesq_wb", values, len(references))
    reason = unavailable("stoi", sample_rate)
    if reason:
        out["stoi_skipped"] = reason
    else:
        values = []
        for ref, est in zip(references, estimates):
            try:
                values.append(stoi(ref, est, sample_rate))
            except ValueError:
                pass
        _mean_into(out, "stoi", values, len(references))
    return out


def _mean_into(out: dict[str, float | str], key: str, values: list[float], clips: int) -> None:
    if values:
        out[key] = float(np.mean(values))
    if len(values) < clips:
        out[f"{key}_unscored_clips"] = float(clips - len(values))
