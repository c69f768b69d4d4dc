"""Monocular depth as a UViM task: per-pixel classification over uniform depth bins.

As in UViM's NYU Depth v2 setup (big_vision ``configs/proj/uvim/vqvae_nyu_depth.py``), depth is quantized into
``bins`` uniform bins spanning ``[min_depth, max_depth]`` metres (UViM: 256 bins of [1e-3, 10]; here 64 bins of
[0, 10] by default, bin width 0.156 m). Bin ``k`` covers ``[min_depth + k w, min_depth + (k + 1) w)`` with
``w = (max_depth - min_depth) / bins``; depths outside the range go to the first or last bin, so the round trip
``decode_prediction(encode_target(batch))`` is exact to half a bin inside the range (a depth of exactly
``max_depth``, e.g. sky, falls in the last bin).

    oracle input    one-hot of the bin index, (B, bins, H, W)
    loss            softmax cross-entropy over bins, target = bin index, mean over pixels
    decode          ``decode="argmax"`` (default, UViM's): the centre of the most likely bin, so a one-hot input
                    decodes to its bin centre; ``decode="expectation"``: the softmax-weighted mean of the bin
                    centres, usually a lower RMSE for a trained model's soft outputs (it interpolates between
                    bins), but it reads the output as logits, so a one-hot given as logits decodes near the middle
                    of the range: scale it (e.g. 50 x one-hot) to round-trip
    metrics         ``fsq.metrics.dense.depth_metrics`` over pixels with target > 0 (rmse per image,
                    averaged; rmse_global, abs_rel, log10, delta1..3)
    baseline        the per-pixel mean depth map of the training set
    context         the RGB image
    visualize       matplotlib's 'viridis' colour map of depth / max_depth
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from fsq.metrics.dense import depth_metrics
from fsq.tasks.base import Task

DECODE_MODES = ("argmax", "expectation")


@functools.lru_cache(maxsize=4)
def colormap_table(name: str = "viridis", size: int = 256) -> torch.Tensor:
    """(size, 3) uint8 colours of a matplotlib colour map (matplotlib loads on first use)."""
    import matplotlib

    table = matplotlib.colormaps[name](torch.linspace(0, 1, size).numpy())[:, :3]
    return torch.from_numpy(table * 255).round().to(torch.uint8)


class DepthTask(Task):
    """Depth in metres from an RGB image, learned as classification over ``bins`` uniform depth bins.

    Args:
        bins: number of depth bins (the oracle's output channels).
        min_depth, max_depth: the range the bins span, metres.
        decode: ``"argmax"`` (bin centre of the most likely bin) or ``"expectation"`` (softmax mean of bin centres).
    """

    name = "depth"

    def __init__(self, bins: int = 64, min_depth: float = 0.0, max_depth: float = 10.0, decode: str = "argmax"):
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"depth task: bins must be an int >= 2, got {bins!r}")
        if not 0 <= min_depth < max_depth:
            raise ValueError(f"depth task: needs 0 <= min_depth < max_depth, got {min_depth!r}, {max_depth!r}")
        if decode not in DECODE_MODES:
            raise ValueError(f"depth task: decode must be one of {DECODE_MODES}, got {decode!r}")
        self.bins, self.min_depth, self.max_depth, self.decode = bins, float(min_depth), float(max_depth), decode
        self.output_channels = bins
        self.options = {"bins": bins, "min_depth": self.min_depth, "max_depth": self.max_depth, "decode": decode}

    @property
    def bin_width(self) -> float:
        return (self.max_depth - self.min_depth) / self.bins

    def bin_centers(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(bins,) float32 centres of the bins, metres."""
        return self.min_depth + (torch.arange(self.bins, device=device, dtype=torch.float32) + 0.5) * self.bin_width

    def bin_index(self, depth: torch.Tensor) -> torch.Tensor:
        """int64 bin of each depth (same shape); out-of-range depths go to the first / last bin."""
        index = torch.floor((depth.double() - self.min_depth) / self.bin_width)
        return index.clamp(0, self.bins - 1).long()

    def _depth(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        depth = self.field(batch, "depth", channels=1)
        if not torch.isfinite(depth).all():
            raise ValueError("depth task: batch['depth'] has NaN or infinite values")
        return depth

    def encode_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        index = self.bin_index(self._depth(batch)[:, 0])
        return F.one_hot(index, self.bins).permute(0, 3, 1, 2).float()

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check_output(out, batch)
        return F.cross_entropy(out.float(), self.bin_index(self._depth(batch)[:, 0]))

    def decode_prediction(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_output(out)
        centers = self.bin_centers(out.device)
        if self.decode == "argmax":
            depth = centers[out.argmax(dim=1)]
        else:
            depth = torch.einsum("bkhw,k->bhw", out.float().softmax(dim=1), centers)
        return {"depth": depth.unsqueeze(1)}

    def metrics(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, float]:
        target = self._depth(batch)
        return depth_metrics(pred["depth"], target, valid=target > 0)

    def baseline(self, batch: dict[str, torch.Tensor], train_batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mean = self._depth(train_batch).float().mean(dim=0, keepdim=True)
        image = self.field(batch, "image", channels=3)
        if mean.shape[2:] != image.shape[2:]:
            raise ValueError(f"depth task: training depth {tuple(mean.shape[2:])} vs images {tuple(image.shape[2:])}")
        return {"depth": mean.expand(image.shape[0], -1, -1, -1).clone()}

    def visualize(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        depth = pred["depth"]
        if depth.ndim != 4 or depth.shape[1] != 1:
            raise ValueError(f"depth task: pred['depth'] must be (B, 1, H, W), got {tuple(depth.shape)}")
        table = colormap_table("viridis").to(depth.device)
        level = (depth[:, 0].float() / self.max_depth).clamp(0, 1) * (len(table) - 1)
        return table[level.round().long()].permute(0, 3, 1, 2).contiguous()
