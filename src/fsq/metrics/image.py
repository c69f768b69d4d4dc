"""Image and distribution metrics: PSNR, SSIM, Fréchet distance, k-NN manifold precision/recall.

Pure functions on tensors / arrays (torch, numpy, scipy); nothing here loads a network. FID is
:func:`frechet_distance` of :func:`feature_statistics` of Inception features (see ``fsq.metrics.inception``).
Codebook usage, perplexity and entropy live in :class:`fsq.quantizers.stats.CodebookUsage`.

Definitions (paper sec. 3.5, ADM evaluator):
    PSNR = 10 log10(data_range^2 / MSE), MSE over (C, H, W) of one image; datasets report the mean of per-image PSNR.
    SSIM: Wang et al. 2004, 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population covariances.
    FD = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).
    Precision / recall: Kynkäänniemi et al. 2019 with k = 3, as in the ADM evaluator.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
FrechetMethod = Literal["sqrtm", "eigh"]


def _check_pair(x: torch.Tensor, y: torch.Tensor, data_range: float, what: str) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"{what} needs two (N, C, H, W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")


# --------------------------------------------------------------------------------------------------------- PSNR
def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image pair.

    Args:
        x, y: (N, C, H, W) images (any real dtype) on the same device.
        data_range: max - min of the value range (1 for [0, 1] images, 2 for [-1, 1], 255 for uint8 levels).

    Returns:
        (N,) float64: ``10 log10(data_range^2 / MSE)`` with the MSE averaged over (C, H, W) of each image.
        Identical images (MSE = 0) give ``+inf``.
    """
    _check_pair(x, y, data_range, "psnr")
    mse = (x.double() - y.double()).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range**2 / mse)


def mean_psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> float:
    """The mean of per-image PSNR (the usual convention), not the PSNR of the pooled MSE.

    Any identical pair makes it ``+inf``; clamp :func:`psnr` yourself if you need a finite average.
    """
    return float(psnr(x, y, data_range).mean())


# --------------------------------------------------------------------------------------------------------- SSIM
def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(size,) float64 Gaussian taps, normalised to sum 1 (as ``scipy.ndimage.gaussian_filter1d`` builds them)."""
    radius = size // 2
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * taps.square() / sigma**2)
    return taps / taps.sum()


def ssim_window_size(height: int, width: int) -> int:
    """11, or for images with a side below 11 px the largest odd size that fits (1 for a 1- or 2-px side)."""
    side = min(SSIM_WINDOW, height, width)
    return side if side % 2 == 1 else side - 1


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of each image pair, per channel then averaged over channels.

    An 11x11 Gaussian window with sigma 1.5 (separable), ``K1 = 0.01``, ``K2 = 0.03``, population (biased)
    local variances. Local statistics are taken only where the whole window fits inside the image (a "valid"
    convolution) and the SSIM map is averaged over those positions. This is exactly skimage's convention:
    ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=...)`` filters with reflected borders, then crops ``(win - 1) // 2 = 5`` px from every side
    before averaging, so border padding never reaches the pixels it averages. The two agree to round-off (~1e-8).

    Images with a side below 11 px (skimage refuses them) use the largest odd window that fits
    (:func:`ssim_window_size`), with the same sigma: the Gaussian is truncated to that size and renormalised.

    Args:
        x, y: (N, C, H, W) images (any real dtype), CPU or CUDA.
        data_range: max - min of the value range (sets ``C1 = (K1 R)^2``, ``C2 = (K2 R)^2``).

    Returns:
        (N,) float64 SSIM per image, in [-1, 1]; 1 for identical images. Computed in float64.
    """
    _check_pair(x, y, data_range, "ssim")
    n, c, h, w = x.shape
    size = ssim_window_size(h, w)
    taps = _gaussian_window(size, SSIM_SIGMA, x.device)
    a = x.double().reshape(n * c, 1, h, w)
    b = y.double().reshape(n * c, 1, h, w)
    stack = torch.cat([a, b, a * a, b * b, a * b])  # (5 N C, 1, H, W)
    stack = F.conv2d(stack, taps.view(1, 1, size, 1))
    stack = F.conv2d(stack, taps.view(1, 1, 1, size))
    mu_x, mu_y, xx, yy, xy = stack.chunk(5)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    per_channel = (numerator / denominator).mean(dim=(1, 2, 3))  # (N C,)
    return per_channel.view(n, c).mean(dim=1)


