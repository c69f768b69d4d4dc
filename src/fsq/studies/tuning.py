"""Equal tuning for the studies that compare methods (torch-free): every method trains at the same number of
learning-rate trials, :data:`LR_FACTORS` times its config's rate, each trial is also evaluated on the tuning split
(:data:`TUNING_SPLIT`, written beside the run's own evaluation as ``eval/step_N<VAL_SUFFIX>.json``), and a study
reports each method at the rate with the best mean val PSNR over seeds (:func:`choose_rates`), never at the rate
that did best on the held-out split. :func:`tuning_table` lists every trial.

A trial is a dict with ``name``, ``method``, ``seed``, ``lr``, ``val_psnr`` and ``psnr`` (held-out; either None
until evaluated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.io import read_json
from fsq.studies.common import mean_std, pm

LR_FACTORS = (0.5, 1.0)  # learning-rate trials per method: these times the config's optim.lr
TUNING_SPLIT = "val"  # the split the rate is chosen on (a study's numbers are on its config's eval split)
VAL_SUFFIX = "_val"  # a run's evaluation on the tuning split: eval/step_N_val.json


def trial_rates(lr: float) -> list[float]:
    """The trial learning rates of a config whose rate is ``lr``."""
    return [f * lr for f in LR_FACTORS]


def refuse_lr_override(study: str, overrides: list[str]) -> None:
    """A ValueError when an override sets ``optim.lr``, which the trials set themselves."""
    if any(o.split("=", 1)[0] == "optim.lr" for o in overrides):
        raise ValueError(
            f"the {study} study sets optim.lr itself (trials at {' and '.join(f'{f:g}' for f in LR_FACTORS)} x the "
            "config's rate); edit the config instead"
        )


def found_eval(run_dir: Path, suffix: str) -> dict[str, Any] | None:
    """The newest ``eval/step_N<suffix>.json`` of a run (None without one)."""
    found = sorted((run_dir / rundir.EVAL).glob(f"{rundir.STEP_PREFIX}*{suffix}.json"))
    return read_json(found[-1], "an evaluation") if found else None


def choose_rates(found: list[dict[str, Any]]) -> dict[str, float]:
    """Per method, the trial rate with the best mean val PSNR over its seeds (a rate with a missing val number
    cannot be chosen; on a tie the lower rate). Methods whose trials are not all evaluated are left out."""
    chosen: dict[str, float] = {}
    for method in dict.fromkeys(t["method"] for t in found):
        mine = [t for t in found if t["method"] == method]
        if any(t["val_psnr"] is None for t in mine):
            continue
        rates = sorted({t["lr"] for t in mine})
        means = {lr: mean_std([t["val_psnr"] for t in mine if t["lr"] == lr])[0] for lr in rates}
        chosen[method] = max(rates, key=lambda lr: (means[lr], -lr))
    return chosen


def tuning_table(found: list[dict[str, Any]], chosen: dict[str, float]) -> str:
    """The learning-rate trials: per method and rate, the seed means of val and held-out PSNR, the chosen rate
    marked."""
    lines = [
        "| method | learning rate | seeds | val PSNR dB | held-out PSNR dB | chosen on val |",
        "|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(t["method"] for t in found):
        for lr in sorted({t["lr"] for t in found if t["method"] == method}):
            mine = [t for t in found if t["method"] == method and t["lr"] == lr]
            val = mean_std([t["val_psnr"] for t in mine if t["val_psnr"] is not None])
            held = mean_std([t["psnr"] for t in mine if t["psnr"] is not None])
            mark = "yes" if chosen.get(method) == lr else ("-" if method not in chosen else "")
            lines.append(
                f"| {method} | {lr:g} | {len(mine)} | {pm(val[0], val[1], 2)} | {pm(held[0], held[1], 2)} | {mark} |"
            )
    return "\n".join(lines)


def trials_markdown(study: dict[str, Any]) -> str:
    """The tuning table of a published study (its results.json's ``study``, which holds its ``trials``)."""
    found = study.get("trials") or []
    return tuning_table(found, choose_rates(found))
