"""The Stage I (tokenizer) experiment schema and its model presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from fsq.config.engine import SCHEMA_VERSION
from fsq.config.sections import OptimConfig, QuantizerConfig, TrainConfig


@dataclass(frozen=True)
class DataConfig:
    source: str = "mnist"  # mnist | fashion | photos | a folder path
    image_size: int = 28
    train_split: str = "train"
    eval_split: str = "test"
    train_limit: int | None = None  # keep the first N training images
    eval_limit: int | None = None  # evaluate on the first N held-out images (None: all)
    num_crops: int | None = None  # photos: crops per split (None: the source's default)
    channels: int | None = None  # 1 (grey) or 3 (RGB); None: the source's own
    on_error: Literal["skip", "raise"] = "skip"  # image folders: skip (and report) or raise on unreadable files
    cache_dir: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    preset: str | None = None  # a name from MODEL_PRESETS, overlaid by the keys given explicitly
    filters: int = 32
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    num_groups: int = 8  # GroupNorm groups (the paper's flax default is 32)


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # CPU-fast: 2 downsamplings (28 px -> 7x7 tokens, 16 px -> 4x4 tokens)
    "cpu-tiny": {"filters": 16, "channel_multipliers": [1, 2, 4], "num_res_blocks": 1, "num_groups": 8},
    "cpu-small": {"filters": 64, "channel_multipliers": [1, 2, 2], "num_res_blocks": 2, "num_groups": 16},
    # GPU: 3 downsamplings (64 px -> 8x8)
    "gpu-base": {"filters": 64, "channel_multipliers": [1, 2, 2, 4], "num_res_blocks": 2, "num_groups": 32},
    # the paper's MaskGIT VQGAN (vqgan_config.py): 256 px -> 16x16 tokens
    "paper": {"filters": 128, "channel_multipliers": [1, 1, 2, 2, 4], "num_res_blocks": 2, "num_groups": 32},
}


@dataclass(frozen=True)
class LossConfig:
    perceptual_weight: float = 0.0  # EfficientNet-Lite0 feature loss (not LPIPS); the paper uses 0.1 (ResNet-50)
    adversarial_weight: float = 0.0  # the paper uses 0.1
    adversarial_start: int = 0  # generator adversarial loss and discriminator training start here
    r1_weight: float = 10.0
    discriminator_channels: int = 64


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 256
    fid_samples: int = 200  # images for reconstruction FID (0 disables); Inception runs ~5 img/s on a 2-core CPU
    grid_size: int = 8  # reconstruction grid: grid_size pairs of originals and reconstructions


@dataclass(frozen=True)
class TokenizerExperiment:
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"model": MODEL_PRESETS}

    schema_version: int = SCHEMA_VERSION
    stage: Literal["tokenizer"] = "tokenizer"
    name: str = "tokenizer"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