# -------------------------------------------------------------------------------------------------- Fréchet / FID
def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, float64, as pytorch-fid (``rowvar=False``, ``ddof=1``)."""
    feats = _as_numpy64(features, "features")
    if feats.shape[0] < 2:
        raise ValueError(f"feature_statistics needs at least 2 samples for a covariance, got {feats.shape[0]}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _as_numpy64(features: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (N, D) array, got shape {feats.shape}")
    return feats


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues clipped to 0)."""
    values, vectors = np.linalg.eigh(sigma)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _trace_sqrt_from_factor(factor: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((F^T F) S2)^(1/2)`` as ``sum sqrt(eig(F S2 F^T))``: F S2 F^T is symmetric PSD with the same nonzero
    eigenvalues as ``F^T F S2``, so this is exact and needs only ``eigvalsh``."""
    inner = factor @ sigma2 @ factor.T
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
    method: FrechetMethod = "sqrtm",
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``.

    ``method="sqrtm"`` (default) is pytorch-fid's computation: ``scipy.linalg.sqrtm(sigma1 @ sigma2)``; if that is
    not finite, retry with ``eps * I`` added to both covariances; drop the imaginary part when the diagonal's is
    below 1e-3, else raise ``ValueError``. It costs tens of seconds at D = 2048 on a small CPU.
    ``method="eigh"`` computes the same trace as ``sum sqrt(eig(R sigma2 R))`` with ``R = sigma1^(1/2)`` from
    symmetric eigendecompositions: several times faster and never complex; equal up to round-off.

    Args:
        mu1, mu2: (D,) means. sigma1, sigma2: (D, D) covariances (numpy or torch; converted to float64 numpy).
    """
    from scipy import linalg  # scipy is needed by FID only

    mu1, mu2 = (np.atleast_1d(np.asarray(_to_numpy(m), dtype=np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(_to_numpy(s), dtype=np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"means must be (D,) vectors of equal length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"covariances must be ({d}, {d}) to match the means, got {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    if method == "eigh":
        tr_covmean = _trace_sqrt_from_factor(_sqrt_psd(sigma1), sigma2)
    elif method == "sqrtm":
        with warnings.catch_warnings():  # singular products warn; finiteness is checked below instead
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm(sigma1 @ sigma2)
            if not np.isfinite(covmean).all():
                offset = np.eye(d) * eps
                covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise ValueError(
                    f"sqrtm(sigma1 @ sigma2) has a large imaginary part ({np.abs(covmean.imag).max():.3g})"
                )
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"unknown method {method!r}; use 'sqrtm' or 'eigh'")
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def _to_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def fid_from_features(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor) -> float:
    """FID of two (N, D) feature sets: ``frechet_distance(*feature_statistics(real), *feature_statistics(fake))``.

    The same quantity, computed exactly without ``sqrtm`` from the centred features ``A1``, ``A2`` (N_i x D,
    ``sigma_i = A_i^T A_i / (N_i - 1)``), by the cheapest of:
    both sets no larger than D: the trace term is the nuclear norm of ``A1 A2^T / sqrt((N1 - 1)(N2 - 1))``
    (an N1 x N2 SVD; a set against itself gives 0 to round-off);
    one set no larger than D: ``sum sqrt(eig(F sigma2 F^T))`` with ``F = A1 / sqrt(N1 - 1)``;
    else the same with ``F = sigma1^(1/2)``.
    Small-N FIDs are biased upwards: compare them only at equal sample counts.
    """
    real, fake = _as_numpy64(real, "real features"), _as_numpy64(fake, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in width: {real.shape[1]} vs {fake.shape[1]}")
    if fake.shape[0] < real.shape[0]:  # FD is symmetric; let ``real`` be the smaller set
        real, fake = fake, real
    mu1, sigma1 = feature_statistics(real)
    mu2, sigma2 = feature_statistics(fake)
    (n1, d), n2 = real.shape, fake.shape[0]
    if n2 <= d:
        cross = (real - mu1) @ (fake - mu2).T / math.sqrt((n1 - 1) * (n2 - 1))
        tr_covmean = float(np.linalg.svd(cross, compute_uv=False).sum())
    else:
        factor = (real - mu1) / math.sqrt(n1 - 1) if n1 <= d else _sqrt_psd(sigma1)
        tr_covmean = _trace_sqrt_from_factor(factor, sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


# ------------------------------------------------------------------------------------------ precision / recall
def _as_points(a: np.ndarray | torch.Tensor, device: torch.device | str | None, what: str) -> torch.Tensor:
    t = a.detach() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    if t.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (N, D) array, got shape {tuple(t.shape)}")
    return t.to(device=device if device is not None else t.device, dtype=torch.float64)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) squared Euclidean distances, clamped at 0 against round-off."""
    d = a.square().sum(1, keepdim=True) + b.square().sum(1) - 2 * (a @ b.T)
    return d.clamp_min_(0)


def _rows_per_block(columns: int, batch_size: int | None) -> int:
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        return batch_size
    return max(1, 2**24 // max(columns, 1))  # ~128 MiB of float64 distances per block


def knn_radii(points: torch.Tensor, k: int, batch_size: int | None = None) -> torch.Tensor:
    """(N,) squared distance from each point to its k-th nearest neighbour in the same set, excluding itself.

    As the ADM evaluator: the (k+1)-th smallest distance of each row, self (distance 0) included.
    """
    rows = _rows_per_block(points.shape[0], batch_size)
    return torch.cat([_squared_distances(block, points).kthvalue(k + 1, dim=1).values for block in points.split(rows)])


def _fraction_covered(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int | None
) -> float:
    """Share of ``queries`` within distance ``radii[j]`` of some ``centres[j]`` (boundary included)."""
    rows = _rows_per_block(centres.shape[0], batch_size)
    inside = [(_squared_distances(block, centres) <= radii).any(dim=1) for block in queries.split(rows)]
    return torch.cat(inside).double().mean().item()


def manifold_precision_recall(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    k: int = 3,
    *,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """k-NN manifold precision and recall (Kynkäänniemi et al. 2019; the ADM evaluator's, k = 3).

    Each set's manifold is the union of balls around its samples, each ball's radius the distance to the sample's
    k-th nearest neighbour in its own set (self excluded). Precision = fraction of ``fake`` samples inside some real
    ball; recall = fraction of ``real`` samples inside some fake ball (boundaries count as inside).

    Distances are computed in float64 blocks of ``batch_size`` rows against the whole other set (default: blocks of
    ~128 MiB), so 10k x 10k samples of width 2048 run in bounded memory; ``device`` picks where (default: the
    inputs' device).

    Args:
        real: (N_real, D) features. fake: (N_fake, D) features. Each set needs more than ``k`` samples.

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    real_t = _as_points(real, device, "real features")
    fake_t = _as_points(fake, real_t.device, "fake features")
    if real_t.shape[1] != fake_t.shape[1]:
        raise ValueError(f"real and fake features differ in width: {real_t.shape[1]} vs {fake_t.shape[1]}")
    for name, t in (("real", real_t), ("fake", fake_t)):
        if t.shape[0] <= k:
            raise ValueError(f"{name} has {t.shape[0]} samples; k={k} nearest neighbours need at least {k + 1}")
    real_radii = knn_radii(real_t, int(k), batch_size)
    fake_radii = knn_radii(fake_t, int(k), batch_size)
    precision = _fraction_covered(fake_t, real_t, real_radii, batch_size)
    recall = _fraction_covered(real_t, fake_t, fake_radii, batch_size)
    return precision, recall
