"""The stage registry: one :class:`~fsq.stages.base.Stage` per stage, looked up by name or by a run dir.

Each registration drives everything stage-specific above it: the config schema (:mod:`fsq.config.registry`, filled
by :func:`register`), the CLI's stage choices, training (:mod:`fsq.app`), ``fsq eval``, ``fsq export``, run loading
(:func:`load_run`) and ``fsq config``. Training (:mod:`fsq.training`) and evaluation (:mod:`fsq.evaluation`) both
sit above this package and never import each other; adding a stage means one module here (and its evaluation), or,
in another package, ``fsq.stages.register(STAGE)`` or an entry point in the ``fsq.stages`` group naming its
``Stage`` (loaded the first time the stage is asked for).
"""

from __future__ import annotations

from pathlib import Path

from fsq.config import read_run_config, register_schema, stage_names
from fsq.config.registry import ENTRY_POINTS, load_entry_point, unregister_schema
from fsq.stages import maskgit, tokenizer, uvim
from fsq.stages.base import Bundle, Critic, LoadedRun, NonFiniteLossError, Phase, RunPhase, Stage, StepOutput

STAGES: dict[str, Stage] = {}  # name -> stage, in registration order


def register(stage: Stage) -> Stage:
    """Register a stage (and its schema): ``fsq train|eval|export|config`` then know it. Registering the same
    stage again is a no-op; another stage under a registered name is refused. Returns the stage.

    The registration holds in this process: a script registers its stage and then calls :func:`fsq.cli.main`.
    Under ``torchrun`` every rank starts afresh, so a stage trained there is best declared as an entry point
    (every process finds it by name)."""
    if not isinstance(stage, Stage):
        raise TypeError(f"fsq.stages.register takes a Stage, got {type(stage).__name__}")
    known = STAGES.get(stage.name)
    if known is not None and known is not stage:
        raise ValueError(f"stage {stage.name!r} is registered already; unregister it first")
    register_schema(stage.schema)
    STAGES[stage.name] = stage
    return stage


def unregister(name: str) -> None:
    """Remove a stage and its schema (a test's or a plugin's); unknown names are ignored."""
    STAGES.pop(name, None)
    unregister_schema(name)


def get_stage(name: str) -> Stage:
    """The registry entry of a stage name (a stage another package declares as an entry point is loaded now)."""
    if name not in STAGES:
        loaded = load_entry_point(name)
        if loaded is not None and name not in STAGES:  # loading may have registered it
            if not isinstance(loaded, Stage) or loaded.name != name:
                raise ValueError(f"the {ENTRY_POINTS} entry point {name!r} must name a Stage called {name!r}")
            register(loaded)
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; valid stages: {sorted(stage_names())}")
    return STAGES[name]


def stage_of_run(run_dir: str | Path) -> Stage:
    """The stage a run dir's ``config.yaml`` records."""
    return get_stage(read_run_config(run_dir).stage)


def load_run(run_dir: str | Path, use_ema: bool = True) -> LoadedRun:
    """The newest weights of any stage's run dir (its EMA weights when present and ``use_ema``)."""
    return stage_of_run(run_dir).load_run(Path(run_dir), use_ema)


for _stage in (tokenizer.STAGE, maskgit.STAGE, uvim.STAGE):  # the built-in stages
    register(_stage)

__all__ = [
    "STAGES",
    "Bundle",
    "Critic",
    "LoadedRun",
    "NonFiniteLossError",
    "Phase",
    "RunPhase",
    "Stage",
    "StepOutput",
    "get_stage",
    "load_run",
    "register",
    "stage_names",
    "stage_of_run",
    "unregister",
]
