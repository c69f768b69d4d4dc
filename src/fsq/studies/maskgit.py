"""The MaskGIT study (paper Fig. 4 table): Stage II on several tokenizers with the same budget; run and report.

``run_maskgit_study(out_dir, configs)`` trains one MaskGIT per config (a tokenizer not trained yet is trained first
from ``data.tokenizer_config``) under ``out_dir/runs/<name>``; finished runs are reused. The report half
(``maskgit_rows`` flattens evaluation JSONs, one row per run and guidance weight; ``write_report`` writes
``report.md``, ``results.json`` and ``results.csv``) is torch-free.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import MaskGITExperiment, TokenizerExperiment, config_path, load_config
from fsq.io import write_text_atomic
from fsq.studies.common import fmt, latest_eval, read_study, run_path, write_results, write_study


def run_maskgit_study(
    out_dir: str | Path, configs: Sequence[str | Path], *, overrides: Sequence[str] = (), log=print
) -> Path:
    """Stage II on several tokenizers with the same budget (paper Fig. 4 table): one MaskGIT run per config.

    Each config names its tokenizer run (``data.tokenizer``); a tokenizer not trained yet is trained first from
    ``data.tokenizer_config``. MaskGIT runs live under ``out_dir/runs/<name>``; finished ones are reused.
    """
    from fsq import app  # training needs torch; the report does not

    out_dir = Path(out_dir)
    experiments = [load_config(MaskGITExperiment, [config_path(path, "maskgit")], list(overrides)) for path in configs]
    names = [cfg.name for cfg in experiments]
    if len(set(names)) != len(names):
        raise ValueError(f"the configs' names must differ (they name the run dirs): {names}")
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [
        {"name": cfg.name, "label": cfg.name, "run_dir": f"runs/{cfg.name}", "tokenizer": cfg.data.tokenizer}
        for cfg in experiments
    ]
    c0 = experiments[0]
    study = {
        "kind": "maskgit",
        "title": "Stage II: class-conditional MaskGIT on FSQ and VQ tokens (paper Fig. 4)",
        "description": (
            f"Same budget for every run: {c0.train.steps} steps x batch {c0.train.batch_size}, transformer "
            f"{c0.model.depth} x {c0.model.width}; sampling {c0.eval.steps} steps, choice temperature "
            f"{c0.eval.choice_temperature}. Configs: {', '.join(map(str, configs))}."
        ),
        "configs": [str(p) for p in configs],
        "overrides": list(overrides),
        "runs": runs,
    }
    write_study(out_dir, study)
    for index, (run, cfg) in enumerate(zip(runs, experiments), 1):
        tokenizer_dir = Path(cfg.data.tokenizer)
        if cfg.data.tokenizer_config and not (tokenizer_dir / "eval").is_dir():
            log(f"[{index}/{len(runs)}] tokenizer {tokenizer_dir}: training from {cfg.data.tokenizer_config} ...")
            app.train(
                load_config(TokenizerExperiment, [config_path(cfg.data.tokenizer_config, "tokenizer")]), tokenizer_dir
            )
        run_dir = run_path(out_dir, run)
        if rundir.has_eval(run_dir, cfg.train.steps):
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training MaskGIT on {tokenizer_dir} ...")
        app.train(cfg, run_dir)
    return write_report(out_dir)


def maskgit_rows(evals: list[dict[str, Any]], names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (run, guidance weight) of MaskGIT evaluation results."""
    rows = []
    for i, result in enumerate(evals):
        speed = {s["steps"]: s["images_per_second"] for s in result.get("speed", [])}
        compression = result.get("compression") or {}
        for g in result["guidance"]:
            rows.append(
                {
                    "name": names[i] if names else result.get("tokenizer_run", ""),
                    "quantizer": (result.get("quantizer") or "").upper(),
                    "codebook_size": result.get("codebook_size"),
                    "guidance": g["guidance"],
                    "class_accuracy": g.get("class_accuracy"),
                    "fid": g.get("fid"),
                    "precision": g.get("precision"),
                    "recall": g.get("recall"),
                    "fid_samples": g.get("fid_samples"),
                    "codes_used": g.get("codes_used"),
                    "usage": g.get("usage"),
                    "bits_per_token": compression.get("bits_per_token"),
                    "uniform_bits": compression.get("uniform_bits_per_token"),
                    "images_per_second": speed.get(result.get("sampling", {}).get("steps")),
                    "classifier_accuracy": (result.get("classifier") or {}).get("test_accuracy"),
                    "num_samples": g.get("num_samples"),
                    "step": result.get("step"),
                }
            )
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| quantizer | K | CFG | class acc. | sampling FID | precision | recall | codes used | usage | "
        "bits/token | img/s |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        acc = f"{100 * r['class_accuracy']:.1f}%" if r["class_accuracy"] is not None else "-"
        usage = f"{100 * r['usage']:.1f}%" if r["usage"] is not None else "-"
        lines.append(
            f"| {r['quantizer']} | {r['codebook_size']} | {fmt(r['guidance'], 2)} | {acc} | {fmt(r['fid'], 1)} | "
            f"{fmt(r['precision'], 3)} | {fmt(r['recall'], 3)} | {r['codes_used']} | {usage} | "
            f"{fmt(r['bits_per_token'], 2)} | {fmt(r['images_per_second'], 1)} |"
        )
    return "\n".join(lines)


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """The paper's Stage II claims (Fig. 4), each checked against the measured rows."""
    out = []
    by_q: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_q.setdefault(r["quantizer"], []).append(r)
    fsq_rows, vq_rows = by_q.get("FSQ", []), by_q.get("VQ", [])
    if fsq_rows and vq_rows:
        f0 = min(fsq_rows, key=lambda r: abs(r["guidance"]))
        v0 = min(vq_rows, key=lambda r: abs(r["guidance"]))
        if f0["fid"] is not None and v0["fid"] is not None:
            best_f = min(r["fid"] for r in fsq_rows if r["fid"] is not None)
            best_v = min(r["fid"] for r in vq_rows if r["fid"] is not None)
            rel = (best_f - best_v) / best_v
            verdict = "yes" if abs(rel) <= 0.1 else "no"
            out.append(
                f"MaskGIT on FSQ matches MaskGIT on VQ (paper: best FID 4.534 vs 4.509): best sampling FID "
                f"{best_f:.1f} (FSQ) vs {best_v:.1f} (VQ), {100 * rel:+.1f}% -> **{verdict}** (within 10%)."
            )
        if f0["usage"] is not None and v0["usage"] is not None:
            verdict = "yes" if f0["usage"] >= v0["usage"] else "no"
            out.append(
                f"FSQ tokens use more of the codebook (paper: 100% vs 81%): sampled tokens use "
                f"{100 * f0['usage']:.1f}% (FSQ) vs {100 * v0['usage']:.1f}% (VQ) -> **{verdict}**."
            )
        if f0["bits_per_token"] is not None and v0["bits_per_token"] is not None:
            verdict = "yes" if f0["bits_per_token"] >= v0["bits_per_token"] else "no"
            out.append(
                f"FSQ representations are slightly harder to model (paper Fig. 3d: higher compression cost): "
                f"{f0['bits_per_token']:.2f} vs {v0['bits_per_token']:.2f} bits/token -> **{verdict}**."
            )
    for q, q_rows in by_q.items():
        guided = [r for r in q_rows if r["guidance"] > 0 and r["class_accuracy"] is not None]
        plain = [r for r in q_rows if r["guidance"] == 0 and r["class_accuracy"] is not None]
        if guided and plain:
            best = max(guided, key=lambda r: r["class_accuracy"])
            verdict = "yes" if best["class_accuracy"] > plain[0]["class_accuracy"] else "no"
            out.append(
                f"{q}: guidance raises class fidelity: {100 * plain[0]['class_accuracy']:.1f}% without, "
                f"{100 * best['class_accuracy']:.1f}% at CFG {best['guidance']:g} -> **{verdict}**."
            )
            with_pr = [r for r in (plain[0], best) if r["recall"] is not None]
            if len(with_pr) == 2:
                verdict = "yes" if best["recall"] <= plain[0]["recall"] else "no"
                out.append(
                    f"{q}: guidance trades diversity for fidelity (recall {plain[0]['recall']:.3f} -> "
                    f"{best['recall']:.3f}, precision {plain[0]['precision']:.3f} -> {best['precision']:.3f}) "
                    f"-> **{verdict}**."
                )
    return out


