"""What a stage is: the parts the one training loop, the evaluation and the CLI need, and nothing stage-specific.

A stage (tokenizer, MaskGIT, UViM) is a :class:`Stage`: its config schema (which names it), a ``phases`` function
that builds its models and data from a config and trains them one :class:`Phase` at a time through the loop's
``run`` (UViM: the oracle, then the language model on the oracle's codes) and returns what evaluation needs (a
typed object of the stage: its trained models), the step its evaluation is filed under, how to load a trained run
(a :class:`LoadedRun`), its evaluation, and what ``fsq export`` writes of it (a :class:`Bundle` and the text of
its model card). The evaluation and the bundle live in layers above this package (:mod:`fsq.evaluation`,
:mod:`fsq.inference`), so a built-in stage names them as ``"module:attribute"`` references that the application
imports when it uses them; a stage defined elsewhere may give the functions themselves.

The contract between the loop and a phase is explicit. For each step the loop asks the phase for this rank's
batch (``batch(step)``), splits it into the ``train.accumulate`` micro-batches and hands each to the step
function, ``loss(network, micro_batch, step) -> StepOutput``; it does everything around it (learning rate,
autocast, the non-finite check, backward, clipping, the optimizer step, EMA, logging, checkpoints, resume,
distribution through :mod:`fsq.distributed`). A phase may train a second module after each step of its model, a
:class:`Critic` (the GAN discriminator): its step function has the same signature and is handed, per
micro-batch, what the model's step passed on for it (``StepOutput.passed``), so nothing travels in closures.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from fsq.config import OptimConfig, description_of, schema_name
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
        images: called on rank 0 at each log with what the last step's micro-batches passed on (``passed``),
            returns pictures for TensorBoard (uint8 (H, W, 3) arrays by tag).
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
    images: Callable[[list[dict[str, torch.Tensor]]], dict[str, Any]] | None = None
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


M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class LoadedRun:
    """A trained run as every stage loads it: its config, the step of its newest weights and its models by name
    (tokenizer: ``tokenizer``; MaskGIT: ``maskgit`` and its ``tokenizer``; UViM: ``oracle`` and ``lm``)."""

    run_dir: Path
    cfg: Any
    step: int
    models: Mapping[str, nn.Module]

    def model(self, name: str, kind: type[M]) -> M:
        """The model ``name``, checked to be a ``kind`` (a clear error naming what the run holds otherwise)."""
        found = self.models.get(name)
        if found is None:
            raise KeyError(
                f"{self.run_dir} ({self.cfg.stage} run) holds no model {name!r}; it holds {sorted(self.models)}"
            )
        if not isinstance(found, kind):
            raise TypeError(f"{self.run_dir}: model {name!r} is a {type(found).__name__}, not a {kind.__name__}")
        return found


class Bundle(Protocol):
    """What ``fsq export`` writes: provenance (``metadata``, with the exported ``step``) and a folder writer."""

    metadata: dict[str, Any]

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> None: ...


# "module:attribute" of a part that lives above fsq.stages (imported when the application uses it)
Ref = str


def resolve(ref: Ref | Callable[..., Any], what: str) -> Callable[..., Any]:
    """The function a reference names (``what``: the stage and part, for the error), or the function given."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{what}: the reference {ref!r} does not resolve ({error})") from error
    if not callable(found):
        raise ValueError(f"{what}: {ref!r} is not callable")
    return found


@dataclass(frozen=True)
class Stage:
    """A registry entry: everything the CLI, the loop, the evaluation and the export need of one stage.

    Attributes:
        schema: the experiment config dataclass; its ``stage`` field's default is the stage's name and its
            ``description`` class attribute says what the stage is (CLI help, ``fsq config``).
        phases: ``(cfg, run_dir, dist, run) -> trained``: builds and runs the phases (see :data:`PhaseRunner`);
            ``trained`` (the stage's own type) is what its evaluation and histograms get.
        final_step: the step a finished run's evaluation is filed under.
        load_run: ``(run_dir, use_ema) -> LoadedRun``: the newest weights of a trained run.
        evaluate: ``(run_dir, *, cfg, trained=None) -> results`` with ``results["step"]``; writes
            ``eval/step_N.json``; ``trained``: what ``phases`` returned (None: load the run's newest checkpoint).
        export: ``(run_dir) -> Bundle``: what ``fsq export`` writes.
        usage: the model card's "Use" section, ``{ref}`` standing for the bundle's name (empty: no section).
        describe: ``(cfg, metadata) -> str``: the model card's first paragraph (default: the description).
        card_notes: ``(run_dir) -> lines`` added to the model card's "Data" section.
        card_tags: the hub tags of its bundles' cards (besides fsq's own; default: the stage's name).
        histograms: ``(cfg, run_dir, trained) -> {tag: values}`` published with the final evaluation (e.g. FSQ
            levels per channel).
    """

    schema: type
    phases: PhaseRunner
    final_step: Callable[[Any], int]
    load_run: Callable[[Path, bool], LoadedRun]
    evaluate: Ref | Callable[..., dict[str, Any]]
    export: Ref | Callable[[Path], Bundle]
    usage: str = ""
    describe: Callable[[Any, dict[str, Any]], str] | None = None
    card_notes: Callable[[Path], list[str]] | None = None
    card_tags: tuple[str, ...] = ()
    histograms: Callable[[Any, Path, Any], dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        """The stage's name: the one its schema records."""
        return schema_name(self.schema)

    @property
    def description(self) -> str:
        """What the stage is, in one line (its schema's ``description``)."""
        return description_of(self.schema)

    def evaluator(self) -> Callable[..., dict[str, Any]]:
        """The evaluation function (a reference imported now)."""
        return resolve(self.evaluate, f"stage {self.name!r} evaluate")

    def exporter(self) -> Callable[[Path], Bundle]:
        """The bundle factory of ``fsq export`` (a reference imported now)."""
        return resolve(self.export, f"stage {self.name!r} export")

    def card_intro(self, cfg: Any, metadata: dict[str, Any]) -> str:
        """The model card's first paragraph: ``describe`` when the stage has one, else its description."""
        return self.describe(cfg, metadata) if self.describe is not None else f"{self.description}."
