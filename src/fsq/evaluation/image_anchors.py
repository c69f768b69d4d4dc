"""Image anchors in a tokenizer's evaluation: the naive codec, JPEG and WebP on the same held-out images, at the
bits the tokenizer spends (``eval.image_anchors``; off by default).

The tokenizer's bits per image are counted two ways: ``bits_per_image`` = tokens x indices per token x
``log2(codebook size)`` (what an ideal fixed-length code of its indices needs; 637.8 for 8 x 8 tokens of 1,000
codes) and ``code_bits_per_image`` = tokens x ``ceil`` of the bits per token (a real fixed-length code: 640). The
anchors spend ``code_bits_per_image``: the naive codec exactly, with ``ceil`` bits per position; JPEG and WebP at
the quality nearest it, by their whole file (``jpeg``, ``webp``) or their payload (``jpeg-payload``,
``webp-payload``; see :mod:`fsq.anchors.images`). Each anchor reports PSNR and SSIM (the tokenizer's own metrics,
against the same originals) and its real mean bits per image (file and payload), the mean quality it used, and
the share of images whose lowest quality still spent more than the target (``over_target_at_lowest_quality``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from fsq import distributed
from fsq.anchors.images import (
    IMAGE_ANCHORS,
    QUALITIES,
    AnchorBatch,
    anchor_spec,
    naive_bits,
    naive_bits_split,
    run_image_anchor,
)
from fsq.metrics.image import psnr, ssim
from fsq.models.autoencoder import Tokenizer
from fsq.models.baselines import tokenizer_bits_per_clip

FIELDS = ("psnr", "ssim", "bits", "payload_bits", "quality", "over", "count")


class ImageAnchorScores:
    """Sums of the image anchors' metrics over the held-out images a rank sees; :meth:`summary` after
    :meth:`all_reduce`. ``names``: anchors of :data:`fsq.anchors.images.IMAGE_ANCHORS` (unknown: a ValueError)."""

    def __init__(self, names: Sequence[str], model: Tokenizer, device: Any = "cpu"):
        for name in names:
            anchor_spec(name)  # unknown names: a ValueError listing the known ones
        if len(set(names)) != len(names):
            raise ValueError(f"eval.image_anchors lists an anchor twice: {list(names)}")
        grid = model.spec.grid_shape
        if len(grid) != 2:
            raise ValueError(f"eval.image_anchors is for image tokenizers; this one's token grid is {list(grid)}")
        self.names = list(names)
        self.channels = model.spec.in_channels
        self.grid = tuple(grid)
        self.bits_per_image = tokenizer_bits_per_clip(model)
        self.bits_per_token = math.ceil(self.bits_per_image / math.prod(grid) - 1e-9)
        self.target = naive_bits(self.grid, self.bits_per_token)
        if "naive" in self.names:
            naive_bits_split(self.bits_per_token, self.channels)  # too few bits per position: a ValueError now
        self.sums = torch.zeros(len(self.names), len(FIELDS), dtype=torch.float64, device=device)

    def update(self, x: torch.Tensor) -> None:
        """Run every anchor on ``(B, C, H, W)`` originals in ``[0, 1]`` and add their metrics."""
        x = x.float()
        for i, name in enumerate(self.names):
            batch = run_image_anchor(name, x.cpu(), self.grid, self.bits_per_token)
            decoded = batch.decoded.to(x.device)
            row = [
                psnr(decoded, x).double().clamp(max=100.0).sum().item(),
                ssim(decoded, x).double().sum().item(),
                float(batch.bits.sum()),
                float(batch.payload_bits.sum()),
                float(batch.quality.sum()),
                _over_at_lowest(name, batch, self.target),
                float(x.shape[0]),
            ]
            self.sums[i] += torch.tensor(row, dtype=torch.float64, device=self.sums.device)

    def all_reduce(self) -> None:
        distributed.all_reduce_sum(self.sums)

    def summary(self) -> dict[str, Any]:
        """``{"tokenizer": its bits, "target_bits_per_image": ..., "<anchor>": {psnr, ssim, bits...}}``."""
        out: dict[str, Any] = {
            "tokenizer": {
                "bits_per_image": self.bits_per_image,
                "code_bits_per_image": self.target,
                "token_grid": list(self.grid),
            },
            "target_bits_per_image": self.target,
        }
        for i, name in enumerate(self.names):
            s = dict(zip(FIELDS, self.sums[i].tolist(), strict=True))
            n = max(s["count"], 1.0)
            codec, measure = anchor_spec(name)
            entry: dict[str, Any] = {
                "psnr": s["psnr"] / n,
                "ssim": s["ssim"] / n,
                "bits_per_image": s["bits"] / n,
                "payload_bits_per_image": s["payload_bits"] / n,
                "num_samples": int(s["count"]),
            }
            if codec == "naive":
                entry["bits_per_channel"] = naive_bits_split(self.bits_per_token, self.channels)
                entry["upsampling"] = "bicubic"
            else:
                entry["matched_on"] = measure
                entry["mean_quality"] = s["quality"] / n
                entry["quality_range"] = list(QUALITIES[codec])
                entry["over_target_at_lowest_quality"] = s["over"] / n
            out[name] = entry
        return out


def _over_at_lowest(name: str, batch: AnchorBatch, target: int) -> float:
    """How many images of ``batch`` spent more than ``target`` bits (on the measure matched) at the lowest
    quality: the codec could not get down to the target."""
    codec, measure = anchor_spec(name)
    if codec == "naive":
        return 0.0
    matched = batch.payload_bits if measure == "payload" else batch.bits
    return float(((batch.quality == QUALITIES[codec][0]) & (matched > target)).sum())


__all__ = ["IMAGE_ANCHORS", "ImageAnchorScores"]
