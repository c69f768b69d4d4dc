"""What a stage is: the parts the one training loop, the evaluation and the CLI need, and nothing stage-specific.

A stage (tokenizer, MaskGIT, UViM) is a :class:`Stage`: its config schema, a ``phases`` function that builds its
models and data from a config and trains them one :class:`Phase` at a time through the loop's ``run`` (UViM: the
oracle, then the language model on the oracle's codes) and returns what evaluation needs (a typed object of the
stage: the trained models), the step its evaluation is filed under, and how to load a trained run.

The contract between the loop and a phase is explicit. For each step the loop asks the phase for this rank's
batch (``batch(step)``), splits it into the ``train.accumulate`` micro-batches and hands each to the step
function, ``loss(network, micro_batch, step) -> StepOutput``; it does everything around it (learning rate,
autocast, the non-finite check, backward, clipping, the optimizer step, EMA, logging, checkpoints, resume,
distribution through :mod:`fsq.distributed`). A phase may train a second module after each step of its model, a
:class:`Critic` (the GAN discriminator): its step function has the same signature and is handed, per
micro-batch, what the model's step passed on for it (``StepOutput.passed``), so nothing travels in closures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsq.config import OptimConfig
from fsq.distributed import DistInfo
from fsq.optim import ModelEMA

# this rank's batch of a step: a tensor, or a tuple / dict of them (micro-batches split every tensor along dim 0;
# anything else, e.g. None, goes to every micro-batch as it is)
Batch = Any


@dataclass
class StepOutput:
    """What a step function returns for one micro-batch.

    Attributes:
        loss: the scalar to minimise (the loop scales it by ``1 / micro-batches`` and runs backward).
        logged: values to log (tensors or floats, averaged over micro-batches, the log window and ranks).
        passed: tensors the phase's :class:`Critic` step receives as its batch for this micro-batch (detached:
            the real images and the reconstructions for the discriminator).
    """

    loss: torch.Tensor
    logged: dict[str, Any]
    passed: dict[str, torch.Tensor] = field(default_factory=dict)


# loss(network, micro_batch, step) -> StepOutput; ``network`` is the module, DDP-wrapped under torchrun
StepFunction = Callable[[nn.Module, Batch, int], StepOutput]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; training stops instead of writing a broken checkpoint."""


@dataclass
class Critic:
    """A second module a phase trains, after every optimizer step of its model from step ``start`` on (the GAN
    discriminator): its own optimizer, its learning rate on the model's schedule (``lr`` scaled as the model's
    ``optim.lr`` is), its gradient accumulated over the same micro-batches and averaged over ranks as the model's;
    no autocast, clipping or EMA. Saved in the checkpoint as ``name`` (weights) and ``optimizer_name``.

    ``loss(network, passed, step)``: ``passed`` is what the model's step function passed on for one micro-batch.
    """

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    optimizer_name: str
    loss: StepFunction
    lr: float
    start: int = 0


@dataclass
class Phase:
    """One model to train in one run (sub)dir: the model, its optimizer, its batches and its explicit step function.

    Attributes:
        name: the phase's name (``train``, ``oracle``, ``lm``): progress label and checkpoint ``stage`` field.
        run_dir: where its ``metrics.jsonl`` and ``checkpoints/`` live.
        batch: ``step -> Batch``, this rank's batch of ``step`` (a pure function of the seed and the step, so a
            resumed run sees the batches an uninterrupted one would).
        loss: the step function ``(network, micro_batch, step) -> StepOutput``.
        ema: the EMA of the weights, updated after every optimizer step and saved as ``ema``.
        critic: a second module trained after each step (the GAN discriminator), or None.
        window_metrics: called on every rank at each log, returns values to log (codebook usage).
        postfix: the logged keys shown on the progress bar.
        accumulates: whether the step's batch may be split into ``train.accumulate > 1`` micro-batches (the
            step function then computes a micro-batch's mean loss); phases without it refuse ``accumulate > 1``.
        spec: the model's spec, saved in ``state.json`` so that the model can be rebuilt from the checkpoint.
    """

    name: str
    run_dir: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    optim: OptimConfig
    steps: int
    batch: Callable[[int], Batch]
    loss: StepFunction
    spec: dict[str, Any]
    ema: ModelEMA | None = None
    critic: Critic | None = None
    window_metrics: Callable[[], dict[str, float]] | None = None
    postfix: tuple[str, ...] = ("loss",)
    accumulates: bool = False

    @property
    def trained(self) -> nn.Module:
        """The weights evaluation uses: the EMA when there is one."""
        return self.ema.shadow if self.ema is not None else self.model


# run(phase): the loop trains a phase from its newest checkpoint (or from scratch) to its last step, then returns
RunPhase = Callable[[Phase], None]
# phases(cfg, run_dir, dist, run): builds and runs (``run(phase)``) the stage's phases in order; returns what its
# evaluation needs (the stage's own type: its trained models)
PhaseRunner = Callable[[Any, Path, DistInfo, RunPhase], Any]


@dataclass(frozen=True)
class Stage:
    """A registry entry: the schema, the phase builder, the final step of a run, how to load a trained run (and,
    optionally, histograms to publish beside its evaluation)."""

    name: str
    schema: type
    phases: PhaseRunner
    final_step: Callable[[Any], int]
    load_run: Callable[..., Any]
    description: str = ""
    # histograms(cfg, run_dir, trained) -> {tag: values}: published with the final evaluation (e.g. FSQ levels per
    # channel); ``trained``: what ``phases`` returned
    histograms: Callable[[Any, Path, Any], dict[str, Any]] | None = None
