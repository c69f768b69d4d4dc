"""Video metrics on hand-made clips: per-frame PSNR and SSIM, the error of frame differences and its PSNR form,
and their accumulation over batches."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.metrics.video import (
    ClipScores,
    frame_psnr,
    frame_ssim,
    frames_as_images,
    images_as_frames,
    temporal_error,
    temporal_psnr,
)


def _clip(*frames: float, size: int = 12) -> torch.Tensor:
    """One grey clip (1, 1, T, size, size) of constant frames."""
    return torch.tensor(frames, dtype=torch.float64).view(1, 1, -1, 1, 1).expand(1, 1, -1, size, size).clone()


def test_frame_psnr_per_frame_hand_computed():
    x = _clip(0.0, 0.0, 0.5)
    y = _clip(0.1, 0.01, 0.5)  # MSE 0.01 -> 20 dB, 1e-4 -> 40 dB, 0 -> capped at 100 dB
    assert frame_psnr(x, y).tolist() == [pytest.approx([20.0, 40.0, 100.0], abs=1e-9)]


def test_frame_ssim_of_constant_frames_is_the_luminance_term():
    x, y = _clip(0.5, 0.5), _clip(0.5, 0.6)
    # constant frames: no variance, so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1), C1 = (0.01)^2
    c1 = 1e-4
    expected = (2 * 0.5 * 0.6 + c1) / (0.25 + 0.36 + c1)
    assert frame_ssim(x, y).tolist() == [pytest.approx([1.0, expected], abs=1e-12)]


def test_temporal_error_of_a_constant_offset_is_zero_and_of_a_slower_motion_is_the_gap():
    x = _clip(0.0, 0.5, 1.0)
    assert temporal_error(x, x + 0.2).item() == pytest.approx(0.0, abs=1e-12)  # moves as the original
    y = _clip(0.0, 0.25, 0.5)  # half the change per frame: |0.5 - 0.25| every step
    assert temporal_error(x, y).item() == pytest.approx(0.25, abs=1e-12)
    assert temporal_psnr(x, y).item() == pytest.approx(10 * math.log10(1 / 0.0625), abs=1e-9)  # 12.04 dB
    assert temporal_psnr(x, x + 0.2).item() == 100.0  # capped


def test_flicker_scores_well_per_frame_but_badly_in_time():
    x = _clip(0.5, 0.5, 0.5, 0.5)
    flicker = _clip(0.6, 0.4, 0.6, 0.4)  # every frame 0.1 off: 20 dB each
    steady = _clip(0.6, 0.6, 0.6, 0.6)  # the same per-frame error, no flicker
    assert frame_psnr(x, flicker).mean().item() == pytest.approx(frame_psnr(x, steady).mean().item())
    assert temporal_error(x, flicker).item() == pytest.approx(0.2, abs=1e-12)
    assert temporal_error(x, steady).item() == pytest.approx(0.0, abs=1e-12)


def test_frames_round_trip_clip_major():
    clips = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).view(2, 3, 4, 2, 2)
    images = frames_as_images(clips)
    assert images.shape == (8, 3, 2, 2) and torch.equal(images[5], clips[1, :, 1])
    assert torch.equal(images_as_frames(images, 4), clips)


def test_clip_scores_accumulate_means_and_curves():
    scores = ClipScores(frames=2)
    scores.update(_clip(0.0, 0.0), _clip(0.1, 0.01))  # 20, 40 dB
    scores.update(_clip(0.0, 0.0), _clip(0.01, 0.01))  # 40, 40 dB
    s = scores.summary()
    assert s["num_clips"] == 2
    assert s["psnr_per_frame"] == pytest.approx([30.0, 40.0])
    assert s["psnr"] == pytest.approx(35.0)
    assert s["l1"] == pytest.approx((0.055 + 0.01) / 2)
    assert s["temporal_l1"] == pytest.approx((0.09 + 0.0) / 2)
    assert len(s["ssim_per_frame"]) == 2 and s["ssim"] == pytest.approx(sum(s["ssim_per_frame"]) / 2)
    single = ClipScores(frames=1)
    single.update(_clip(0.0), _clip(0.1))
    assert single.summary()["temporal_l1"] is None  # one frame: no frame differences


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\) clip batches of equal shape"):
        frame_psnr(torch.rand(1, 1, 2, 4, 4), torch.rand(1, 1, 3, 4, 4))
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal_error(_clip(0.1), _clip(0.2))
    with pytest.raises(ValueError, match="clips of 3 frames added to scores of 2-frame clips"):
        ClipScores(frames=2).update(_clip(0.1, 0.1, 0.1), _clip(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="no clips"):
        ClipScores(frames=2).summary()