def write_report(study_dir: str | Path) -> Path:
    """Write results.json/csv, copy the sample grids under ``samples/`` and write report.md; returns its path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    evals, names = [], []
    for run in study["runs"]:
        result = latest_eval(run_path(study_dir, run))
        if result is not None and "guidance" in result:
            evals.append(result)
            names.append(run["name"])
    if not evals:
        raise ValueError(f"{study_dir}: no MaskGIT run has been evaluated yet")
    rows = maskgit_rows(evals, names)
    write_results(study_dir, study, rows)
    samples = study_dir / "samples"
    samples.mkdir(exist_ok=True)
    images = []
    for name, result in zip(names, evals):
        run_dir = run_path(study_dir, next(r for r in study["runs"] if r["name"] == name))
        for g in result["guidance"]:
            grid = rundir.eval_path(run_dir, result["step"], f"_samples_g{g['guidance']:g}.png")
            if grid.is_file():
                target = samples / f"{name}_g{g['guidance']:g}.png"
                shutil.copyfile(grid, target)
                images.append((f"{result['quantizer'].upper()}, CFG {g['guidance']:g}", target))
    first = evals[0]
    classifier = first.get("classifier") or {}
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        markdown_table(rows),
        "",
        f"Class accuracy: share of {rows[0]['num_samples']} samples (classes in equal shares) that a classifier "
        f"trained on the real training set assigns to the conditioning class; the classifier itself scores "
        f"{100 * classifier.get('test_accuracy', float('nan')):.2f}% on the real test set. Sampling FID and "
        f"precision / recall (k = 3) against as many random real training images, on Inception-v3 features "
        f"({rows[0]['fid_samples']} samples: small-sample FIDs are biased upward and comparable only at equal "
        "counts). Bits/token: compression cost of held-out token grids (M2T power schedule, alpha 2.2, 12 steps); "
        f"uniform would be {fmt(rows[0]['uniform_bits'], 2)}. img/s: sampling plus decoding at the evaluation's "
        "number of steps.",
        "",
        "## What the paper claims, measured here",
        "",
        *[f"- {line}" for line in claims(rows)],
        "",
        "## Samples (one row per class)",
        "",
        *[f"**{label}**\n\n![{label}](samples/{path.name})\n" for label, path in images],
        "Every number is also in `results.json` and `results.csv`.",
        "",
    ]
    path = study_dir / "report.md"
    write_text_atomic("\n".join(lines), path)
    return path


DEFAULT_CONFIGS = ["configs/maskgit/fsq_mnist.yaml", "configs/maskgit/vq_mnist.yaml"]


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study maskgit [CONFIG...] [key=value...]``: the items without ``=`` are the MaskGIT configs."""
    configs = [item for item in overrides if "=" not in item]
    return run_maskgit_study(out_dir, configs or DEFAULT_CONFIGS, overrides=[item for item in overrides if "=" in item])
