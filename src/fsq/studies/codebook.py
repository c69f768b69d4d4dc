"""The codebook-size study (paper Fig. 3) and the level-set study (Fig. 10): plan, run and report.

``run_study(kind, out_dir, ...)`` plans one ordinary tokenizer run dir per (quantizer, codebook size) or level set
under ``out_dir/runs/``, trains each through :func:`fsq.app.train` (a finished run, one holding its evaluation,
is reused; an interrupted one resumes from its checkpoint), then writes the report. The report half is a pure
function of the study folder and imports no torch (``fsq report`` runs anywhere).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import TokenizerExperiment, load_config
from fsq.io import write_text_atomic
from fsq.studies.common import fmt, latest_eval, read_study, run_path, write_results, write_study

# Presets: base overrides of the tokenizer config. "cpu" is sized from step costs measured on a 2-core CPU (16 px
# images, 4x4 tokens, ~0.05 s per step) so the 15 runs of the demo fit in 10 minutes; "gpu": one GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "data": {"image_size": 16, "eval_limit": 3000},
        "model": {"filters": 16, "channel_multipliers": [1, 2, 4], "num_res_blocks": 1, "num_groups": 8},
        "optim": {"lr": 0.002, "warmup_steps": 20},
        "train": {
            "steps": 200,
            "batch_size": 32,
            "ema_decay": 0.98,
            "log_every": 25,
            "checkpoint_every": 100,
            "threads": 2,
            "progress": False,
        },
        "eval": {"fid_samples": 0},
        "vq_dim": 32,
    },
    "gpu": {
        "data": {"image_size": 32},
        "model": {"preset": "gpu-base"},
        "optim": {"lr": 0.0005, "warmup_steps": 500},
        "train": {"steps": 20000, "batch_size": 256, "ema_decay": 0.999, "log_every": 100, "checkpoint_every": 2000},
        "eval": {"fid_samples": 5000},
        "vq_dim": 256,
    },
}
QUANTIZERS = {  # label -> quantizer config overlay (vq width filled from the preset)
    "FSQ": {"kind": "fsq"},
    "VQ": {"kind": "vq", "recipe": "maskgit"},
    "VQ (no entropy)": {"kind": "vq", "recipe": "maskgit_noentropy"},
}
DEFAULT_SIZES = [2**6, 2**8, 2**10, 2**12, 2**14]
# Fig. 10: at a fixed codebook size (~2^10), level sets with every L >= 5 against ones with some L < 5.
DEFAULT_LEVEL_SETS = [[8, 5, 5, 5], [8, 8, 16], [32, 32], [8, 8, 4, 4], [4, 4, 4, 4, 4], [2] * 10]


def plan(
    kind: str,
    *,
    sizes: list[int] | None = None,
    level_sets: list[list[int]] | None = None,
    quantizers: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The runs of a study: name, label, quantizer overlay, target size and levels."""
    from fsq.quantizers.levels import levels_for_codebook_size  # the quantizers need torch; reports do not

    runs = []
    if kind == "codebook-size":
        for size in sizes or DEFAULT_SIZES:
            for label in quantizers or list(QUANTIZERS):
                if label not in QUANTIZERS:
                    raise ValueError(f"unknown quantizer {label!r}; choose from {list(QUANTIZERS)}")
                slug = {"FSQ": "fsq", "VQ": "vq", "VQ (no entropy)": "vq-noent"}[label]
                levels = levels_for_codebook_size(size) if label == "FSQ" else None
                runs.append(
                    {
                        "name": f"{slug}_{size:06d}",
                        "run_dir": f"runs/{slug}_{size:06d}",
                        "label": label,
                        "target_size": size,
                        "levels": levels,
                        "quantizer": {
                            **QUANTIZERS[label],
                            **({"levels": levels} if levels else {"codebook_size": size}),
                        },
                    }
                )
    elif kind == "levels":
        for levels in level_sets or DEFAULT_LEVEL_SETS:
            smallest = min(levels)
            label = "FSQ, all L >= 5" if smallest >= 5 else f"FSQ, min L = {smallest}"
            runs.append(
                {
                    "name": "fsq_" + "x".join(map(str, levels)),
                    "run_dir": "runs/fsq_" + "x".join(map(str, levels)),
                    "label": label,
                    "target_size": None,
                    "levels": list(levels),
                    "quantizer": {"kind": "fsq", "levels": list(levels)},
                }
            )
    else:
        raise ValueError(f"unknown study {kind!r}; choose codebook-size or levels")
    return runs


