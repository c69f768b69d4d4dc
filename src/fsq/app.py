"""The application registry: for each stage, its parts (:mod:`fsq.stages`), its evaluation and its trainer.

The CLI and the studies go through here with one lookup per command (``train``, ``evaluate``) and never branch
on the stage. Adding a stage: its module in :mod:`fsq.stages`, its evaluation in :mod:`fsq.evaluation`, and one
entry in ``EVALUATORS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fsq.config import ConfigError, read_run_config, with_overrides
from fsq.evaluation.maskgit import evaluate_maskgit
from fsq.evaluation.tokenizer import evaluate_tokenizer
from fsq.evaluation.uvim import evaluate_uvim
from fsq.stages import get_stage
from fsq.training import loop
from fsq.training.state import owned_run_dir, setup_process

EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "tokenizer": evaluate_tokenizer,
    "maskgit": evaluate_maskgit,
    "uvim": evaluate_uvim,
}


def train(cfg: Any, run_dir: str | Path, hooks: Sequence[loop.StepHook] = ()) -> dict[str, Any]:
    """Train (or resume) the run of ``cfg`` (its ``stage`` picks the parts) in ``run_dir``, then evaluate it."""
    return loop.train(get_stage(cfg.stage), cfg, run_dir, evaluate=EVALUATORS[cfg.stage], hooks=hooks)


def evaluate(run_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate a run dir's newest checkpoint with its stage's evaluation; ``overrides`` may change ``eval.*``."""
    cfg = read_run_config(run_dir)
    wrong = [o for o in overrides if not o.startswith("eval.")]
    if wrong:
        raise ConfigError(f"evaluation overrides may only change eval.* settings, got {wrong}")
    cfg = with_overrides(cfg, list(overrides))
    info = setup_process(cfg)
    with owned_run_dir(Path(run_dir), info, "evaluating it"):  # not while a trainer writes it
        return EVALUATORS[cfg.stage](run_dir, cfg=cfg)
