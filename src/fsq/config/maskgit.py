"""The Stage II (class-conditional MaskGIT) experiment schema and its transformer presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from fsq.config.engine import SCHEMA_VERSION
from fsq.config.sections import OptimConfig, TrainConfig


@dataclass(frozen=True)
class TokenDataConfig:
    tokenizer: str = ""  # the Stage I run dir: decodes samples; tokenizes the data when `tokens` is not given
    tokenizer_config: str | None = None  # the Stage I config that trains `tokenizer` (used by `fsq study maskgit`)
    tokens: str | None = None  # a `fsq tokenize` folder of the training split (None: tokenize into the run dir)
    train_split: str = "train"
    eval_split: str = "test"  # held-out tokens for the compression cost
    train_limit: int | None = None


@dataclass(frozen=True)
class TransformerConfig:
    preset: str | None = None  # a name from TRANSFORMER_PRESETS, overlaid by the keys given explicitly
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    norm_first: bool = True  # pre-LN; false: BERT post-LN as MaskGIT


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
    min_ratio: float = 0.45  # at least this fraction of tokens masked in every training batch (paper App. A.4.2)
    label_drop: float = 0.1  # fraction of class labels replaced by MASK (classifier-free guidance)
    label_smoothing: float = 0.1
    class_conditional: bool = True


@dataclass(frozen=True)
class SamplingEvalConfig:
    num_samples: int = 1000  # samples (spread over the classes) for class accuracy, usage and FID
    steps: int = 12
    choice_temperature: float = 4.5  # the paper's value for 256 tokens; small grids do better near 1-2
    temperature: float = 1.0
    guidance: list[float] = field(default_factory=lambda: [0.0, 1.0])  # CFG weights evaluated (0: none)
    fid_samples: int = 500  # of the samples, how many go into sampling FID / precision / recall (0: skip)
    fid_guidance: list[float] | None = None  # the CFG weights that get FID / P / R (None: all; Inception is slow)
    pr_k: int = 3  # nearest neighbours of the precision / recall manifolds (ADM suite)
    classifier_steps: int = 1000  # training steps of the class judge (cached per data source and steps)
    speed_steps: list[int] = field(default_factory=lambda: [1, 4, 8, 12])  # sampling speed measured for each T
    speed_batch: int = 100
    compression_steps: int = 12  # M2T deterministic schedule (power alpha, QLDS order)
    compression_alpha: float = 2.2
    compression_samples: int = 1000  # held-out token grids for the compression cost (0: skip)
    batch_size: int = 250
    grid_per_class: int = 10  # images per class in the sample grid
    seed: int = 0


@dataclass(frozen=True)
class MaskGITExperiment:
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"model": TRANSFORMER_PRESETS}

    schema_version: int = SCHEMA_VERSION
    stage: Literal["maskgit"] = "maskgit"
    name: str = "maskgit"
    data: TokenDataConfig = field(default_factory=TokenDataConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optim: OptimConfig = field(  # maskgit_class_cond_config.py: AdamW(0.9, 0.96), wd 0.045, lr 1e-4, 5k warmup
        default_factory=lambda: OptimConfig(lr=1e-4, beta1=0.9, beta2=0.96, weight_decay=0.045, warmup_steps=5000)
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: SamplingEvalConfig = field(default_factory=SamplingEvalConfig)
