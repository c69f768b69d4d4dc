"""Scale-invariant signal-to-noise ratio (SI-SNR, also SI-SDR), per clip.

Le Roux et al. 2019, "SDR - half-baked or well done?" (arXiv 1811.02508): both clips are made zero-mean, the
estimate is projected on the reference, ``s_t = (<s_hat, s> / ||s||^2) s``, and the rest ``e = s_hat - s_t`` is
the noise: ``SI-SNR = 10 log10(||s_t||^2 / ||e||^2)``. It ignores the estimate's gain (of either sign) and DC
offset, but not its timing or phase: a codec that reproduces the spectrum with other phases (a parametric vocoder
such as Codec2) scores near or below 0 dB however intelligible it is; a coherent waveform scores above 0 dB.
"""

from __future__ import annotations

import torch

CAP_DB = 100.0


def si_snr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """SI-SNR in dB of each clip of waveforms ``(..., T)`` (the leading shape), computed in float64 and clipped to
    ``[-100, 100]`` dB (identical clips give 100; a silent reference gives -100: nothing to be scale-invariant to).
    Any affine map of the audio scale (the project's ``[0, 1]`` audio or a ``[-1, 1]`` waveform) gives the same
    value, since only the mean-removed shapes are compared."""
    if reference.shape != estimate.shape:
        raise ValueError(
            f"SI-SNR: reference and estimate shapes differ: {tuple(reference.shape)} vs {tuple(estimate.shape)}"
        )
    if reference.shape[-1] < 2:
        raise ValueError(f"SI-SNR needs clips of at least 2 samples, got shape {tuple(reference.shape)}")
    s = reference.double() - reference.double().mean(-1, keepdim=True)
    s_hat = estimate.double() - estimate.double().mean(-1, keepdim=True)
    energy = s.square().sum(-1, keepdim=True)
    target = (s_hat * s).sum(-1, keepdim=True) / energy.clamp_min(eps) * s
    noise = s_hat - target
    ratio = target.square().sum(-1).clamp_min(eps) / noise.square().sum(-1).clamp_min(eps)
    value = 10 * torch.log10(ratio)
    value = torch.where(energy[..., 0] <= eps, torch.full_like(value, -CAP_DB), value)
    return value.clamp(-CAP_DB, CAP_DB)
