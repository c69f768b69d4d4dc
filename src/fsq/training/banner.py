"""What the loop tells the user (rank 0): a banner when a phase starts, and what a re-run of a finished run found.

The banner names the run dir, the data, the model's parameter count, the device and the steps (from scratch, from
``train.init_from``'s weights, or resumed at step N), so a run that trains on the wrong data or the wrong tokenizer
says so in its first lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from fsq import rundir

# data keys shown in the banner when a stage's data section has them (tokenizer, MaskGIT, UViM)
DATA_KEYS = ("source", "tokenizer", "tokens", "task", "train_split", "eval_split", "image_size", "train_limit")


def data_summary(cfg: Any) -> str:
    """``source=mnist train_split=train ...``: the stage's data keys that are set (UViM: its task too)."""
    data = getattr(cfg, "data", None)
    parts = [f"{k}={getattr(data, k)}" for k in DATA_KEYS if getattr(data, k, None) not in (None, "")]
    task = getattr(getattr(cfg, "task", None), "name", None)
    return " ".join(([f"task={task}"] if task else []) + parts)


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def start_banner(
    cfg: Any, phase_name: str, run_dir: Path, model: nn.Module, device: Any, start: int, steps: int
) -> str:
    """The lines printed when a phase starts (or finds itself finished)."""
    where = f"fsq: {cfg.stage} {cfg.name!r}, phase {phase_name}, run dir {run_dir}"
    if start >= steps:
        return f"{where}: already trained (checkpoint of step {start} of {steps}); nothing to train"
    init_from = getattr(getattr(cfg, "train", None), "init_from", None)
    resume = f"resuming at step {start}" if start else (f"from {init_from}'s weights" if init_from else "from scratch")
    return (
        f"{where}\n"
        f"  data    {data_summary(cfg)}\n"
        f"  model   {parameter_count(model):,} trainable parameters on {device}\n"
        f"  steps   {steps} x batch {cfg.train.batch_size} ({resume})"
    )


def evaluation_found(run_dir: Path, step: int) -> str:
    """What a re-run says when the final step has its evaluation already."""
    return (
        f"fsq: {rundir.eval_path(run_dir, step)} holds the evaluation of step {step}: not evaluated again "
        f"(`fsq eval {run_dir}` re-evaluates; `fsq report` / the JSON file show it)"
    )
