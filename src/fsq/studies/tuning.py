"""Equal tuning for the studies that compare methods (torch-free): every method trains at the same number of
learning-rate trials, :data:`LR_FACTORS` times its config's rate, each trial is also evaluated on the tuning split
(:data:`TUNING_SPLIT`, written beside the run's own evaluation as ``eval/step_N<VAL_SUFFIX>.json``), and a study
reports each method at the rate with the best mean val PSNR over seeds (:func:`choose_rates`), never at the rate
that did best on the held-out split. :func:`tuning_table` lists every trial.

A trial is a dict with ``name``, ``method``, ``seed``, ``lr``, ``val_psnr`` and ``psnr`` (held-out; either None
until evaluated), and optionally ``setting``: the method's other tuned settings as ``key=value`` text (e.g.
``dim=8``; empty when only the rate is tried). A trial's :func:`trial_key` is its rate and setting; seeds of the
same key are averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq import markdown, rundir
from fsq.io import read_json
from fsq.studies.common import mean_std, pm

LR_FACTORS = (0.5, 1.0, 2.0)  # learning-rate trials per method: these times the config's optim.lr
TUNING_SPLIT = "val"  # the split the rate is chosen on (a study's numbers are on its config's eval split)
VAL_SUFFIX = "_val"  # a run's evaluation on the tuning split: eval/step_N_val.json


def trial_rates(lr: float) -> list[float]:
    """The trial learning rates of a config whose rate is ``lr``."""
    return [f * lr for f in LR_FACTORS]


def refuse_lr_override(study: str, overrides: list[str]) -> None:
    """A ValueError when an override sets ``optim.lr``, which the trials set themselves."""
    if any(o.split("=", 1)[0] == "optim.lr" for o in overrides):
        raise ValueError(
            f"the {study} study sets optim.lr itself (its trials try several multiples of the config's rate); edit "
            "the config instead"
        )


def found_eval(run_dir: Path, suffix: str) -> dict[str, Any] | None:
    """The newest ``eval/step_N<suffix>.json`` of a run (None without one)."""
    found = sorted((run_dir / rundir.EVAL).glob(f"{rundir.STEP_PREFIX}*{suffix}.json"))
    return read_json(found[-1], "an evaluation") if found else None


def trial_of(run: dict[str, Any], val: dict[str, Any] | None, held_out: dict[str, Any] | None) -> dict[str, Any]:
    """The trial record of a study run (its entry, with ``lr`` and maybe ``setting``) from its evaluations on the
    tuning split (``val``) and the held-out split (``held_out``), either None when not written yet."""
    return {
        "name": run["name"],
        "method": run["label"],
        "seed": run.get("seed", 0),
        "lr": run["lr"],
        **({"setting": run["setting"]} if run.get("setting") else {}),
        "val_psnr": val.get("psnr") if val else None,
        "psnr": held_out.get("psnr") if held_out else None,
    }


def trial_key(trial: dict[str, Any]) -> tuple[float, str]:
    """What a trial tried: its learning rate and its other settings (``""`` for none)."""
    return float(trial["lr"]), str(trial.get("setting") or "")


def choose_trials(found: list[dict[str, Any]]) -> dict[str, tuple[float, str]]:
    """Per method, the :func:`trial_key` with the best mean val PSNR over its seeds (a trial with a missing val
    number cannot be chosen; on a tie the lower rate, then the first setting tried). Methods whose trials are not
    all evaluated are left out."""
    chosen: dict[str, tuple[float, str]] = {}
    for method in dict.fromkeys(t["method"] for t in found):
        mine = [t for t in found if t["method"] == method]
        if any(t["val_psnr"] is None for t in mine):
            continue
        keys = list(dict.fromkeys(trial_key(t) for t in mine))
        means = {k: mean_std([t["val_psnr"] for t in mine if trial_key(t) == k])[0] for k in keys}
        chosen[method] = max(keys, key=lambda k: (means[k], -k[0], -keys.index(k)))
    return chosen


def choose_rates(found: list[dict[str, Any]]) -> dict[str, float]:
    """Per method, the learning rate of its chosen trial (:func:`choose_trials`)."""
    return {method: key[0] for method, key in choose_trials(found).items()}


def tuning_table(found: list[dict[str, Any]], chosen: dict[str, float] | dict[str, tuple[float, str]]) -> str:
    """The trials: per method, rate (and other setting, a column shown when any trial has one), the seed means of
    val and held-out PSNR, the chosen trial marked. ``chosen``: per method a rate or a :func:`trial_key`."""
    settings = any(trial_key(t)[1] for t in found)
    head = ["method", "learning rate", *(["other settings"] if settings else []), "seeds", "val PSNR dB"]
    lines = markdown.table([*head, "held-out PSNR dB", "chosen on val"])
    for method in dict.fromkeys(t["method"] for t in found):
        mine_all = [t for t in found if t["method"] == method]
        for key in sorted(dict.fromkeys(trial_key(t) for t in mine_all), key=lambda k: (k[1], k[0])):
            mine = [t for t in mine_all if trial_key(t) == key]
            val = mean_std([t["val_psnr"] for t in mine if t["val_psnr"] is not None])
            held = mean_std([t["psnr"] for t in mine if t["psnr"] is not None])
            picked = chosen.get(method)
            hit = picked == key if isinstance(picked, tuple) else picked == key[0] and not key[1]
            mark = "yes" if hit else ("-" if method not in chosen else "")
            other = [key[1] or "-"] if settings else []
            lines.append(
                markdown.row(
                    [method, f"{key[0]:g}", *other, len(mine), pm(val[0], val[1], 2), pm(held[0], held[1], 2), mark]
                )
            )
    return "\n".join(lines)


def trials_markdown(study: dict[str, Any]) -> str:
    """The tuning table of a published study (its results.json's ``study``, which holds its ``trials``)."""
    found = study.get("trials") or []
    return tuning_table(found, choose_trials(found))
