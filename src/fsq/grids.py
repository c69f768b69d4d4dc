"""The one image-grid writer: rows of images as a PNG (reconstructions, samples per class, predictions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from fsq import storage


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) float in [0, 1] (clamped) or uint8 -> uint8 RGB on the CPU (grey repeated to 3 channels)."""
    images = images if images.dtype == torch.uint8 else (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
    images = images.cpu()
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


def save_grid(
    rows: Sequence[torch.Tensor],
    path: str | Path,
    *,
    columns: int | None = None,
    fit: tuple[Literal["width", "height"], int] = ("width", 640),
) -> None:
    """Write ``rows`` (each (B, C, H, W), float [0, 1] or uint8) as one PNG, a 1-px white frame around each tile.

    Rows shorter than ``columns`` (default: the longest row) are filled with white; the grid is upscaled by the
    integer factor ``max(1, fit[1] // size)`` of its ``fit[0]`` side (nearest neighbour), so small images stay
    visible.
    """
    from PIL import Image

    grid = grid_array(rows, columns)
    side, target = fit
    scale = max(1, target // grid.shape[1 if side == "width" else 0])
    image = Image.fromarray(grid)
    with storage.writing(path, path, what="image"):  # a full disk: no half-written PNG, the path in the error
        image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST).save(path)


def grid_array(rows: Sequence[torch.Tensor], columns: int | None = None) -> np.ndarray:
    """``rows`` (each (B, C, H, W)) as one uint8 (H, W, 3) array, a 1-px white frame around each tile (what
    :func:`save_grid` writes before upscaling; TensorBoard takes it as it is)."""
    columns = columns or max(row.shape[0] for row in rows)
    lines = []
    for row in rows:
        row = to_uint8(row)[:columns]
        padded = torch.full((columns, 3, row.shape[2] + 2, row.shape[3] + 2), 255, dtype=torch.uint8)
        padded[: row.shape[0], :, 1:-1, 1:-1] = row
        lines.append(torch.cat(list(padded), dim=2))
    return np.ascontiguousarray(torch.cat(lines, dim=1).permute(1, 2, 0).numpy())
