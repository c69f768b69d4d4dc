"""Config sections every stage shares: the quantizer, the optimizer and the training loop's settings.

Each knob is declared once here; a stage's schema (:mod:`fsq.config.tokenizer`, ``maskgit``, ``uvim``) composes
these sections with its own. Enum-like fields are ``Literal`` annotations, so the engine rejects values outside
their choices at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class QuantizerConfig:
    kind: Literal["fsq", "vq"] = "fsq"
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # fsq
    variant: Literal["paper", "atanh", "symmetric"] = "paper"  # fsq
    codebook_size: int = 1024  # vq
    dim: int = 256  # vq: code width (the encoder's last layer outputs this many channels)
    recipe: Literal["maskgit", "maskgit_noentropy", "uvim", "uvim_nosplit"] = "maskgit"  # vq


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    beta1: float = 0.0  # the paper's Adam(0, 0.99)
    beta2: float = 0.99
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float | None = None
    discriminator_lr: float | None = None  # None: same as lr


@dataclass(frozen=True)
class LoopConfig:
    """What the one training loop needs besides step counts: batch, seed, cadences, device and precision."""

    batch_size: int = 64  # global, over all ranks
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    keep_last: int = 2
    threads: int | None = None  # torch CPU threads (None: leave torch's default)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on the CPU
    eval_at_end: bool = True
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """A single-phase stage (tokenizer, MaskGIT): the step count and the EMA of the weights."""

    steps: int = 1000
    ema_decay: float = 0.999  # EMA of the weights, used for evaluation (0 disables)
