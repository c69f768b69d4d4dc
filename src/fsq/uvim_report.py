"""The UViM study's report as a pure function of its run dirs (no torch import), like the paper's Table 2.

One row per run: the task metric of the full model, of the oracle (Stage I upper bound) and of the trivial
baseline, the codebook usage of the oracle's codes, and the claims checked: FSQ within 10% of VQ on each task;
VQ without codebook splitting collapses; without the image context FSQ degrades less than VQ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq.reporting import _fmt, _latest_eval, read_study, write_results

# task -> (metric key, label, lower is better); colorization reports FID instead of PSNR when it was measured
TASK_METRICS = {
    "depth": ("rmse", "RMSE (m)", True),
    "colorization": ("psnr", "PSNR (dB)", False),
    "panoptic": ("pq", "PQ", False),
}


def uvim_rows(study: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for run in study["runs"]:
        result = _latest_eval(Path(run["run_dir"]))
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
            f"| {r['task']} | {r['variant']} | {r['metric']} | {_fmt(r['prediction'], 3)} | {_fmt(r['oracle'], 3)} | "
            f"{_fmt(r['baseline'], 3)} | {r['codebook_size']} | {r['codes_used']} | {100 * r['usage']:.2f}% | "
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


def write_uvim_report(study_dir: str | Path) -> Path:
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = uvim_rows(study)
    if not rows:
        raise ValueError(f"{study_dir}: no UViM run has been evaluated yet")
    write_results(study_dir, study, rows)
    images = []
    for r in rows:
        run_dir = Path(next(x["run_dir"] for x in study["runs"] if x["name"] == r["name"]))
        found = sorted((run_dir / "eval").glob("step_*_predictions.png"))
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
    path.write_text("\n".join(lines))
    return path
