"""The UViM study (paper Table 2): depth, colorization and panoptic with FSQ vs VQ and the ablations; run, report.

``fsq study uvim --seeds 0 1 2`` trains each row of :data:`UVIM_PLAN` once per seed (``train.seed``; the data
are fixed by ``data.seed``) and reports, per (task, variant), the mean ± sample std over the seeds of the task
metric of the full model, of the oracle (Stage I upper bound) and of the trivial baseline, the oracle's codebook
usage, the language model's, and the codebook splits the oracle made. The claims and their tests (two-sided
parity with a margin, one-sided directions, each against the seeds' spread) are in
:mod:`fsq.studies.uvim_claims`. The report half is torch-free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import UViMExperiment, config_path, load_config
from fsq.io import read_json, write_text_atomic
from fsq.studies.common import (
    Stopwatch,
    latest_eval,
    logged_time_sentence,
    read_study,
    run_path,
    timing_line,
    train_phase,
    unless_busy,
    write_results,
    write_study,
)
from fsq.studies.uvim_claims import claims, group, markdown_table

__all__ = ["UVIM_PLAN", "claims", "group", "markdown_table", "run", "run_uvim_study", "uvim_rows", "write_report"]

# The UViM study (paper Table 2): (task, label, config file, overrides, seeded). Each task FSQ vs VQ (UViM recipe,
# with splitting), plus the ablations: VQ without splitting on depth, and both quantizers without context on
# panoptic. ``seeded`` rows run every seed given; the others the first only: colorization's FID costs minutes of
# Inception on a CPU per run, so its claim is stated with one seed (and says that its spread is not measured).
UVIM_PLAN = [
    ("depth", "FSQ", "configs/uvim/depth_fsq.yaml", [], True),
    ("depth", "VQ", "configs/uvim/depth_vq.yaml", [], True),
    ("depth", "VQ, no splitting", "configs/uvim/depth_vq.yaml", ["quantizer.recipe=uvim_nosplit"], True),
    ("colorization", "FSQ", "configs/uvim/colorization_fsq.yaml", [], False),
    ("colorization", "VQ", "configs/uvim/colorization_vq.yaml", [], False),
    ("panoptic", "FSQ", "configs/uvim/panoptic_fsq.yaml", [], True),
    ("panoptic", "VQ", "configs/uvim/panoptic_vq.yaml", [], True),
    ("panoptic", "FSQ, no context", "configs/uvim/panoptic_fsq.yaml", ["model.use_context=false"], True),
    ("panoptic", "VQ, no context", "configs/uvim/panoptic_vq.yaml", ["model.use_context=false"], True),
]


def _budget(configs: list[UViMExperiment], runs: list[dict[str, Any]]) -> str:
    """The runs' sizes and seeds in words (for the report and the README)."""
    seeds: dict[str, list[int]] = {}
    for run in runs:
        seeds.setdefault(run["task"], [])
        if run["seed"] not in seeds[run["task"]]:
            seeds[run["task"]].append(run["seed"])
    c0 = configs[0]
    m, lm, t = c0.model, c0.lm, c0.train

    def steps(key: str) -> str:  # "600 steps", or per task where the tasks differ ("2000 steps for panoptic")
        by_task = {c.task.name: getattr(c.train, key) for c in configs}
        counts = sorted(set(by_task.values()), key=list(by_task.values()).count, reverse=True)
        if len(counts) == 1:
            return f"{counts[0]} steps"
        others = "; ".join(f"{n} for {', '.join(k for k, v in by_task.items() if v == n)}" for n in counts[1:])
        return f"{counts[0]} steps ({others})"

    sizes = sorted({(c.task.name, c.data.train_size) for c in configs})
    fid = sorted({c.eval.fid_samples for c in configs if c.task.name == "colorization" and c.eval.fid_samples})
    text = (
        f"Per run: oracle (ViT, patch {m.patch}, width {m.width}, {m.encoder_depth}+{m.decoder_depth} layers, "
        f"{m.code_grid}x{m.code_grid} codes) {steps('oracle_steps')}, then the language model (width {lm.width}, "
        f"{lm.encoder_depth}+{lm.decoder_depth} layers) {steps('lm_steps')}, batch {t.batch_size}, "
        f"{t.threads or 'all'} torch thread(s); {c0.data.image_size} px; training pairs "
        + ", ".join(f"{task} {n}" for task, n in sizes)
        + f"; evaluated on {c0.data.eval_size} `{c0.data.eval_split}` pairs; {len(runs)} runs; seeds (train.seed: "
        "initialisation, batch order, code dropout; the data stay fixed): "
        + "; ".join(f"{task} {', '.join(map(str, s))}" for task, s in seeds.items())
        + "."
    )
    if fid:
        text += (
            f" Colorization FID: {fid[0]} predictions against {fid[0]} other crops of the evaluated split's photos "
            f"(never their ground truths; Inception-v3)."
        )
    return text


