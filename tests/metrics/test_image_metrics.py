"""Metrics on hand-made cases: PSNR, SSIM (and parity with skimage), Fréchet distance, k-NN precision/recall."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fsq.metrics.image import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    manifold_precision_recall,
    mean_psnr,
    psnr,
    ssim,
    ssim_window_size,
)


# ----------------------------------------------------------------------------------------------------------- PSNR
def test_psnr_hand_computed():
    x = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    y[1] += 0.01  # MSE 1e-4 -> 40 dB
    assert psnr(x, y).tolist() == pytest.approx([20.0, 40.0], abs=1e-9)
    assert mean_psnr(x, y) == pytest.approx(30.0, abs=1e-9)  # mean of per-image PSNR, not PSNR of mean MSE
    # [-1, 1] images: PSNR = 10 log10(4 / MSE)
    assert psnr(x, x + 0.2, data_range=2.0).tolist() == pytest.approx([20.0, 20.0], abs=1e-9)
    # uint8 levels: error 51 of 255 -> 10 log10(25)
    a = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    assert psnr(a, a + 51, data_range=255).item() == pytest.approx(10 * math.log10(25), abs=1e-9)


def test_psnr_mse_over_channels_and_identical_is_inf():
    x = torch.rand(3, 3, 5, 7)
    y = x.clone()
    y[1, 0] += 0.3  # one channel of one image: MSE = 0.09 / 3
    out = psnr(x, y)
    assert out.dtype == torch.float64 and out.shape == (3,)
    assert math.isinf(out[0]) and out[0] > 0 and math.isinf(out[2])
    assert out[1].item() == pytest.approx(10 * math.log10(3 / 0.09), abs=1e-4)
    assert math.isinf(mean_psnr(x, x))


def test_psnr_ssim_reject_bad_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        psnr(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="data_range"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), data_range=0)


# ----------------------------------------------------------------------------------------------------------- SSIM
def _smooth(n: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, c, h // 4, w // 4, generator=g, dtype=torch.float64)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_ssim_identical_is_one():
    x = torch.rand(2, 3, 16, 20)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)


@pytest.mark.parametrize("kind", ["random", "smooth"])
def test_ssim_matches_skimage(kind):
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    if kind == "random":
        x = torch.rand(3, 3, 32, 40, generator=g, dtype=torch.float64)
    else:
        x = _smooth(3, 3, 32, 40, seed=1)
    noise = torch.randn(x.shape, generator=g, dtype=torch.float64) * torch.tensor([0.02, 0.1, 0.3]).view(3, 1, 1, 1)
    y = (x + noise).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(x.shape[0]):
        ref = metrics.structural_similarity(
            x[i].numpy(),
            y[i].numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=0,
        )
        assert ours[i].item() == pytest.approx(ref, abs=1e-4)
    # grayscale, a data range other than 1, float32 input
    ref = metrics.structural_similarity(
        255 * x[0, 0].numpy(),
        255 * y[0, 0].numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255.0,
    )
    assert ssim(255 * x[:1, :1].float(), 255 * y[:1, :1].float(), data_range=255).item() == pytest.approx(ref, abs=1e-4)


def test_ssim_decreases_with_noise():
    x = _smooth(1, 3, 32, 32, seed=2)
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
    scores = [ssim(x, (x + s * noise).clamp(0, 1)).item() for s in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)]
    assert scores[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_ssim_small_images_use_a_window_that_fits():
    assert ssim_window_size(28, 28) == 11 and ssim_window_size(7, 9) == 7 and ssim_window_size(8, 20) == 7
    assert ssim_window_size(2, 5) == 1
    x = torch.rand(2, 1, 7, 8)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0])
    out = ssim(x, y)
    assert out.shape == (2,) and torch.all(out < 1) and torch.all(out > -1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ssim_psnr_cuda_match_cpu():
    x = torch.rand(4, 3, 32, 32)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(ssim(x.cuda(), y.cuda()).cpu(), ssim(x, y), atol=1e-10)
    assert torch.allclose(psnr(x.cuda(), y.cuda()).cpu(), psnr(x, y), atol=1e-10)


# ----------------------------------------------------------------------------------------------------- Fréchet
def _random_psd(d: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d


def test_frechet_identical_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(16), _random_psd(16, rng)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    assert abs(frechet_distance(mu, sigma, mu, sigma, method="eigh")) < 1e-6


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_diagonal_closed_form(method):
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    s1, s2 = rng.uniform(0.1, 3.0, 10), rng.uniform(0.1, 3.0, 10)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_symmetric_and_methods_agree():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    s1, s2 = _random_psd(32, rng), _random_psd(32, rng, rank=8)  # one singular covariance
    ab = frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ab, rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2, method="eigh") == pytest.approx(ab, rel=1e-8)
    torch_args = [torch.from_numpy(a) for a in (mu1, s1, mu2, s2)]
    assert frechet_distance(*torch_args) == pytest.approx(ab, rel=1e-12)


def test_frechet_from_gaussian_samples():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20000, 8))
    b = rng.standard_normal((20000, 8)) + 1.0  # ||mu1 - mu2||^2 = 8, equal covariances
    assert frechet_distance(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(8.0, abs=0.2)
    assert fid_from_features(a, b) == pytest.approx(8.0, abs=0.2)


@pytest.mark.parametrize(("n1", "n2", "d"), [(12, 20, 64), (200, 150, 16), (30, 300, 64)])
def test_fid_from_features_equals_frechet_of_statistics(n1, n2, d):
    rng = np.random.default_rng(n1 + n2)
    a = rng.standard_normal((n1, d)) @ rng.standard_normal((d, d)) * 0.3
    b = rng.standard_normal((n2, d)) + 0.2
    expected = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(b, a) == pytest.approx(expected, rel=1e-6)
    assert abs(fid_from_features(a, a)) < 1e-6  # also when N < D (singular covariance)


def test_feature_statistics_like_pytorch_fid():
    rng = np.random.default_rng(4)
    f = rng.standard_normal((50, 6)).astype(np.float32)
    mu, sigma = feature_statistics(torch.from_numpy(f))
    assert mu.dtype == np.float64 and sigma.shape == (6, 6)
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False, ddof=1), rtol=1e-12)
    with pytest.raises(ValueError, match="at least 2 samples"):
        feature_statistics(f[:1])
    with pytest.raises(ValueError, match="2-D"):
        feature_statistics(f[0])


def test_frechet_rejects_bad_input():
    eye = np.eye(2)
    with pytest.raises(ValueError, match="imaginary"):  # not covariances: the product has a negative eigenvalue
        frechet_distance(np.zeros(2), eye, np.zeros(2), np.diag([1.0, -4.0]))
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(2), eye, np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(2), eye, np.zeros(2), eye, method="svd")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ precision / recall
def test_precision_recall_identical_sets():
    x = np.random.default_rng(5).standard_normal((40, 16))
    assert manifold_precision_recall(x, x.copy()) == (1.0, 1.0)


def test_precision_recall_disjoint_sets():
    x = np.random.default_rng(6).standard_normal((40, 16))
    assert manifold_precision_recall(x, x + 1000.0) == (0.0, 0.0)


def test_precision_recall_fake_covers_one_mode():
    rng = np.random.default_rng(7)
    mode_a = rng.standard_normal((10, 8))
    mode_b = rng.standard_normal((10, 8)) + 100.0
    real = np.concatenate([mode_a, mode_b])
    fake = mode_a + 1e-3 * rng.standard_normal(mode_a.shape)  # a tight copy of one of the two modes
    precision, recall = manifold_precision_recall(real, fake, k=3)
    assert precision == 1.0 and recall == 0.5


def test_precision_recall_hand_computed_on_a_line():
    # real = 0..9, k=1: every real ball has radius 1 -> covers [-1, 10]; fake 0 and 3 are inside, 4 others not.
    # fake radii (k=1): 0 -> 3, 3 -> 3, 30 -> 1, 31 -> 1, 60 -> 2, 62 -> 2: balls around 0 and 3 cover real 0..6
    # (6 sits exactly on the boundary, which counts as inside).
    real = np.arange(10, dtype=np.float64)[:, None]
    fake = np.array([0, 3, 30, 31, 60, 62], dtype=np.float64)[:, None]
    precision, recall = manifold_precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 6, abs=1e-15) and recall == pytest.approx(0.7, abs=1e-15)


def _brute_force_pr(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def dists(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    r_real = np.sort(dists(real, real), axis=1)[:, k]
    r_fake = np.sort(dists(fake, fake), axis=1)[:, k]
    precision = (dists(fake, real) <= r_real[None, :]).any(1).mean()
    recall = (dists(real, fake) <= r_fake[None, :]).any(1).mean()
    return float(precision), float(recall)


def test_precision_recall_chunked_matches_brute_force():
    rng = np.random.default_rng(8)
    real = rng.standard_normal((57, 12))
    fake = 1.3 * rng.standard_normal((43, 12)) + 0.4
    expected = _brute_force_pr(real, fake, k=3)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    assert manifold_precision_recall(real, fake) == pytest.approx(expected, abs=1e-12)
    assert manifold_precision_recall(real, fake, batch_size=5) == pytest.approx(expected, abs=1e-12)
    real32, fake32 = torch.from_numpy(real).float(), torch.from_numpy(fake).float()  # float32 tensors are accepted
    expected32 = _brute_force_pr(real32.double().numpy(), fake32.double().numpy(), k=3)
    assert manifold_precision_recall(real32, fake32, batch_size=7) == pytest.approx(expected32, abs=1e-12)


def test_precision_recall_rejects_bad_input():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="at least 4"):
        manifold_precision_recall(x, np.ones((10, 4)), k=3)
    with pytest.raises(ValueError, match="width"):
        manifold_precision_recall(np.ones((10, 4)), np.ones((10, 5)))
    with pytest.raises(ValueError, match="positive integer"):
        manifold_precision_recall(np.ones((10, 4)), np.ones((10, 4)), k=0)
