"""Video metrics: PSNR and SSIM of each frame, and the temporal consistency of a reconstruction.

Pure functions on clip batches ``(B, C, T, H, W)`` in ``[0, 1]`` (any real dtype; computed in float64):

- :func:`frame_psnr`: ``10 log10(1 / MSE)`` of each frame, MSE over (C, H, W); capped at 100 dB -> ``(B, T)``.
- :func:`frame_ssim`: :func:`fsq.metrics.image.ssim` of each frame (Wang et al. 2004, 11x11 Gaussian window,
  smaller windows on frames below 11 px) -> ``(B, T)``.
- :func:`temporal_error`: the error of frame differences, ``mean |(x[t+1] - x[t]) - (y[t+1] - y[t])|`` over
  (C, T - 1, H, W) of each clip -> ``(B,)``. Zero when the reconstruction moves exactly as the original (even
  with a constant offset in every frame); a reconstruction that is right in each frame on average but flickers
  scores badly here.
- :func:`temporal_psnr`: its PSNR form, ``10 log10(1 / mean(((x[t+1] - x[t]) - (y[t+1] - y[t]))^2))`` with peak 1
  (the frames' range, as frame PSNR; the differences themselves span ``[-1, 1]``), capped at 100 dB -> ``(B,)``.

Clip-level scores are the mean over a clip's frames; datasets report the mean over clips. FVD (the Frechet
distance of I3D video features) is not here: its I3D weights do not install offline.
"""

from __future__ import annotations

import torch

from fsq.metrics.image import ssim

PSNR_CAP = 100.0  # dB: identical frames (MSE 0) score this instead of +inf


def _check_clips(x: torch.Tensor, y: torch.Tensor, what: str, min_frames: int = 1) -> None:
    if x.ndim != 5 or x.shape != y.shape:
        raise ValueError(
            f"{what} needs two (B, C, T, H, W) clip batches of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[2] < min_frames:
        raise ValueError(f"{what} needs clips of at least {min_frames} frames, got T={x.shape[2]}")


def frames_as_images(clips: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) clips -> (B T, C, H, W) images, clip-major (clip 0's frames first)."""
    if clips.ndim != 5:
        raise ValueError(f"clips must be (B, C, T, H, W), got shape {tuple(clips.shape)}")
    b, c, t, h, w = clips.shape
    return clips.transpose(1, 2).reshape(b * t, c, h, w)


def images_as_frames(images: torch.Tensor, frames: int) -> torch.Tensor:
    """The inverse of :func:`frames_as_images`: (B T, C, H, W) -> (B, C, T, H, W)."""
    if images.ndim != 4 or images.shape[0] % frames:
        raise ValueError(f"images must be (B * {frames}, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    return images.reshape(n // frames, frames, c, h, w).transpose(1, 2)


def frame_psnr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each frame of video batches (B, C, T, H, W) in ``[0, 1]``: (B, T), capped at 100 dB."""
    _check_clips(reference, estimate, "frame_psnr")
    mse = (reference.double() - estimate.double()).square().mean(dim=(1, 3, 4))
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=PSNR_CAP)


def frame_ssim(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """SSIM of each frame of video batches (B, C, T, H, W) in ``[0, 1]``: (B, T) float64."""
    _check_clips(reference, estimate, "frame_ssim")
    b, _, t = reference.shape[:3]
    return ssim(frames_as_images(reference), frames_as_images(estimate), data_range=1.0).view(b, t)


def _difference_error(reference: torch.Tensor, estimate: torch.Tensor, what: str) -> torch.Tensor:
    _check_clips(reference, estimate, what, min_frames=2)
    x, y = reference.double(), estimate.double()
    return (x[:, :, 1:] - x[:, :, :-1]) - (y[:, :, 1:] - y[:, :, :-1])  # (B, C, T - 1, H, W)


def temporal_error(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of frame differences of each clip (B,): ``mean |dx - dy|``, ``d`` the step t -> t+1."""
    return _difference_error(reference, estimate, "temporal_error").abs().flatten(1).mean(1)


def temporal_psnr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of the frame differences of each clip (B,): peak 1, capped at 100 dB."""
    mse = _difference_error(reference, estimate, "temporal_psnr").square().flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=PSNR_CAP)


class ClipScores:
    """Sums of every clip metric above over clip batches, for means over a split: :meth:`update` with each batch,
    all-reduce :attr:`sums` across ranks if distributed, then :meth:`summary`.

    Args:
        frames: T, the frames of every clip (fixes the length of the per-frame curves).
        device: where the sums live (the clips' device).
    """

    FIELDS = ("psnr", "ssim", "l1", "temporal_l1", "temporal_psnr", "count")

    def __init__(self, frames: int, device: torch.device | str | None = None) -> None:
        if frames < 1:
            raise ValueError(f"frames must be positive, got {frames}")
        self.frames = int(frames)
        self.sums = torch.zeros(len(self.FIELDS) + 2 * self.frames, dtype=torch.float64, device=device)

    def update(self, reference: torch.Tensor, estimate: torch.Tensor) -> None:
        """Add a batch of (B, C, T, H, W) originals and their reconstructions in ``[0, 1]``."""
        _check_clips(reference, estimate, "ClipScores.update")
        if reference.shape[2] != self.frames:
            raise ValueError(f"clips of {reference.shape[2]} frames added to scores of {self.frames}-frame clips")
        psnr, ssim_ = frame_psnr(reference, estimate), frame_ssim(reference, estimate)
        s, n = self.sums, len(self.FIELDS)
        s[0] += psnr.mean(1).sum()
        s[1] += ssim_.mean(1).sum()
        s[2] += (reference - estimate).abs().flatten(1).mean(1).double().sum()  # in the clips' dtype, as images
        if self.frames > 1:
            s[3] += temporal_error(reference, estimate).sum()
            s[4] += temporal_psnr(reference, estimate).sum()
        s[5] += reference.shape[0]
        s[n : n + self.frames] += psnr.sum(0)
        s[n + self.frames :] += ssim_.sum(0)

    def summary(self) -> dict[str, float | list[float] | int | None]:
        """Means over the clips added: ``psnr`` and ``ssim`` (per frame, then over frames and clips), ``l1``,
        ``temporal_l1`` and ``temporal_psnr`` (None for one-frame clips), the curves ``psnr_per_frame`` and
        ``ssim_per_frame`` (one mean per frame position) and ``num_clips``."""
        values = self.sums.tolist()
        count, n = values[5], len(self.FIELDS)
        if count == 0:
            raise ValueError("ClipScores.summary: no clips were added")
        temporal = self.frames > 1
        return {
            "psnr": values[0] / count,
            "ssim": values[1] / count,
            "l1": values[2] / count,
            "temporal_l1": values[3] / count if temporal else None,
            "temporal_psnr": values[4] / count if temporal else None,
            "psnr_per_frame": [v / count for v in values[n : n + self.frames]],
            "ssim_per_frame": [v / count for v in values[n + self.frames :]],
            "num_clips": int(count),
        }