def _quantizer_text(section: Any) -> str:
    """One quantizer of the study in words (``FSQ [7, 5, 5, 5, 5]``, ``VQ 4096 codes (recipe `uvim`)``): its kind
    and whichever of levels, codebook size and recipe its family has."""
    levels, size, recipe = (section.setting(name) for name in ("levels", "codebook_size", "recipe"))
    text = section.kind.upper() + (f" {levels}" if levels is not None else "")
    text += f" {size} codes" if size is not None else ""
    return text + (f" (recipe `{recipe}`)" if recipe is not None else "")


def run_uvim_study(
    out_dir: str | Path,
    *,
    tasks: list[str] | None = None,
    seeds: Sequence[int] = (0,),
    overrides: Sequence[str] = (),
    log=print,
    jobs: int = 1,
) -> Path:
    """Train (or reuse) every UViM run of the plan for ``tasks`` and each of ``seeds`` (the first only for rows
    not ``seeded``) under ``out_dir/runs/``, then write the report. Runs are named ``<task>_<variant>_s<seed>``;
    the seed is ``train.seed``. The wall time, CPU time and load average of the calls that trained anything are
    recorded in ``study.json`` (``timing``, summed over the calls into the same folder).

    ``jobs`` > 1 trains that many runs at once, in worker processes that each go down the plan taking the runs no
    other is training (as separate calls into the same folder do); the call's time is recorded when they are
    done."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    clock = Stopwatch()
    out_dir = Path(out_dir)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(isinstance(x, bool) or int(x) != x or x < 0 for x in seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {seeds}")
    plan_rows = [row for row in UVIM_PLAN if tasks is None or row[0] in tasks]
    if not plan_rows:
        raise ValueError(f"no UViM runs for tasks {tasks}; choose from depth, colorization, panoptic")
    runs: list[dict[str, Any]] = []
    configs = []
    for task, label, path, extra, seeded in plan_rows:
        slug = label.lower().replace(", ", "_").replace(" ", "")
        for seed in seeds if seeded else seeds[:1]:
            name = f"{task}_{slug}_s{seed}"
            cfg = load_config(
                UViMExperiment,
                [config_path(path, UViMExperiment.stage)],
                [*extra, *overrides, f"train.seed={seed}", f"name={name}"],
            )
            runs.append(
                {
                    "name": name,
                    "task": task,
                    "label": label,
                    "seed": seed,
                    "config": path,
                    "overrides": extra,
                    "run_dir": f"runs/{name}",
                }
            )
            configs.append(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    study_path = out_dir / "study.json"
    previous = read_json(study_path, "the study's plan") if study_path.is_file() else {}
    seconds = {r["name"]: r.get("seconds") for r in previous.get("runs", [])}
    c0 = configs[0]
    first: dict[str, Any] = {}  # each kind's first config names it (an ablation's recipe is in its label)
    for c in configs:
        first.setdefault(c.quantizer.kind, c.quantizer)
    quantizers = " vs ".join(_quantizer_text(q) for q in first.values())
    study: dict[str, Any] = {
        "kind": "uvim",
        "title": "UViM with FSQ vs VQ: depth, colorization, panoptic (paper Table 2)",
        "description": (
            f"Synthetic scenes / photo crops at {c0.data.image_size} px; {c0.model.code_grid}x{c0.model.code_grid} "
            f"codes; {quantizers}; evaluated on "
            f"`{c0.data.eval_split}`."
        ),
        "budget": _budget(configs, runs),
        "seeds": seeds,
        "overrides": list(overrides),
        "runs": runs,
    }
    if previous.get("timing"):
        study["timing"] = previous["timing"]
    for run in runs:
        run["seconds"] = seconds.get(run["name"])
    write_study(out_dir, study)
    train_phase(jobs, train_runs, out_dir, study, (configs,), log, clock, 0)
    return write_report(out_dir)


def train_runs(
    out_dir: Path,
    study: dict[str, Any],
    configs: list[UViMExperiment],
    log=print,
    clock: Stopwatch | None = None,
    trained_before: int = 0,
) -> int:
    """Train the runs of ``study`` (one config each) not finished and not being trained by another process, in
    plan order; returns how many it trained. Each finished run's seconds go into ``study.json`` at once, with
    ``clock``'s record of this call when given. A module-level function, so that ``jobs`` > 1 can run it in
    worker processes."""
    from fsq import app  # training needs torch; the report does not

    runs = study["runs"]
    trained = 0
    for index, (run, cfg) in enumerate(zip(runs, configs), 1):
        run_dir = run_path(out_dir, run)
        if rundir.has_eval(run_dir, cfg.train.lm_steps):
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training ...")
        tick = time.perf_counter()
        if not unless_busy(partial(app.train, cfg, run_dir), log):  # another call is training it
            continue
        trained += 1
        run["seconds"] = time.perf_counter() - tick
        write_study(out_dir, study, clock, trained_before + trained)  # a cut-short call counts
    return trained


# task -> (metric key, label, lower is better); colorization reports FID instead of PSNR when it was measured
TASK_METRICS = {
    "depth": ("rmse", "RMSE (m)", True),
    "colorization": ("psnr", "PSNR (dB)", False),
    "panoptic": ("pq", "PQ", False),
}


def uvim_rows(study_dir: str | Path, study: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluated run of a UViM study (one per seed)."""
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
                "seed": run.get("seed", 0),
                "split": result.get("split", "test"),
                "metric": label,
                "prediction": result["prediction"].get(key),
                "oracle": result["oracle"].get(key),
                "baseline": result["baseline"].get(key),
                "perfect": result.get("target_fid") if key == "fid" else None,  # FID's floor at this sample size
                "fid": result["prediction"].get("fid"),
                "oracle_fid": result["oracle"].get("fid"),
                "baseline_fid": result["baseline"].get("fid"),
                "target_fid": result.get("target_fid"),
                "psnr": result["prediction"].get("psnr"),
                "oracle_psnr": result["oracle"].get("psnr"),
                "baseline_psnr": result["baseline"].get("psnr"),
                "fid_samples": result.get("fid_samples"),
                "fid_reference": result.get("fid_reference"),
                "codebook_size": result["codebook_size"],
                "codes_used": result["oracle_codes_used"],
                "usage": result["oracle_usage"],
                "predicted_usage": result.get("predicted_usage"),
                "splits": result.get("oracle_splits"),
                "code_accuracy": result["code_accuracy"],
                "tokens": result["num_samples"] * result["code_grid"] ** 2,  # the held-out codes usage counts
                "seconds": run.get("seconds"),
            }
        )
    return fid_or_psnr(rows)


