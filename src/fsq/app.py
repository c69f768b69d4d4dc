"""Train and evaluate any registered stage: one registry lookup per command (:mod:`fsq.stages`).

The CLI and the studies go through here and never branch on the stage. The training loop cannot import the
evaluation (both sit above :mod:`fsq.stages`), so the stage's evaluation is resolved here and handed to it.
Adding a stage: its registry entry (:func:`fsq.stages.register`), nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsq import hub, rundir
from fsq.config import ConfigError, read_run_config, with_overrides
from fsq.config.requires import check_requirements
from fsq.stages import get_stage
from fsq.training import loop
from fsq.training.state import owned_run_dir, setup_process


def train(cfg: Any, run_dir: str | Path, hooks: Sequence[loop.StepHook] = ()) -> dict[str, Any]:
    """Train (or resume) the run of ``cfg`` (its ``stage`` picks the parts) in ``run_dir``, then evaluate it.

    Optional dependencies the config needs (FID, a perceptual loss, a ``hf:`` source) are checked first."""
    check_requirements(cfg, "train")
    stage = get_stage(cfg.stage)
    return loop.train(stage, cfg, run_dir, evaluate=stage.evaluator(), hooks=hooks)


def evaluate(run_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate a run dir's newest checkpoint with its stage's evaluation; ``overrides`` may change ``eval.*``."""
    if not (Path(run_dir) / rundir.CONFIG).is_file():
        raise ConfigError(not_a_run_dir(run_dir))
    cfg = read_run_config(run_dir)
    wrong = [o for o in overrides if not o.startswith("eval.")]
    if wrong:
        raise ConfigError(f"evaluation overrides may only change eval.* settings, got {wrong}")
    cfg = with_overrides(cfg, list(overrides))
    check_requirements(cfg, "eval")
    info = setup_process(cfg)
    with owned_run_dir(Path(run_dir), info, "evaluating it"):  # not while a trainer writes it
        return get_stage(cfg.stage).evaluator()(run_dir, cfg=cfg)


def not_a_run_dir(path: str | Path) -> str:
    """Why ``fsq eval PATH`` cannot evaluate ``path``: no such folder, a bundle (and what to do instead), or a
    folder without a run's ``config.yaml``."""
    text = str(path)
    folder = Path(path)
    shipped = hub.shipped_root() / text if text in hub.shipped_names() else None
    bundle = folder if folder.is_dir() and hub.bundle_format(folder) else shipped
    if bundle is not None:
        return (
            f"{text} is a bundle ({hub.bundle_format(bundle)}), not a run dir: `fsq eval` measures a run dir's newest "
            "checkpoint on the held-out split of the data it was trained on and writes eval/step_N.json into it, "
            f"and a bundle holds neither its training data settings nor checkpoints. Its measured numbers are in "
            f"{bundle / hub.CARD} (and eval.json when shipped); `fsq sample` and `fsq tokenize` take bundles"
        )
    if not folder.exists():
        return f"no such run dir: {text} (`fsq eval` takes the run dir `fsq train` wrote, e.g. runs/fsq_mnist)"
    return f"{text} is not a run dir (no {rundir.CONFIG}; `fsq eval` takes the run dir `fsq train` wrote)"
