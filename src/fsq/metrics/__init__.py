"""Metrics as pure functions and accumulators (below tasks and evaluation): PSNR, SSIM, Fréchet distance / FID with
the offline Inception network, k-NN precision/recall, depth metrics and panoptic quality. Codebook usage and
perplexity are :class:`fsq.quantizers.stats.CodebookUsage`."""

from fsq.metrics.image import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    manifold_precision_recall,
    mean_psnr,
    psnr,
    ssim,
)
from fsq.metrics.inception import FIDStatistics, InceptionFeatures, to_inception_input
from fsq.quantizers.stats import CodebookUsage

__all__ = [
    "CodebookUsage",
    "FIDStatistics",
    "InceptionFeatures",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "manifold_precision_recall",
    "mean_psnr",
    "psnr",
    "ssim",
    "to_inception_input",
]
