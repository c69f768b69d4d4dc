"""Evaluation: image metrics (PSNR, SSIM), Fréchet distance / FID with the offline Inception network, and k-NN
precision/recall. Codebook usage and perplexity are :class:`fsq.quantizers.stats.CodebookUsage`."""

from fsq.evaluation.inception import FIDStatistics, InceptionFeatures, to_inception_input
from fsq.evaluation.metrics import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    manifold_precision_recall,
    mean_psnr,
    psnr,
    ssim,
)
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
