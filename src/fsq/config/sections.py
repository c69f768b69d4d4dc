"""Config sections every stage shares: the quantizer, the optimizer and the training loop's settings.

Each knob is declared once here; a stage's schema (:mod:`fsq.config.tokenizer`, ``maskgit``, ``uvim``) composes
these sections with its own. Enum-like fields are ``Literal`` annotations, so the engine rejects values outside
their choices at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fsq.config.engine import ConfigError, Length, Pattern, Range
from fsq.quantizers.registry import QuantizerSection

# Value types with their ranges, checked at load (before anything is written).
PositiveInt = Annotated[int, Range(min=1)]
NonNegativeInt = Annotated[int, Range(min=0)]
PositiveFloat = Annotated[float, Range(min=0, open_min=True)]
NonNegativeFloat = Annotated[float, Range(min=0)]
Fraction = Annotated[float, Range(min=0, max=1)]
Decay = Annotated[float, Range(min=0, max=1, open_max=True)]
Levels = Annotated[list[Annotated[int, Range(min=2)]], Length(min=1)]
RunName = Annotated[
    str,
    Pattern(r"[A-Za-z0-9_][A-Za-z0-9._-]*", "a run name: one folder name of letters, digits, '.', '_', '-' (no path)"),
]


def require(condition: bool, message: str) -> None:
    """A combination check of a schema's ``__post_init__``: a :class:`ConfigError` when ``condition`` fails."""
    if not condition:
        raise ConfigError(message)


# The quantizer section: ``kind`` picks a registered family, whose own settings the section holds (an unknown key
# of that family is an error naming its keys); see fsq.quantizers.registry (torch-free).
QuantizerConfig = QuantizerSection


@dataclass(frozen=True)
class OptimConfig:
    lr: NonNegativeFloat = 1e-3
    beta1: Annotated[float, Range(min=0, max=1, open_max=True)] = 0.0  # the paper's Adam(0, 0.99)
    beta2: Annotated[float, Range(min=0, max=1, open_max=True)] = 0.99
    weight_decay: NonNegativeFloat = 0.0
    warmup_steps: NonNegativeInt = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: PositiveFloat | None = None
    discriminator_lr: NonNegativeFloat | None = None  # None: same as lr


@dataclass(frozen=True)
class LoopConfig:
    """What the one training loop needs besides step counts: batch, seed, cadences, device and precision."""

    batch_size: PositiveInt = 64  # global, over all ranks
    seed: NonNegativeInt = 0
    log_every: PositiveInt = 25
    checkpoint_every: PositiveInt = 500
    keep_last: NonNegativeInt = 2  # checkpoints kept (0: all)
    threads: PositiveInt | None = None  # torch CPU threads (None: torch's default); $OMP_NUM_THREADS wins
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: bf16 autocast on CUDA, fp32 on the CPU; fp16 (CUDA only: refused on the CPU) adds a GradScaler
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    accumulate: PositiveInt = 1  # micro-batches per step (gradients summed): batch_size / accumulate per pass
    # torch.compile the model (the network the step function calls); auto: on CUDA only (on a CPU compiling costs
    # more than it saves: `fsq train tokenizer fsq_folder_256 smoke` at 32 px took 150 s with it, 14 s without,
    # on a shared 2-core machine)
    compile: bool | Literal["auto"] = False
    tf32: bool = True  # CUDA: TF32 matmuls and convolutions (no effect on the CPU)
    channels_last: bool = False  # CUDA: the model's weights in channels-last memory format (no effect on the CPU)
    eval_at_end: bool = True
    progress: bool = True
    dist_timeout_minutes: PositiveFloat = 10.0  # torchrun: a failed or hung rank stops the others after this long


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """A single-phase stage (tokenizer, MaskGIT): the step count and the EMA of the weights."""

    steps: PositiveInt = 1000
    ema_decay: Decay = 0.999  # EMA of the weights, used for evaluation (0 disables)
    # EMA warm-up: effective decay min(ema_decay, (1 + n) / (10 + n)) after n updates, so a short run's EMA is
    # not dominated by the initial weights; None (auto): on when steps < 5 / (1 - ema_decay) (the initial weights
    # would still weigh more than e^-5 = 0.7% at the end), off otherwise (longer runs unchanged); true/false force it
    ema_warmup: bool | None = None  # None: auto
    # fine-tuning: a fresh run starts from the weights of another run dir's newest checkpoint (its EMA weights when
    # it has them, as both the weights and their EMA) or of a tokenizer bundle (a folder `fsq export` wrote, a
    # shipped name such as photos64-fsq, a hub repo id); the model spec must match; optimizer, step and schedule
    # start afresh, so the loss may change. Ignored once this run dir has a checkpoint of its own (it resumes)
    init_from: str | None = None