def run_config(run: dict[str, Any], data: str, preset: str, overrides: list[str]) -> TokenizerExperiment:
    """The tokenizer config of one run of the study."""
    base = json.loads(json.dumps(PRESETS[preset]))
    vq_dim = base.pop("vq_dim")
    base["data"]["source"] = data
    quantizer = dict(run["quantizer"])
    if quantizer["kind"] == "vq":
        quantizer["dim"] = vq_dim
    base["quantizer"] = quantizer
    base["name"] = run["name"]
    return load_config(TokenizerExperiment, [], overrides, base=base)


def run_study(
    kind: str,
    out_dir: str | Path,
    *,
    data: str = "mnist",
    preset: str = "cpu",
    sizes: list[int] | None = None,
    level_sets: list[list[int]] | None = None,
    quantizers: list[str] | None = None,
    overrides: Sequence[str] = (),
    log=print,
) -> Path:
    """Train (or reuse) every run of the study, then write and return ``report.md``."""
    from fsq import app  # training needs torch; the plan and the report do not

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {list(PRESETS)}")
    out_dir = Path(out_dir)
    runs = plan(kind, sizes=sizes, level_sets=level_sets, quantizers=quantizers)
    configs = [run_config(run, data, preset, list(overrides)) for run in runs]  # validate everything first
    out_dir.mkdir(parents=True, exist_ok=True)
    title = {
        "codebook-size": "Codebook-size study: FSQ vs VQ (paper Fig. 3)",
        "levels": "Level-set study at a fixed codebook size (paper Fig. 10)",
    }[kind]
    c0 = configs[0]
    study = {
        "kind": kind,
        "title": title,
        "data": data,
        "preset": preset,
        "overrides": list(overrides),
        "budget": f"{c0.train.steps} steps x batch {c0.train.batch_size} per run, {c0.data.image_size} px images.",
        "description": "Each run is an ordinary tokenizer run dir under runs/; evaluation on the held-out split.",
        "runs": [{k: v for k, v in run.items() if k != "quantizer"} for run in runs],
    }
    write_study(out_dir, study)
    for index, (run, cfg) in enumerate(zip(runs, configs), 1):
        run_dir = run_path(out_dir, run)
        if rundir.has_eval(run_dir, cfg.train.steps):
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training {run['label']} {run['levels'] or run['target_size']} ...")
        result = app.train(cfg, run_dir)
        e = result["eval"]
        log(
            f"    PSNR {e['psnr']:.2f} dB, codes used {e['codes_used']}/{e['codebook_size']} "
            f"({100 * e['usage']:.1f}%), {e['seconds']:.0f} s eval"
        )
    return write_report(out_dir)


COLUMNS = [
    "name",
    "quantizer",
    "codebook_size",
    "levels",
    "psnr",
    "ssim",
    "rfid",
    "codes_used",
    "usage",
    "perplexity",
    "entropy_bits",
    "tokens",
    "num_samples",
    "params_total",
    "params_quantizer",
    "params_encoder",
    "params_decoder",
    "step",
]


