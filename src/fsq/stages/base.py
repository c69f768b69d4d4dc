"""What a stage is: the parts the one training loop, the evaluation and the CLI need, and nothing stage-specific.

A stage (tokenizer, MaskGIT, UViM) is a :class:`Stage`: its config schema, a ``phases`` generator that builds its
models and data from a config and yields one :class:`Phase` per model to train (UViM: the oracle, then the
language model), the step its evaluation is filed under, and how to load a trained run. A :class:`Phase` holds an
explicit step function, ``loss(network, step) -> (loss, logged values)``; the loop does everything around it
(learning rate, autocast, the non-finite check, backward, clipping, the optimizer step, EMA, logging,
checkpoints, DDP, resume).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsq.config import OptimConfig
from fsq.distributed import DistInfo
from fsq.optim import ModelEMA

StepFunction = Callable[[nn.Module, int], tuple[torch.Tensor, dict[str, Any]]]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; training stops instead of writing a broken checkpoint."""


@dataclass
class Phase:
    """One model to train in one run (sub)dir: the model, its optimizer and the stage's explicit step function.

    Attributes:
        name: the phase's name (``train``, ``oracle``, ``lm``): progress label and checkpoint ``stage`` field.
        run_dir: where its ``metrics.jsonl`` and ``checkpoints/`` live.
        loss: the step function ``(network, step) -> (loss, values)``; ``network`` is the model, DDP-wrapped
            under torchrun. ``values`` are logged (tensors or floats, averaged over the log window and ranks).
        ema: the EMA of the weights, updated after every optimizer step and saved as ``ema``.
        modules / optimizers: further parts saved in the checkpoint by name (the GAN discriminator).
        after_update: ``(step, lr) -> values``, run after the optimizer step (the discriminator's update).
        window_metrics: called on every rank at each log, returns values to log (codebook usage).
        images: called on rank 0 at each log, returns pictures for TensorBoard (uint8 (H, W, 3) arrays by tag).
        postfix: the logged keys shown on the progress bar.
        accumulates: whether ``loss`` takes ``(network, step, micro, micros)`` (gradient accumulation).
        spec: the model's spec, saved in ``state.json`` so that the model can be rebuilt from the checkpoint.
    """

    name: str
    run_dir: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    optim: OptimConfig
    steps: int
    loss: StepFunction
    spec: dict[str, Any]
    ema: ModelEMA | None = None
    modules: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    after_update: Callable[[int, float], dict[str, float]] | None = None
    window_metrics: Callable[[], dict[str, float]] | None = None
    images: Callable[[], dict[str, Any]] | None = None
    postfix: tuple[str, ...] = ("loss",)
    # True: ``loss(network, step, micro, micros)`` computes micro-batch ``micro`` of ``micros`` of the step's batch
    # (gradient accumulation, ``train.accumulate``); phases without it refuse ``accumulate > 1``
    accumulates: bool = False

    @property
    def trained(self) -> nn.Module:
        """The weights evaluation uses: the EMA when there is one."""
        return self.ema.shadow if self.ema is not None else self.model


# phases(cfg, run_dir, info, keep): yields the phases in order; puts into ``keep`` what evaluation may reuse.
PhaseBuilder = Callable[[Any, Path, DistInfo, dict[str, Any]], Iterator[Phase]]


@dataclass(frozen=True)
class Stage:
    """A registry entry: the schema, the phase builder, the final step of a run, how to load a trained run (and,
    optionally, histograms to publish beside its evaluation)."""

    name: str
    schema: type
    phases: PhaseBuilder
    final_step: Callable[[Any], int]
    load_run: Callable[..., Any]
    description: str = ""
    # histograms(cfg, run_dir, kept) -> {tag: values}: published with the final evaluation (e.g. FSQ levels per channel)
    histograms: Callable[[Any, Path, dict[str, Any]], dict[str, Any]] | None = None
