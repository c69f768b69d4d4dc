"""The stage registry: one :class:`~fsq.stages.base.Stage` per stage, looked up by name or by a run dir.

Training (:mod:`fsq.training`) and evaluation (:mod:`fsq.evaluation`) both sit above this package and never
import each other; adding a stage means adding one module here (and its evaluation).
"""

from __future__ import annotations

from pathlib import Path

from fsq.config import read_run_config
from fsq.stages import maskgit, tokenizer, uvim
from fsq.stages.base import NonFiniteLossError, Phase, Stage

STAGES: dict[str, Stage] = {stage.name: stage for stage in (tokenizer.STAGE, maskgit.STAGE, uvim.STAGE)}


def get_stage(name: str) -> Stage:
    """The registry entry of a stage name."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; valid stages: {sorted(STAGES)}")
    return STAGES[name]


def stage_of_run(run_dir: str | Path) -> Stage:
    """The stage a run dir's ``config.yaml`` records."""
    return get_stage(read_run_config(run_dir).stage)


__all__ = ["STAGES", "NonFiniteLossError", "Phase", "Stage", "get_stage", "stage_of_run"]
