"""Train and evaluate any registered stage: one registry lookup per command (:mod:`fsq.stages`).

The CLI and the studies go through here and never branch on the stage. The training loop cannot import the
evaluation (both sit above :mod:`fsq.stages`), so the stage's evaluation is resolved here and handed to it.
Adding a stage: its registry entry (:func:`fsq.stages.register`), nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsq.config import ConfigError, read_run_config, with_overrides
from fsq.stages import get_stage
from fsq.training import loop
from fsq.training.state import owned_run_dir, setup_process


def train(cfg: Any, run_dir: str | Path, hooks: Sequence[loop.StepHook] = ()) -> dict[str, Any]:
    """Train (or resume) the run of ``cfg`` (its ``stage`` picks the parts) in ``run_dir``, then evaluate it."""
    stage = get_stage(cfg.stage)
    return loop.train(stage, cfg, run_dir, evaluate=stage.evaluator(), hooks=hooks)


def evaluate(run_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate a run dir's newest checkpoint with its stage's evaluation; ``overrides`` may change ``eval.*``."""
    cfg = read_run_config(run_dir)
    wrong = [o for o in overrides if not o.startswith("eval.")]
    if wrong:
        raise ConfigError(f"evaluation overrides may only change eval.* settings, got {wrong}")
    cfg = with_overrides(cfg, list(overrides))
    info = setup_process(cfg)
    with owned_run_dir(Path(run_dir), info, "evaluating it"):  # not while a trainer writes it
        return get_stage(cfg.stage).evaluator()(run_dir, cfg=cfg)
