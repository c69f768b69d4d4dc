"""The run-directory layout, in one place (torch-free: reports read run dirs without torch).

::

    RUN/config.yaml            the resolved config (it records its ``stage``)
    RUN/meta.json              versions, command, git revision of every (re)start
    RUN/metrics.jsonl          logged training metrics
    RUN/checkpoints/step_N/    weights (safetensors), optimizer + RNG state, state.json
    RUN/eval/step_N.json       an evaluation of step N; ``step_N_<what>.png`` beside it
    RUN/<phase>/...            multi-phase stages (UViM: ``oracle/``, ``lm/``) nest the same layout

Step numbers are zero-padded to six digits so that names sort by step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG = "config.yaml"
META = "meta.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
EVAL = "eval"
STEP_PREFIX = "step_"


def step_name(step: int) -> str:
    """``step_000500``: the name of a checkpoint folder or evaluation file of ``step``."""
    return f"{STEP_PREFIX}{step:06d}"


def step_of(name: str) -> int | None:
    """The step of a ``step_N`` name (``None`` when ``name`` is not one)."""
    digits = name[len(STEP_PREFIX) :] if name.startswith(STEP_PREFIX) else ""
    return int(digits) if digits.isdigit() else None


def eval_path(run_dir: str | Path, step: int, suffix: str = ".json") -> Path:
    """``RUN/eval/step_N.json`` (or ``step_N<suffix>``: ``_grid.png``, ``_samples_g1.png``, ...)."""
    return Path(run_dir) / EVAL / f"{step_name(step)}{suffix}"


def has_eval(run_dir: str | Path, step: int) -> bool:
    """Whether the run dir holds the evaluation of ``step`` (for its final step: a finished run)."""
    return eval_path(run_dir, step).is_file()


def eval_files(run_dir: str | Path) -> list[Path]:
    """The evaluation JSON files of a run, oldest step first."""
    folder = Path(run_dir) / EVAL
    if not folder.is_dir():
        return []
    found = [(step_of(p.stem), p) for p in folder.glob(f"{STEP_PREFIX}*.json")]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def latest_eval(run_dir: str | Path) -> dict[str, Any] | None:
    """The newest evaluation of a run (``None`` when it has none)."""
    files = eval_files(run_dir)
    return json.loads(files[-1].read_text()) if files else None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``RUN/metrics.jsonl`` (empty when absent)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
