"""What a stage is: the parts the one training loop, the evaluation and the CLI need, and nothing stage-specific.

A stage (tokenizer, MaskGIT, UViM) is a :class:`Stage`: its config schema (which names it), a ``phases`` generator
that builds its models and data from a config and yields one :class:`Phase` per model to train (UViM: the oracle,
then the language model), the step its evaluation is filed under, how to load a trained run (a
:class:`LoadedRun`), its evaluation, and what ``fsq export`` writes of it (a :class:`Bundle` and the text of its
model card). The evaluation and the bundle live in layers above this package (:mod:`fsq.evaluation`,
:mod:`fsq.inference`), so a built-in stage names them as ``"module:attribute"`` references that the application
imports when it uses them; a stage defined elsewhere may give the functions themselves. A :class:`Phase` holds an
explicit step function, ``loss(network, step) -> (loss, logged values)``; the loop does everything around it
(learning rate, autocast, the non-finite check, backward, clipping, the optimizer step, EMA, logging,
checkpoints, DDP, resume).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from fsq.config import OptimConfig, description_of, schema_name
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
        phases: ``(cfg, run_dir, info, kept) -> Phase...`` (see :data:`PhaseBuilder`).
        final_step: the step a finished run's evaluation is filed under.
        load_run: ``(run_dir, use_ema) -> LoadedRun``: the newest weights of a trained run.
        evaluate: ``(run_dir, *, cfg, **kept) -> results`` with ``results["step"]``; writes ``eval/step_N.json``.
        export: ``(run_dir) -> Bundle``: what ``fsq export`` writes.
        usage: the model card's "Use" section, ``{ref}`` standing for the bundle's name (empty: no section).
        describe: ``(cfg, metadata) -> str``: the model card's first paragraph (default: the description).
        card_notes: ``(run_dir) -> lines`` added to the model card's "Data" section.
        histograms: ``(cfg, run_dir, kept) -> {tag: values}`` published with the final evaluation (e.g. FSQ
            levels per channel).
    """

    schema: type
    phases: PhaseBuilder
    final_step: Callable[[Any], int]
    load_run: Callable[[Path, bool], LoadedRun]
    evaluate: Ref | Callable[..., dict[str, Any]]
    export: Ref | Callable[[Path], Bundle]
    usage: str = ""
    describe: Callable[[Any, dict[str, Any]], str] | None = None
    card_notes: Callable[[Path], list[str]] | None = None
    histograms: Callable[[Any, Path, dict[str, Any]], dict[str, Any]] | None = None

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