def collect(study_dir: str | Path) -> list[dict[str, Any]]:
    """One row per finished run of the study (runs without an evaluation yet are skipped)."""
    study_dir = Path(study_dir)
    rows = []
    for run in read_study(study_dir)["runs"]:
        result = latest_eval(run_path(study_dir, run))
        if result is None:
            continue
        params = result.get("parameters", {})
        rows.append(
            {
                "name": run["name"],
                "quantizer": run["label"],
                "codebook_size": result["codebook_size"],
                "target_size": run.get("target_size"),
                "levels": "x".join(map(str, run["levels"])) if run.get("levels") else "",
                "psnr": result.get("psnr"),
                "ssim": result.get("ssim"),
                "rfid": result.get("rfid"),
                "codes_used": result.get("codes_used"),
                "usage": result.get("usage"),
                "perplexity": result.get("perplexity"),
                "entropy_bits": result.get("entropy_bits"),
                "tokens": result.get("tokens"),
                "num_samples": result.get("num_samples"),
                "params_total": params.get("total"),
                "params_quantizer": params.get("quantizer"),
                "params_encoder": params.get("encoder"),
                "params_decoder": params.get("decoder"),
                "step": result.get("step"),
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| quantizer | K | levels | PSNR dB | SSIM | rFID | codes used | usage | perplexity | code entropy (bits) "
        "| params |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['quantizer']} | {r['codebook_size']} | {r['levels'] or '-'} | {fmt(r['psnr'])} | "
            f"{fmt(r['ssim'], 3)} | {fmt(r['rfid'], 1)} | {r['codes_used']} | {fmt(100 * r['usage'], 1)}% | "
            f"{fmt(r['perplexity'], 1)} | {fmt(r['entropy_bits'], 2)} | {r['params_total']:,} |"
        )
    return "\n".join(lines)


def _series(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["quantizer"], []).append(r)
    for values in out.values():
        values.sort(key=lambda r: r["codebook_size"])
    return out


def claims(rows: list[dict[str, Any]], x_key: str = "codebook_size") -> list[str]:
    """The paper's claims for a codebook-size study, each checked against the measured rows."""
    series = _series(rows)
    lines = []
    fsq = series.get("FSQ", [])
    if len(fsq) >= 2:
        used = [r["codes_used"] for r in fsq]
        grows = all(b > a for a, b in zip(used, used[1:]))
        lines.append(
            f"FSQ codes used grow with codebook size: **{'yes' if grows else 'no'}** "
            f"({' -> '.join(map(str, used))} over K = {', '.join(str(r[x_key]) for r in fsq)})."
        )
        psnr = [r["psnr"] for r in fsq]
        mono = all(b >= a - 0.05 for a, b in zip(psnr, psnr[1:]))
        lines.append(
            f"FSQ reconstruction improves monotonically with codebook size (within 0.05 dB): "
            f"**{'yes' if mono else 'no'}** (PSNR {' -> '.join(f'{p:.2f}' for p in psnr)} dB)."
        )
    for label in ("VQ (no entropy)", "VQ"):
        vq = series.get(label, [])
        if len(vq) >= 2:
            used = [r["codes_used"] for r in vq]
            usage = [r["usage"] for r in vq]
            lines.append(
                f"{label}: codes used {' -> '.join(map(str, used))}; usage fraction "
                f"{' -> '.join(f'{100 * u:.1f}%' for u in usage)} "
                f"({'falls' if usage[-1] < usage[0] else 'does not fall'} from the smallest to the largest codebook)."
            )
            psnr = [r["psnr"] for r in vq]
            lines.append(f"{label}: PSNR {' -> '.join(f'{p:.2f}' for p in psnr)} dB.")
    if fsq:
        for label in ("VQ", "VQ (no entropy)"):
            vq_by_size = {r["codebook_size"]: r for r in series.get(label, [])}
            pairs = [(f, vq_by_size[k]) for f in fsq for k in vq_by_size if 0.5 <= f["codebook_size"] / k <= 2]
            if pairs:
                fewer = all(f["params_total"] < v["params_total"] for f, v in pairs)
                lines.append(
                    f"FSQ has fewer parameters than {label} at matching codebook sizes: **{'yes' if fewer else 'no'}** "
                    f"(e.g. {pairs[-1][0]['params_total']:,} vs {pairs[-1][1]['params_total']:,} at K ~ "
                    f"{pairs[-1][1]['codebook_size']})."
                )
                break
    if rows:
        tokens = rows[0].get("tokens")
        lines.append(
            f"Usage, perplexity and code entropy are measured over {tokens:,} held-out tokens per run. The code "
            "entropy is that of the tokens' histogram (log2 of the perplexity): how evenly the codes are used, not "
            "how hard they are to model (the paper's compression cost is a Stage II transformer's cross-entropy, "
            "measured by `fsq study maskgit`)."
        )
        if all(r.get("rfid") is None for r in rows):
            lines.append(
                "Reconstruction FID was not computed (`eval.fid_samples=0`, as in the CPU preset: the Inception "
                "network runs a few images per second on a CPU); rerun with `eval.fid_samples=N` or `--preset gpu`."
            )
    return lines


def plot(rows: list[dict[str, Any]], runs_metrics: dict[str, list[dict[str, Any]]], out_dir: Path) -> list[Path]:
    """PNG plots of the study; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    series = _series(rows)
    paths = []

    def save(fig, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sizes = sorted({r["codebook_size"] for r in rows})
    for label, values in series.items():
        ks = [r["codebook_size"] for r in values]
        axes[0].plot(ks, [r["codes_used"] for r in values], "o-", label=label)
        axes[1].plot(ks, [100 * r["usage"] for r in values], "o-", label=label)
    axes[0].plot(sizes, sizes, "k--", linewidth=1, label="maximum")
    for ax, title in zip(axes, ("codes used", "codebook usage (%)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("codebook size")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log", base=2)
    save(fig, "usage.png")

    metrics = [
        ("psnr", "PSNR (dB)"),
        ("ssim", "SSIM"),
        ("rfid", "reconstruction FID"),
        ("perplexity", "perplexity"),
        ("entropy_bits", "code-histogram entropy (bits)"),
        ("params_total", "parameters"),
    ]
    metrics = [(k, t) for k, t in metrics if any(r.get(k) is not None for r in rows)]
    fig, axes = plt.subplots(2, math.ceil(len(metrics) / 2), figsize=(4.2 * math.ceil(len(metrics) / 2), 7))
    for ax, (key, title) in zip(axes.flat, metrics):
        for label, values in series.items():
            points = [(r["codebook_size"], r[key]) for r in values if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), "o-", label=label)
        if key == "entropy_bits":
            ax.plot(sizes, [math.log2(k) for k in sizes], "k--", linewidth=1, label="uniform (log2 K)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("codebook size")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    save(fig, "metrics.png")

    labels = list(series)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.6), squeeze=False)
    for ax, label in zip(axes[0], labels):
        for r in series[label]:
            records = [m for m in runs_metrics.get(r["name"], []) if m.get("rec_loss") is not None]
            if records:
                ax.plot([m["step"] for m in records], [m["rec_loss"] for m in records], label=f"K={r['codebook_size']}")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{label}: training reconstruction loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, "training_curves.png")
    return paths


def level_claims(rows: list[dict[str, Any]]) -> list[str]:
    """Fig. 10's claim (L_i >= 5 is best at a fixed codebook size), checked against the measured rows."""
    high = [r for r in rows if r["quantizer"].endswith("all L >= 5")]
    low = [r for r in rows if not r["quantizer"].endswith("all L >= 5")]
    if not high or not low:
        return []
    best_high, best_low = max(high, key=lambda r: r["psnr"]), max(low, key=lambda r: r["psnr"])
    holds = best_high["psnr"] > best_low["psnr"]
    return [
        f"Best level set with every L >= 5 ({best_high['levels']}): PSNR {best_high['psnr']:.2f} dB; best with some "
        f"L < 5 ({best_low['levels']}): {best_low['psnr']:.2f} dB. L >= 5 better: **{'yes' if holds else 'no'}**.",
        f"Usage, perplexity and entropy are measured over {rows[0].get('tokens'):,} held-out tokens per run.",
    ]


def plot_levels(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Bar charts per level set (PSNR, usage, perplexity), coloured by whether every L >= 5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    names = [r["levels"] for r in rows]
    colors = ["tab:blue" if r["quantizer"].endswith("all L >= 5") else "tab:orange" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (key, title) in zip(axes, [("psnr", "PSNR (dB)"), ("usage", "usage"), ("perplexity", "perplexity")]):
        ax.bar(range(len(rows)), [r[key] for r in rows], color=colors)
        ax.set_xticks(range(len(rows)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{title} (blue: all L >= 5)")
        ax.grid(alpha=0.3, axis="y")
    path = out_dir / "levels.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_report(study_dir: str | Path) -> Path:
    """Write results.json, results.csv, plots/ and report.md for a study folder; returns the report's path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = collect(study_dir)
    if not rows:
        raise ValueError(f"{study_dir}: no run has been evaluated yet")
    write_results(study_dir, study, rows)
    runs = {run["name"]: run for run in study["runs"]}
    runs_metrics = {r["name"]: rundir.read_metrics(run_path(study_dir, runs[r["name"]])) for r in rows}
    if study["kind"] == "levels":
        plots = plot_levels(rows, study_dir / "plots")
    else:
        plots = plot(rows, runs_metrics, study_dir / "plots")
    missing = [run["name"] for run in study["runs"] if run["name"] not in {r["name"] for r in rows}]
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        f"Data: `{study['data']}`; preset `{study['preset']}`; {study.get('budget', '')}",
        "",
        markdown_table(rows),
        "",
        "## What the paper claims, measured here",
        "",
        *[f"- {line}" for line in (claims(rows) if study["kind"] != "levels" else level_claims(rows))],
        "",
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    if missing:
        lines += [f"Runs not finished yet (rerun the study to resume them): {', '.join(missing)}", ""]
    lines += ["Every number is also in `results.json` and `results.csv`; each run dir is under `runs/`.", ""]
    path = study_dir / "report.md"
    write_text_atomic("\n".join(lines), path)
    return path


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study codebook-size|levels``: sizes and level sets as the command line gives them (``8,5,5,5``)."""
    sizes = [int(s) for s in options["sizes"]] if options.get("sizes") else None
    level_sets = [[int(v) for v in item.split(",")] for item in options["levels"]] if options.get("levels") else None
    return run_study(
        kind,
        out_dir,
        data=options.get("data") or "mnist",
        preset=options.get("preset") or "cpu",
        sizes=sizes,
        level_sets=level_sets,
        overrides=overrides,
    )
