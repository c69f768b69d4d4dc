"""The UViM experiment schema (task, oracle, language model) and its oracle presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from fsq.config.engine import SCHEMA_VERSION
from fsq.config.sections import (
    Fraction,
    LoopConfig,
    NonNegativeInt,
    OptimConfig,
    PositiveFloat,
    PositiveInt,
    QuantizerConfig,
    RunName,
    require,
)
from fsq.config.sizes import MAX_IMAGE_SIZE
from fsq.quantizers.registry import FSQSection, VQSection


@dataclass(frozen=True)
class TaskConfig:
    name: Literal["depth", "colorization", "panoptic"] = "depth"
    depth_bins: PositiveInt = 64  # depth: target bins over [0, max_depth]
    max_depth: PositiveFloat = 10.0
    max_instances: PositiveInt = 8  # panoptic: instance slots per image (the scenes hold at most scene.max_objects)


@dataclass(frozen=True)
class DenseDataConfig:
    image_size: PositiveInt = 32
    train_size: PositiveInt = 4000  # scenes rendered / photo crops for training
    eval_size: PositiveInt = 500
    eval_split: Literal["val", "test"] = "test"  # tune on val, report on test (disjoint scene seeds / photo crops)
    seed: NonNegativeInt = 0  # the data's seed: fixed while train.seed varies, so seeds share train and test data
    min_objects: NonNegativeInt = 1  # scenes
    max_objects: PositiveInt = 5
    cache_dir: str | None = None  # photos (colorization)


@dataclass(frozen=True)
class OracleConfig:
    preset: str | None = None  # a name from ORACLE_PRESETS, overlaid by the keys given explicitly
    patch: PositiveInt = 4
    width: PositiveInt = 128
    encoder_depth: PositiveInt = 2
    decoder_depth: PositiveInt = 2
    heads: PositiveInt = 4
    mlp_dim: PositiveInt = 512
    dropout: Fraction = 0.0
    code_grid: PositiveInt = 4  # code positions per side (the paper: 16 x 16 = 256 codes)
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
    patch: PositiveInt = 4
    width: PositiveInt = 128
    encoder_depth: PositiveInt = 2
    decoder_depth: PositiveInt = 2
    heads: PositiveInt = 4
    mlp_dim: PositiveInt = 512
    dropout: Fraction = 0.1


@dataclass(frozen=True)
class UViMTrainConfig(LoopConfig):
    """Two phases in one run dir: the oracle's steps, then the language model's."""

    log_every: PositiveInt = 50
    oracle_steps: PositiveInt = 1000
    lm_steps: PositiveInt = 1000


@dataclass(frozen=True)
class UViMEvalConfig:
    batch_size: PositiveInt = 250
    # colorization: Inception FID of this many predictions against as many reference crops of other photos than
    # the predictions' ground truths (ColTran's protocol: a disjoint reference set); 0 skips
    fid_samples: NonNegativeInt = 0
    grid_size: PositiveInt = 8


@dataclass(frozen=True)
class UViMExperiment:
    description: ClassVar[str] = (
        "UViM: a restricted oracle of a dense task's targets, then a language model of its codes"
    )
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"model": ORACLE_PRESETS}
    # the defaults of a quantizer section of another kind than the default's: the paper's UViM VQ (4096 codes,
    # EMA, l2-normalised, codebook splitting)
    section_defaults: ClassVar[dict[str, tuple[Any, ...]]] = {
        "quantizer": (VQSection(codebook_size=4096, dim=128, recipe="uvim"),)
    }

    schema_version: int = SCHEMA_VERSION
    stage: Literal["uvim"] = "uvim"
    name: RunName = "uvim"
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DenseDataConfig = field(default_factory=DenseDataConfig)
    model: OracleConfig = field(default_factory=OracleConfig)
    quantizer: QuantizerConfig = field(  # the paper's FSQ [7,5,5,5,5]; VQ: see section_defaults
        default_factory=lambda: FSQSection(levels=[7, 5, 5, 5, 5])
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

    @property
    def fid_images(self) -> int:
        """Images evaluation sends through the Inception network: colorization's FID samples (0: none)."""
        n = self.eval.fid_samples
        return n if self.task.name == "colorization" and n > 1 else 0

    def __post_init__(self) -> None:
        size, d = self.data.image_size, self.data
        require(size <= MAX_IMAGE_SIZE, f"data.image_size={size} is above the supported maximum ({MAX_IMAGE_SIZE})")
        for name, part in (("model", self.model), ("lm", self.lm)):
            require(size % part.patch == 0, f"{name}.patch={part.patch} must divide data.image_size={size}")
            require(part.width % part.heads == 0, f"{name}.heads={part.heads} must divide {name}.width={part.width}")
        require(d.min_objects <= d.max_objects, f"data.min_objects={d.min_objects} > data.max_objects={d.max_objects}")
