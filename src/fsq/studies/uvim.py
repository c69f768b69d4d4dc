"""The UViM study (paper Table 2): depth, colorization and panoptic with FSQ vs VQ and the ablations; run, report.

One row per run: the task metric of the full model, of the oracle (Stage I upper bound) and of the trivial
baseline, the codebook usage of the oracle's codes, and the claims checked: FSQ within 10% of VQ on each task;
VQ without codebook splitting collapses; without the image context FSQ degrades less than VQ. The report half
is torch-free.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import UViMExperiment, config_path, load_config
from fsq.io import write_text_atomic
from fsq.studies.common import fmt, latest_eval, read_study, run_path, write_results, write_study

# The UViM study (paper Table 2): label -> (config file, overrides). Each task FSQ vs VQ (UViM recipe, with
# splitting), plus the ablations: VQ without splitting on depth, and both quantizers without context on panoptic.
UVIM_PLAN = [
    ("depth", "FSQ", "configs/uvim/depth_fsq.yaml", []),
    ("depth", "VQ", "configs/uvim/depth_vq.yaml", []),
    ("depth", "VQ, no splitting", "configs/uvim/depth_vq.yaml", ["quantizer.recipe=uvim_nosplit"]),
    ("colorization", "FSQ", "configs/uvim/colorization_fsq.yaml", []),
    ("colorization", "VQ", "configs/uvim/colorization_vq.yaml", []),
    ("panoptic", "FSQ", "configs/uvim/panoptic_fsq.yaml", []),
    ("panoptic", "VQ", "configs/uvim/panoptic_vq.yaml", []),
    ("panoptic", "FSQ, no context", "configs/uvim/panoptic_fsq.yaml", ["model.use_context=false"]),
    ("panoptic", "VQ, no context", "configs/uvim/panoptic_vq.yaml", ["model.use_context=false"]),
]


def run_uvim_study(
    out_dir: str | Path,
    *,
    tasks: list[str] | None = None,
    overrides: Sequence[str] = (),
    log=print,
) -> Path:
    """Train (or reuse) every UViM run of the plan for ``tasks`` under ``out_dir/runs/``, then write the report."""
    from fsq import app  # training needs torch; the report does not

    out_dir = Path(out_dir)
    plan_rows = [row for row in UVIM_PLAN if tasks is None or row[0] in tasks]
    if not plan_rows:
        raise ValueError(f"no UViM runs for tasks {tasks}; choose from depth, colorization, panoptic")
    runs: list[dict[str, Any]] = []
    configs = []
    for task, label, path, extra in plan_rows:
        slug = label.lower().replace(", ", "_").replace(" ", "")
        name = f"{task}_{slug}"
        cfg = load_config(UViMExperiment, [config_path(path, "uvim")], [*extra, *overrides, f"name={name}"])
        runs.append(
            {
                "name": name,
                "task": task,
                "label": label,
                "config": path,
                "overrides": extra,
                "run_dir": f"runs/{name}",
            }
        )
        configs.append(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    study_path = out_dir / "study.json"
    previous = json.loads(study_path.read_text())["runs"] if study_path.is_file() else []
    seconds = {r["name"]: r.get("seconds") for r in previous}
    c0 = configs[0]
    fsq = next((c for c in configs if c.quantizer.kind == "fsq"), c0).quantizer
    vq = next((c for c in configs if c.quantizer.kind == "vq"), c0).quantizer  # an FSQ config's VQ fields are unused
    study = {
        "kind": "uvim",
        "title": "UViM with FSQ vs VQ: depth, colorization, panoptic (paper Table 2)",
        "description": (
            f"Synthetic scenes / photo crops at {c0.data.image_size} px, {c0.data.train_size} training pairs, "
            f"{c0.data.eval_size} held-out; oracle {c0.train.oracle_steps} steps and language model "
            f"{c0.train.lm_steps} steps at batch {c0.train.batch_size}; {c0.model.code_grid}x{c0.model.code_grid} "
            f"codes; FSQ {fsq.levels} vs VQ {vq.codebook_size} codes (UViM recipe)."
        ),
        "overrides": list(overrides),
        "runs": runs,
    }
    for run in runs:
        run["seconds"] = seconds.get(run["name"])
    write_study(out_dir, study)
    for index, (run, cfg) in enumerate(zip(runs, configs), 1):
        run_dir = run_path(out_dir, run)
        if rundir.has_eval(run_dir, cfg.train.lm_steps):
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training ...")
        tick = time.perf_counter()
        app.train(cfg, run_dir)
        run["seconds"] = time.perf_counter() - tick
        write_study(out_dir, study)
    return write_report(out_dir)


# task -> (metric key, label, lower is better); colorization reports FID instead of PSNR when it was measured
TASK_METRICS = {
    "depth": ("rmse", "RMSE (m)", True),
    "colorization": ("psnr", "PSNR (dB)", False),
    "panoptic": ("pq", "PQ", False),
}


def uvim_rows(study_dir: str | Path, study: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluated run of a UViM study."""
    rows = []
    for run in study["runs"]:
        result = latest_eval(run_path(study_dir, run))
        if result is None:
            continue
        key, label, _ = TASK_METRICS[result["task"]]
        if result["task"] == "colorization" and result["prediction"].get("fid") is not None:
            key, label = "fid", "FID"  # the paper's colorization metric, when measured
        rows.append(
            {
                "name": run["name"],
                "task": result["task"],
                "variant": run["label"],
                "metric": label,
                "prediction": result["prediction"].get(key),
                "oracle": result["oracle"].get(key),
                "baseline": result["baseline"].get(key),
                "fid": result["prediction"].get("fid"),
                "codebook_size": result["codebook_size"],
                "codes_used": result["oracle_codes_used"],
                "usage": result["oracle_usage"],
                "code_accuracy": result["code_accuracy"],
                "seconds": run.get("seconds"),
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = "| task | variant | metric | UViM | oracle | trivial baseline | K | codes used | usage | codes exact |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['variant']} | {r['metric']} | {fmt(r['prediction'], 3)} | {fmt(r['oracle'], 3)} | "
            f"{fmt(r['baseline'], 3)} | {r['codebook_size']} | {r['codes_used']} | {100 * r['usage']:.2f}% | "
            f"{100 * r['code_accuracy']:.1f}% |"
        )
    return "\n".join(lines)


def _find(rows: list[dict[str, Any]], task: str, variant: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["task"] == task and r["variant"] == variant), None)


