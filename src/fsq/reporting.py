"""Study reports as pure functions of run directories (no torch import: ``fsq report`` runs anywhere).

A study folder holds ``study.json`` (what was run: one entry per run, with its quantizer, target codebook size
and levels) and ``runs/<name>/`` (ordinary run dirs). ``collect(study_dir)`` reads each run's newest
``eval/step_N.json``, its ``config.yaml`` and ``metrics.jsonl``; ``write_report`` writes ``results.json``,
``results.csv``, PNG plots under ``plots/`` and ``report.md`` with the tables, the plots and the paper's claims
checked against the measurements.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

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


def read_study(study_dir: str | Path) -> dict[str, Any]:
    path = Path(study_dir) / "study.json"
    if not path.is_file():
        raise FileNotFoundError(f"{study_dir} is not a study folder (no study.json); run `fsq study ...` first")
    return json.loads(path.read_text())


def _latest_eval(run_dir: Path) -> dict[str, Any] | None:
    files = sorted((run_dir / "eval").glob("step_*.json")) if (run_dir / "eval").is_dir() else []
    files = [f for f in files if not f.name.endswith("_grid.json")]
    return json.loads(files[-1].read_text()) if files else None


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def collect(study_dir: str | Path) -> list[dict[str, Any]]:
    """One row per finished run of the study (runs without an evaluation yet are skipped)."""
    study_dir = Path(study_dir)
    rows = []
    for run in read_study(study_dir)["runs"]:
        result = _latest_eval(study_dir / "runs" / run["name"])
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


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| quantizer | K | levels | PSNR dB | SSIM | rFID | codes used | usage | perplexity | bits/token | params |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['quantizer']} | {r['codebook_size']} | {r['levels'] or '-'} | {_fmt(r['psnr'])} | "
            f"{_fmt(r['ssim'], 3)} | {_fmt(r['rfid'], 1)} | {r['codes_used']} | {_fmt(100 * r['usage'], 1)}% | "
            f"{_fmt(r['perplexity'], 1)} | {_fmt(r['entropy_bits'], 2)} | {r['params_total']:,} |"
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
            vq = {r["codebook_size"]: r for r in series.get(label, [])}
            pairs = [(f, vq[k]) for f in fsq for k in vq if 0.5 <= f["codebook_size"] / k <= 2]
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
        lines.append(f"Usage, perplexity and entropy are measured over {tokens:,} held-out tokens per run.")
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
        ("entropy_bits", "entropy (bits/token)"),
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


def write_results(study_dir: Path, study: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``results.json`` (the study's plan and its rows) and ``results.csv`` (the rows) of a study folder."""
    (study_dir / "results.json").write_text(json.dumps({"study": study, "results": rows}, indent=2) + "\n")
    with (study_dir / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_report(study_dir: str | Path) -> Path:
    """Write results.json, results.csv, plots/ and report.md for a study folder; returns the report's path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = collect(study_dir)
    if not rows:
        raise ValueError(f"{study_dir}: no run has been evaluated yet")
    write_results(study_dir, study, rows)
    runs_metrics = {r["name"]: _metrics(study_dir / "runs" / r["name"]) for r in rows}
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
    path.write_text("\n".join(lines))
    return path
