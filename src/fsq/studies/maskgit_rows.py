"""The MaskGIT study's rows and their summaries (torch-free): one row per (run, guidance weight), then means over
seeds and the guidance weight chosen on the tuning split.

Every MaskGIT run of the study is evaluated twice on the same samples' settings: on the report split (``test``:
its ``eval/step_N.json``) and on the tuning split (``val``: ``eval/step_N_val.json``). A row carries the report
split's numbers under their plain names and the tuning split's under ``val_*``; choices (the guidance weight of
the headline comparison) read only the ``val_*`` columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import MaskGITExperiment
from fsq.io import read_json
from fsq.studies.common import over_seeds, read_study, run_path

TUNE_SUFFIX = "_val"  # the tuning split's evaluation file: eval/step_N_val.json
# per-guidance metrics of an evaluation, copied into a row (the report split's) and as val_* (the tuning split's)
SAMPLE_KEYS = ("class_accuracy", "judge_fd", "judge_precision", "judge_recall", "fid", "precision", "recall")
# metrics averaged over seeds in the summaries
MEAN_KEYS = (
    *SAMPLE_KEYS,
    *(f"val_{k}" for k in SAMPLE_KEYS),
    "sampled_usage",
    "sampled_codes_used",
    "tokenizer_usage",
    "tokenizer_codes_used",
    "bits_per_token",
    "val_bits_per_token",
    "tokenizer_psnr",
    "tokenizer_ssim",
    "tokenizer_rfid",
)
STAGE1_KEYS = ("psnr", "ssim", "rfid")  # the Stage I tokenizer's reconstruction, copied as tokenizer_*


def tune_eval(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The tuning split's evaluation of ``step`` (``None`` before it exists)."""
    path = rundir.eval_path(run_dir, step, f"{TUNE_SUFFIX}.json")
    return read_json(path, "the tuning evaluation") if path.is_file() else None


def eval_rows(run: dict[str, Any], report: dict[str, Any], tune: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per guidance weight of a run's report-split evaluation, with the tuning split's numbers beside."""
    tuned = {g["guidance"]: g for g in (tune or {}).get("guidance", [])}
    usage = report.get("tokenizer_usage") or {}
    compression = report.get("compression") or {}
    rows = []
    for g in report["guidance"]:
        t = tuned.get(g["guidance"], {})
        rows.append(
            {
                "name": run["name"],
                "quantizer": run["label"],
                "codebook_size": report.get("codebook_size"),
                "budget": run["budget"],
                "steps": run["steps"],
                "batch_size": run["batch_size"],
                "images_seen": run["steps"] * run["batch_size"],
                "train_flops": training_flops(report, run),
                "seed": run["seed"],
                "guidance": g["guidance"],
                **{k: g.get(k) for k in SAMPLE_KEYS},
                **{f"val_{k}": t.get(k) for k in SAMPLE_KEYS},
                "sampled_codes_used": g.get("codes_used"),
                "sampled_usage": g.get("usage"),
                "tokenizer_codes_used": usage.get("codes_used"),
                "tokenizer_usage": usage.get("usage"),
                "bits_per_token": compression.get("bits_per_token"),
                "val_bits_per_token": ((tune or {}).get("compression") or {}).get("bits_per_token"),
                "num_samples": g.get("num_samples"),
                "report_split": report.get("eval_split"),
                "tune_split": (tune or {}).get("eval_split"),
                "reference_split": report.get("reference_split"),
                "judge_accuracy": (report.get("classifier") or {}).get("test_accuracy"),
                "parameters": report.get("parameters"),
                "step": report.get("step"),
            }
        )
    return rows


def training_flops(report: dict[str, Any], run: dict[str, Any]) -> float | None:
    """The usual 6 N D estimate of training FLOPs: N the transformer's parameters (the tied output layer included),
    D the positions processed (steps x batch x (tokens + the class token)); attention's own cost is left out."""
    grid, params = report.get("token_grid"), report.get("parameters")
    if not grid or not params:
        return None
    return 6.0 * params * run["steps"] * run["batch_size"] * (grid[0] * grid[1] + 1)


def collect(study_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of every MaskGIT run of the study that has its report-split evaluation."""
    study_dir = Path(study_dir)
    rows = []
    for run in read_study(study_dir)["runs"]:
        if run.get("stage") != MaskGITExperiment.stage:
            continue
        run_dir = run_path(study_dir, run)
        report = rundir.latest_eval(run_dir)
        if report is None or "guidance" not in report:
            continue
        stage1 = stage1_columns(study_dir, run)
        rows += [{**row, **stage1} for row in eval_rows(run, report, tune_eval(run_dir, report["step"]))]
    return rows


def stage1_columns(study_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The reconstruction of the tokenizer a MaskGIT run was trained on (its newest evaluation: held-out PSNR, SSIM
    and rFID as ``tokenizer_*``), so that Stage I and Stage II quality are read apart; ``None`` where it has none.

    The tokenizer dir is the run entry's ``tokenizer``: absolute, or relative to the study folder or the working
    directory the study ran from."""
    found = None
    if run.get("tokenizer"):
        path = Path(run["tokenizer"])
        for candidate in [path] if path.is_absolute() else [study_dir / path, path]:
            if candidate.is_dir():
                found = rundir.latest_eval(candidate)
                break
    return {f"tokenizer_{k}": (found or {}).get(k) for k in STAGE1_KEYS}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Means (and standard deviations, ``<key>_std``) over seeds per (quantizer, budget, guidance), in row order."""
    return over_seeds(rows, ("quantizer", "budget", "guidance"), MEAN_KEYS)


def chosen_guidance(summary: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """Per (quantizer, budget): the guidance weight with the lowest mean judge Frechet distance on the tuning split
    (ties: the smaller weight); groups without tuning-split numbers get none."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for s in summary:
        if s["val_judge_fd"] is None:
            continue
        key = (s["quantizer"], s["budget"])
        if key not in best or (s["val_judge_fd"], s["guidance"]) < (best[key]["val_judge_fd"], best[key]["guidance"]):
            best[key] = s
    return {key: s["guidance"] for key, s in best.items()}