def claims(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for task in TASK_METRICS:
        f, v = _find(rows, task, "FSQ"), _find(rows, task, "VQ")
        label = (f or v or {}).get("metric", "")
        lower = label in ("RMSE (m)", "FID")
        if f and v and f["prediction"] is not None and v["prediction"] is not None:
            gap = (f["prediction"] - v["prediction"]) / abs(v["prediction"]) * (1 if lower else -1)
            verdict = "yes" if gap <= 0.10 else "no"
            out.append(
                f"{task}: FSQ within 10% of VQ ({label} {f['prediction']:.3f} vs {v['prediction']:.3f}, FSQ "
                f"{100 * gap:+.1f}% worse) -> **{verdict}**."
            )
        for r in (f, v):
            if r and r["prediction"] is not None and r["baseline"] is not None:
                better = r["prediction"] < r["baseline"] if lower else r["prediction"] > r["baseline"]
                out.append(
                    f"{task} ({r['variant']}): beats the trivial baseline ({r['prediction']:.3f} vs "
                    f"{r['baseline']:.3f}) -> **{'yes' if better else 'no'}**."
                )
    split, nosplit = _find(rows, "depth", "VQ"), _find(rows, "depth", "VQ, no splitting")
    if split and nosplit:
        verdict = "yes" if nosplit["usage"] < split["usage"] else "no"
        out.append(
            f"depth: VQ without codebook splitting uses fewer codes (paper: 0.78% usage, RMSE 0.490 vs 0.468): "
            f"{100 * nosplit['usage']:.2f}% vs {100 * split['usage']:.2f}% usage, RMSE {nosplit['prediction']:.3f} vs "
            f"{split['prediction']:.3f} -> **{verdict}**."
        )
    f, fn = _find(rows, "panoptic", "FSQ"), _find(rows, "panoptic", "FSQ, no context")
    v, vn = _find(rows, "panoptic", "VQ"), _find(rows, "panoptic", "VQ, no context")
    if f and fn and v and vn:
        drop_f, drop_v = f["prediction"] - fn["prediction"], v["prediction"] - vn["prediction"]
        verdict = "yes" if drop_f <= drop_v else "no"
        out.append(
            f"panoptic: without the image context FSQ degrades less than VQ (paper: 40.2 vs 39.0 PQ): PQ drops by "
            f"{drop_f:.3f} (FSQ) vs {drop_v:.3f} (VQ) -> **{verdict}**."
        )
    return out


def write_report(study_dir: str | Path) -> Path:
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = uvim_rows(study_dir, study)
    if not rows:
        raise ValueError(f"{study_dir}: no UViM run has been evaluated yet")
    write_results(study_dir, study, rows)
    images = []
    for r in rows:
        run_dir = run_path(study_dir, next(x for x in study["runs"] if x["name"] == r["name"]))
        found = sorted((run_dir / rundir.EVAL).glob(f"{rundir.STEP_PREFIX}*_predictions.png"))
        if found:
            images.append(
                f"**{r['task']}, {r['variant']}** (rows: image, target, baseline, oracle, UViM)\n\n"
                f"![{r['name']}]({found[-1].relative_to(study_dir)})\n"
            )
    done = {r["name"] for r in rows}
    missing = [x["name"] for x in study["runs"] if x["name"] not in done]
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        markdown_table(rows),
        "",
        "UViM: the language model's greedy codes decoded by the oracle with the image as context. Oracle: the "
        "oracle decoding its own codes of the true target (Stage I's upper bound). Usage: codes of the held-out "
        "targets under the oracle. Codes exact: share of code positions the language model predicts exactly.",
        "",
        "## What the paper claims, measured here",
        "",
        *[f"- {line}" for line in claims(rows)],
        "",
        "## Predictions",
        "",
        *images,
    ]
    if missing:
        lines += [f"Runs not finished yet (rerun the study to resume them): {', '.join(missing)}", ""]
    path = study_dir / "report.md"
    write_text_atomic("\n".join(lines), path)
    return path


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study uvim [--tasks ...] [key=value...]``."""
    return run_uvim_study(out_dir, tasks=options.get("tasks"), overrides=overrides)
