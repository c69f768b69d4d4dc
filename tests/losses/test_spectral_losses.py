"""Multi-resolution STFT and multi-scale mel losses (over the shared fsq.metrics.spectral distances): hand-checkable
values, agreement with auraloss on one clip, the phase-aware term, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.losses.spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss


def signals(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(3, 1, 2048, generator=g) * 0.3
    return target + 0.05 * torch.randn(target.shape, generator=g), target


def test_identical_signals_cost_nothing() -> None:
    _, y = signals()
    assert float(MultiResolutionSTFTLoss((128, 256), complex_weight=1.0)(y, y)) == 0.0
    assert float(MultiScaleMelLoss(16000, (128, 256))(y, y)) == 0.0


def test_a_doubled_signal_costs_log_two_and_full_convergence() -> None:
    """|X| = 2 |Y|: spectral convergence ||Y - X|| / ||Y|| = 1 and mean |log Y - log X| = log 2 (the magnitude
    floor touches no bin of a noise signal); the complex term of X - Y = Y is mean |Y| / sqrt(window)."""
    _, y = signals()
    loss = MultiResolutionSTFTLoss((256,))
    assert float(loss(2 * y, y)) == pytest.approx(1 + math.log(2), rel=1e-4)
    spec = torch.stft(y.reshape(3, -1), 256, 64, 256, torch.hann_window(256), return_complex=True)
    expected = 1 + math.log(2) + 0.5 * float(spec.abs().mean()) / 16
    assert float(MultiResolutionSTFTLoss((256,), complex_weight=0.5)(2 * y, y)) == pytest.approx(expected, rel=1e-4)


def test_a_tenfold_signal_costs_two_decades_of_squared_mel_per_window() -> None:
    _, y = signals()
    assert float(MultiScaleMelLoss(16000, (256, 512))(10 * y, y)) == pytest.approx(2 * 2.0, rel=1e-3)


def test_the_complex_term_sees_a_phase_shift_that_magnitudes_barely_see() -> None:
    t = torch.arange(4096) / 16000
    y = torch.sin(2 * math.pi * 440 * t)[None]
    shifted = torch.sin(2 * math.pi * 440 * t + 1.0)[None]
    other = torch.sin(2 * math.pi * 660 * t)[None]
    magnitudes, with_phase = MultiResolutionSTFTLoss((512,)), MultiResolutionSTFTLoss((512,), complex_weight=1.0)
    shift_cost = float(magnitudes(shifted, y))
    assert shift_cost < 0.25 * float(magnitudes(other, y))  # a phase shift looks like a small change...
    phase_cost = float(with_phase(shifted, y)) - shift_cost
    # ...the complex term charges it: each bin turns by the phase, |e^{i phi} - 1| = 2 sin(phi / 2) of its magnitude
    spec = torch.stft(y, 512, 128, 512, torch.hann_window(512), return_complex=True)
    expected = 2 * math.sin(0.5) * float(spec.abs().mean()) / math.sqrt(512)
    assert phase_cost == pytest.approx(expected, rel=0.05)


def test_agrees_with_auraloss_on_one_clip() -> None:
    """auraloss takes the spectral convergence of a whole batch at once; per clip (a batch of one) they agree."""
    auraloss = pytest.importorskip("auraloss", reason="auraloss is in the bench extra")
    x, y = signals()
    windows = [128, 256, 512]
    theirs = auraloss.freq.MultiResolutionSTFTLoss(windows, [w // 4 for w in windows], windows)
    assert float(MultiResolutionSTFTLoss(windows)(x[:1], y[:1])) == pytest.approx(float(theirs(x[:1], y[:1])), rel=1e-5)


@pytest.mark.parametrize("loss", [MultiResolutionSTFTLoss((128, 512), complex_weight=1.0), MultiScaleMelLoss(8000)])
def test_gradients_are_finite_even_on_silence(loss: torch.nn.Module) -> None:
    x, y = signals()
    for target in (y, torch.zeros_like(y)):
        recon = x.clone().requires_grad_(True)
        loss(recon, target).backward()
        assert recon.grad is not None and torch.isfinite(recon.grad).all() and recon.grad.abs().sum() > 0


def test_bad_inputs_are_named() -> None:
    loss = MultiResolutionSTFTLoss((512,))
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(1, 1, 600), torch.zeros(1, 1, 601))
    with pytest.raises(ValueError, match="longer than 256 samples"):
        loss(torch.zeros(1, 1, 200), torch.zeros(1, 1, 200))
    with pytest.raises(ValueError, match="hops"):
        MultiResolutionSTFTLoss((512,), hops=(1, 2))


def test_mel_loss_gradient_stays_finite_on_silent_spans():
    """Regression: bins of exactly zero power (a reconstruction with a silent span) gave the square root an infinite
    gradient, NaN through the mel floor; a speech codec fine-tuned with the mel term diverged at step 2834. The loss
    floors each bin's power (its value unchanged: the metric, without the floor, gives the same distance)."""
    from fsq.metrics.spectral import multi_scale_mel_distance

    g = torch.Generator().manual_seed(0)
    reference = 0.1 * torch.randn(2, 8000, generator=g)
    estimate = 0.1 * torch.randn(2, 8000, generator=g)
    estimate[:, 2000:6000] = 0.0
    estimate.requires_grad_()
    loss = MultiScaleMelLoss(16000, [64, 256, 1024])
    value = loss(estimate, reference)
    value.backward()
    assert estimate.grad is not None and torch.isfinite(estimate.grad).all()
    exact = multi_scale_mel_distance(reference, estimate.detach(), 16000, [64, 256, 1024], loss.n_mels).mean()
    torch.testing.assert_close(value.detach(), exact)
    zeros = torch.zeros(1, 4000, requires_grad=True)  # an all-silent reconstruction
    loss(zeros, reference[:1, :4000]).backward()
    assert zeros.grad is not None and torch.isfinite(zeros.grad).all()
