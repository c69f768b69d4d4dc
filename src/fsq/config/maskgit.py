"""The Stage II (class-conditional MaskGIT) experiment schema and its transformer presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from fsq.config.engine import SCHEMA_VERSION
from fsq.config.sections import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    OptimConfig,
    PositiveFloat,
    PositiveInt,
    RunName,
    TrainConfig,
    require,
)


@dataclass(frozen=True)
class TokenDataConfig:
    tokenizer: str = ""  # the Stage I run dir: decodes samples; tokenizes the data when `tokens` is not given
    tokenizer_config: str | None = None  # the Stage I config that trains `tokenizer` (used by `fsq study maskgit`)
    tokens: str | None = None  # a `fsq tokenize` folder of the training split (None: tokenize into the run dir)
    train_split: str = "train"
    eval_split: str = "test"  # held-out tokens for the compression cost
    train_limit: PositiveInt | None = None
    # codes that are not one small index per position (fsq.generation.token_layout): a residual tokenizer's leading
    # `stages` (None: all) as one more token axis, and FSQ indices written as `groups` digits of equal channel blocks
    stages: PositiveInt | None = None
    groups: PositiveInt = 1
    windows: bool = False  # time signals: every whole crop of each training clip, not only its centred one


@dataclass(frozen=True)
class TransformerConfig:
    preset: str | None = None  # a name from TRANSFORMER_PRESETS, overlaid by the keys given explicitly
    width: PositiveInt = 128
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    mlp_dim: PositiveInt = 512
    dropout: Fraction = 0.1
    norm_first: bool = True  # pre-LN; false: BERT post-LN as MaskGIT
    # table: a learned embedding per grid position (the paper's; any grid); axes: one per axis and index, summed
    # (t + h + w vectors instead of t * h * w: long 3-D token grids)
    positions: Literal["table", "axes"] = "table"


TRANSFORMER_PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": {"width": 128, "depth": 4, "heads": 4, "mlp_dim": 512, "dropout": 0.1, "norm_first": True},
    "cpu-small": {"width": 256, "depth": 6, "heads": 8, "mlp_dim": 1024, "dropout": 0.1, "norm_first": True},
    "gpu-base": {"width": 512, "depth": 12, "heads": 8, "mlp_dim": 2048, "dropout": 0.1, "norm_first": True},
    # maskgit_class_cond_config.py: BERT post-LN, 24 layers, 768 wide, 16 heads, MLP 3072
    "paper": {"width": 768, "depth": 24, "heads": 16, "mlp_dim": 3072, "dropout": 0.1, "norm_first": False},
}


@dataclass(frozen=True)
class MaskingConfig:
    schedule: Literal["cosine", "linear", "square", "cubic", "sqrt"] = "cosine"
    min_ratio: Fraction = 0.45  # at least this fraction of tokens masked in every training batch (paper App. A.4.2)
    label_drop: Fraction = 0.1  # fraction of class labels replaced by MASK (classifier-free guidance)
    label_smoothing: Fraction = 0.1
    class_conditional: bool = True
    # frame prediction (MAGVIT's task): the first N latent frames of video token grids (t, h, w) are given, never
    # masked in training nor scored by the loss; sampling keeps them fixed and predicts the rest (0: off)
    condition_frames: NonNegativeInt = 0


@dataclass(frozen=True)
class SamplingEvalConfig:
    num_samples: PositiveInt = 1000  # samples (spread over the classes) for class accuracy, usage and FID
    steps: PositiveInt = 12
    choice_temperature: NonNegativeFloat = 4.5  # the paper's value for 256 tokens; small grids do better near 1-2
    temperature: PositiveFloat = 1.0
    guidance: list[float] = field(default_factory=lambda: [0.0, 1.0])  # CFG weights evaluated (0: none)
    fid_samples: NonNegativeInt = 500  # of the samples, how many go into sampling FID / precision / recall (0: skip)
    fid_guidance: list[float] | None = None  # the CFG weights that get FID / P / R (None: all; Inception is slow)
    pr_k: PositiveInt = 3  # nearest neighbours of the precision / recall manifolds (ADM suite)
    reference_split: str | None = None  # real images FID, judge FD and P / R compare with (None: train, FID-train)
    classifier_steps: PositiveInt = 1000  # training steps of the class judge (cached per data source and steps)
    # what the voice judge of voice-conditioned speech trains on: real clips, or the tokenizer's reconstructions
    # of them (a judge that hears through the codec's artefacts; cached per tokenizer)
    judge_data: Literal["clips", "reconstructions"] = "clips"
    speed_steps: list[int] = field(default_factory=lambda: [1, 4, 8, 12])  # sampling speed measured for each T
    speed_batch: PositiveInt = 100
    compression_steps: PositiveInt = 12  # M2T deterministic schedule (power alpha, QLDS order)
    compression_alpha: PositiveFloat = 2.2
    compression_samples: NonNegativeInt = 1000  # held-out token grids for the compression cost (0: skip)
    batch_size: PositiveInt = 250
    grid_per_class: PositiveInt = 10  # images per class in the sample grid
    seed: NonNegativeInt = 0


@dataclass(frozen=True)
class MaskGITExperiment:
    description: ClassVar[str] = "Stage II: a class-conditional MaskGIT over a tokenizer's tokens"
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"model": TRANSFORMER_PRESETS}

    schema_version: int = SCHEMA_VERSION
    stage: Literal["maskgit"] = "maskgit"
    name: RunName = "maskgit"
    data: TokenDataConfig = field(default_factory=TokenDataConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optim: OptimConfig = field(  # maskgit_class_cond_config.py: AdamW(0.9, 0.96), wd 0.045, lr 1e-4, 5k warmup
        default_factory=lambda: OptimConfig(lr=1e-4, beta1=0.9, beta2=0.96, weight_decay=0.045, warmup_steps=5000)
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: SamplingEvalConfig = field(default_factory=SamplingEvalConfig)

    @property
    def fid_images(self) -> int:
        """Images evaluation sends through the Inception network: the samples kept for FID, when they are more
        than the precision / recall neighbours (0: none)."""
        n = min(self.eval.fid_samples, self.eval.num_samples)
        return n if n > self.eval.pr_k else 0

    def __post_init__(self) -> None:
        m, e = self.model, self.eval
        require(m.width % m.heads == 0, f"model.heads={m.heads} must divide model.width={m.width}")
        missing = [g for g in e.fid_guidance or [] if g not in e.guidance]
        require(not missing, f"eval.fid_guidance {missing} must be among eval.guidance {e.guidance}")
