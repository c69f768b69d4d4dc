"""L2 reconstruction loss: hand value and shape check."""

from __future__ import annotations

import pytest
import torch

from fsq.losses import l2_loss


def test_l2_hand_value():
    a = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    b = torch.tensor([[1.0, 1.0], [0.0, 0.25]])
    assert l2_loss(a, b).item() == pytest.approx((1.0 + 0.0 + 0.25 + 0.0) / 4)
    assert l2_loss(a, a).item() == 0.0


def test_l2_gradient_and_shape_mismatch():
    a = torch.zeros(2, 3, 4, 4, requires_grad=True)
    l2_loss(a, torch.ones(2, 3, 4, 4)).backward()
    assert torch.allclose(a.grad, torch.full_like(a, -2.0 / a.numel()))
    with pytest.raises(ValueError, match="same shape"):
        l2_loss(torch.zeros(2, 3, 4, 4), torch.zeros(1, 3, 4, 4))
