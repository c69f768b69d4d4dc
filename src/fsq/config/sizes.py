"""Image sizes checked against the model before anything runs: a token grid of at least 2x2, a sane upper bound, and
a lower bound of the training memory that this machine must hold (torch-free: configs import no torch).

Found up front, as a :class:`~fsq.config.engine.ConfigError` naming the keys, instead of a 1x1 token grid that
trains and evaluates silently, or an allocator failure minutes into a run.
"""

from __future__ import annotations

import os

from fsq.config.engine import ConfigError

MAX_IMAGE_SIZE = 4096  # px per side: 16x the paper's 256 px; larger sizes are refused at load
MIN_TOKEN_GRID = 2  # tokens per side: a 1x1 grid is no image model


def token_grid(image_size: int, downsamplings: int) -> int:
    """Tokens per side after ``downsamplings`` stride-2 stages (each rounds up: 28 -> 14 -> 7)."""
    for _ in range(downsamplings):
        image_size = (image_size + 1) // 2
    return image_size


def physical_memory() -> int | None:
    """This machine's memory in bytes (``None`` when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_image_size(image_size: int, downsamplings: int, batch_size: int, first_width: int, what: str) -> None:
    """Refuse ``data.image_size`` when it is above :data:`MAX_IMAGE_SIZE`, gives a token grid under 2x2 through
    ``downsamplings`` (``what``: the keys that set them), or when the first layer's activations of one training
    batch alone (``batch_size`` x ``first_width`` x size^2 x 4 bytes, a lower bound of what training needs) exceed
    this machine's memory."""
    if image_size > MAX_IMAGE_SIZE:
        raise ConfigError(f"data.image_size={image_size} is above the largest supported size, {MAX_IMAGE_SIZE} px")
    grid = token_grid(image_size, downsamplings)
    if grid < MIN_TOKEN_GRID:
        smallest = next(s for s in range(1, MAX_IMAGE_SIZE + 1) if token_grid(s, downsamplings) >= MIN_TOKEN_GRID)
        raise ConfigError(
            f"data.image_size={image_size} gives a {grid}x{grid} token grid after the {downsamplings} "
            f"downsampling(s) of {what}: use data.image_size >= {smallest} (or fewer downsamplings)"
        )
    needed, memory = batch_size * first_width * image_size**2 * 4, physical_memory()
    if memory is not None and needed > memory:
        raise ConfigError(
            f"data.image_size={image_size} with train.batch_size={batch_size} needs at least {needed / 2**30:.1f} "
            f"GiB for the first layer's activations alone ({batch_size} x {first_width} channels x {image_size}^2 "
            f"x 4 bytes), more than this machine's {memory / 2**30:.1f} GiB: lower data.image_size or "
            "train.batch_size"
        )