def fid_fails(row: dict[str, Any]) -> bool:
    """Whether a colorization row's FID fails its sanity check: the ground truths themselves (``target_fid``,
    measured against the same reference crops) must score below the oracle and the prediction, else FID measures
    something else than closeness to the truth at this sample size and reference (with a reference from the training
    photos it measured likeness to their colours: the test photos are others). An evaluation without ``target_fid``
    cannot be checked."""
    target = row.get("target_fid")
    return target is not None and any(row.get(k) is not None and row[k] <= target for k in ("fid", "oracle_fid"))


def fid_or_psnr(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Colorization rows scored by FID (the paper's metric) unless any of them fails :func:`fid_fails`: then every
    colorization row is scored by PSNR (one metric for the task across variants and seeds); the FID numbers stay in
    the rows for the claim that says why (:func:`fsq.studies.uvim_claims.claims`)."""
    colour = [r for r in rows if r["task"] == "colorization" and r["metric"] == "FID"]
    if not any(fid_fails(r) for r in colour):
        return rows
    for r in colour:
        r.update(
            metric="PSNR (dB)",
            prediction=r["psnr"],
            oracle=r["oracle_psnr"],
            baseline=r["baseline_psnr"],
            perfect=None,
            fid_check="failed",
        )
    return rows


TABLE_NOTE = (
    "Mean ± sample standard deviation over the seeds. UViM: the language model's greedy codes decoded by the oracle "
    "with the image as context. Oracle: the oracle decoding its own codes of the true target (Stage I's upper "
    "bound). Shares: the oracle's gain over the trivial baseline as a share of a perfect prediction's, and the full "
    "model's gain as a share of the oracle's (per seed, then averaged). Oracle usage: share of the K codes the "
    "oracle gives the held-out targets; in brackets the most that can be counted from that many codes. Predicted "
    "usage: share of the K codes in the language model's greedy predictions (seed mean). Wall min/run: the "
    "wall-clock minutes of the call that finished each run (both stages and the evaluation, seed mean): runs "
    "trained side by side share the cores, and a resumed run counts only its last call, so the budget line's CPU "
    "time is the cost. Codebook "
    "splits: per run, summed over the oracle's training (VQ, EMA codebook). Codes exact: share of code positions "
    "the language model predicts exactly."
)


def write_report(study_dir: str | Path) -> Path:
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = uvim_rows(study_dir, study)
    if not rows:
        raise ValueError(f"{study_dir}: no UViM run has been evaluated yet")
    evaluated = {r["name"] for r in rows}
    phases = [
        [run_path(study_dir, run) / phase for phase in ("oracle", "lm")]
        for run in study["runs"]
        if run["name"] in evaluated
    ]
    logged = logged_time_sentence(phases, "evaluated runs", "oracle and language model step times")
    if logged:  # the runs' own cost, whichever process trained them (a call cut short records no share)
        study = {**study, "budget": f"{study.get('budget', '')} {logged}"}
    write_results(study_dir, study, rows)
    images = []
    first_seed = min(r["seed"] for r in rows)
    for r in (r for r in rows if r["seed"] == first_seed):
        run_dir = run_path(study_dir, next(x for x in study["runs"] if x["name"] == r["name"]))
        found = sorted((run_dir / rundir.EVAL).glob(f"{rundir.STEP_PREFIX}*_predictions.png"))
        if found:
            images.append(
                f"**{r['task']}, {r['variant']}**, seed {r['seed']} (rows: image, target, baseline, oracle, UViM)\n\n"
                f"![{r['name']}]({found[-1].relative_to(study_dir)})\n"
            )
    done = {r["name"] for r in rows}
    missing = [x["name"] for x in study["runs"] if x["name"] not in done]
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        study.get("budget", ""),
        *([timing_line(study["timing"])] if study.get("timing") else []),
        "",
        markdown_table(rows),
        "",
        TABLE_NOTE,
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
    """``fsq study uvim [--tasks ...] [--seeds ...] [key=value...]``."""
    seeds = options.get("seeds") or [0]
    jobs = int(options.get("jobs") or 1)
    return run_uvim_study(out_dir, tasks=options.get("tasks"), seeds=seeds, overrides=overrides, jobs=jobs)
