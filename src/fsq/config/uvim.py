"""The UViM experiment schema (task, oracle, language model) and its oracle presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from fsq.config.engine import SCHEMA_VERSION
from fsq.config.sections import LoopConfig, OptimConfig, QuantizerConfig


@dataclass(frozen=True)
class TaskConfig:
    name: Literal["depth", "colorization", "panoptic"] = "depth"
    depth_bins: int = 64  # depth: target bins over [0, max_depth]
    max_depth: float = 10.0
    max_instances: int = 8  # panoptic: instance slots per image (the scenes hold at most scene.max_objects)


@dataclass(frozen=True)
class DenseDataConfig:
    image_size: int = 32
    train_size: int = 4000  # scenes rendered / photo crops for training
    eval_size: int = 500
    min_objects: int = 1  # scenes
    max_objects: int = 5
    cache_dir: str | None = None  # photos (colorization)


@dataclass(frozen=True)
class OracleConfig:
    preset: str | None = None  # a name from ORACLE_PRESETS, overlaid by the keys given explicitly
    patch: int = 4
    width: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.0
    code_grid: int = 4  # code positions per side (the paper: 16 x 16 = 256 codes)
    use_context: bool = True  # the image as context for encoder and decoder (the paper's ablation turns it off)
    code_dropout: bool = True


ORACLE_PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": {"patch": 4, "width": 128, "encoder_depth": 2, "decoder_depth": 2, "heads": 4, "mlp_dim": 512},
    # big_vision uvim vit.py: 512 px, patch 16, width 768, encoder 6, decoder 12, 12 heads, 16 x 16 codes
    "paper": {
        "patch": 16,
        "width": 768,
        "encoder_depth": 6,
        "decoder_depth": 12,
        "heads": 12,
        "mlp_dim": 3072,
        "code_grid": 16,
    },
}


@dataclass(frozen=True)
class LanguageModelConfig:
    patch: int = 4
    width: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1


@dataclass(frozen=True)
class UViMTrainConfig(LoopConfig):
    """Two phases in one run dir: the oracle's steps, then the language model's."""

    log_every: int = 50
    oracle_steps: int = 1000
    lm_steps: int = 1000


@dataclass(frozen=True)
class UViMEvalConfig:
    batch_size: int = 250
    fid_samples: int = 0  # colorization: Inception FID of this many predictions vs the real photos (0: skip)
    grid_size: int = 8


@dataclass(frozen=True)
class UViMExperiment:
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"model": ORACLE_PRESETS}

    schema_version: int = SCHEMA_VERSION
    stage: Literal["uvim"] = "uvim"
    name: str = "uvim"
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DenseDataConfig = field(default_factory=DenseDataConfig)
    model: OracleConfig = field(default_factory=OracleConfig)
    quantizer: QuantizerConfig = field(  # the paper's FSQ [7,5,5,5,5]; VQ: 4096 codes, UViM recipe
        default_factory=lambda: QuantizerConfig(levels=[7, 5, 5, 5, 5], codebook_size=4096, dim=128, recipe="uvim")
    )
    lm: LanguageModelConfig = field(default_factory=LanguageModelConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, beta1=0.9, beta2=0.95, weight_decay=1e-5, warmup_steps=100)
    )
    lm_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, beta1=0.9, beta2=0.95, weight_decay=1e-6, warmup_steps=100)
    )
    train: UViMTrainConfig = field(default_factory=UViMTrainConfig)
    eval: UViMEvalConfig = field(default_factory=UViMEvalConfig)
