"""Plots of the codebook-size study (paper Fig. 3) and the level-set study (Fig. 10); torch-free (matplotlib).

``fig3`` draws the paper's four panels against the codebook size: (a) reconstruction, (b) sampling quality, (c)
codebook usage (the tokenizer's on held-out data, solid; the Stage II samples', dashed) and (d) the compression
cost (bits/token of held-out grids under the trained transformer, with the uniform cost log2 K).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fsq.studies import codebook_claims


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _size_axis(ax, title: str, legend_size: int | None) -> None:
    """A panel against the codebook size: log2 x axis, title, light grid, legend (matplotlib's size if None)."""
    ax.set_xscale("log", base=2)
    ax.set_xlabel("codebook size")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(**({} if legend_size is None else {"fontsize": legend_size}))


def fig3(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    """``fig3.png``: the four panels of the paper's Fig. 3 from the study's rows."""
    plt = _pyplot()
    series = codebook_claims.series(rows)
    sizes = sorted({r["codebook_size"] for r in rows})
    rec_key, rec_name = (
        ("rfid", "reconstruction FID") if all(r.get("rfid") is not None for r in rows) else ("psnr", "PSNR (dB)")
    )
    key, name = codebook_claims.sampling_key(rows)
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    panels = [(0, rec_key, "o-", ""), (1, key, "o-", ""), (2, "codes_used", "o-", " (tokenizer)")]
    panels += [(2, "sampled_codes_used", "x--", " (sampled)"), (3, "bits_per_token", "o-", "")]
    for index, (label, values) in enumerate(series.items()):
        for panel, k, style, suffix in panels:
            points = [(r["codebook_size"], r[k]) for r in values if r.get(k) is not None]
            if points:
                axes[panel].plot(*zip(*points), style, color=f"C{index}", label=label + suffix)
    axes[2].plot(sizes, sizes, "k--", linewidth=1, label="maximum")
    axes[2].plot(sizes, [k / 2 for k in sizes], "k:", linewidth=1, label="50%")
    axes[2].set_yscale("log", base=2)
    axes[3].plot(sizes, [math.log2(k) for k in sizes], "k--", linewidth=1, label="uniform (log2 K)")
    titles = [f"(a) {rec_name}", f"(b) {name}", "(c) codes used", "(d) compression cost (bits/token)"]
    for ax, title in zip(axes, titles):
        _size_axis(ax, title, 7)
    path = out_dir / "fig3.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot(rows: list[dict[str, Any]], runs_metrics: dict[str, list[dict[str, Any]]], out_dir: Path) -> list[Path]:
    """PNG plots of the study; returns their paths."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    series = codebook_claims.series(rows)
    paths = [fig3(rows, out_dir)]

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
        _size_axis(ax, title, None)
    axes[0].set_yscale("log", base=2)
    save(fig, "usage.png")

    metrics = [
        ("psnr", "PSNR (dB)"),
        ("ssim", "SSIM"),
        ("rfid", "reconstruction FID"),
        ("class_accuracy", "class accuracy of samples (judge)"),
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
        _size_axis(ax, title, 8)
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


def plot_levels(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """``fig10.png``: sampling quality, class accuracy, PSNR and usage against the codebook size, one line per family
    (every L >= 5, smallest L = 4, smallest L = 3), as the paper's Fig. 10 colours its points by the smallest L;
    means over seeds with their std as error bars."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    series = codebook_claims.series(rows)
    key, name = codebook_claims.sampling_key(rows)
    panels = [(key, name), ("class_accuracy", "class accuracy of samples (judge)"), ("psnr", "PSNR (dB)")]
    panels += [("usage", "tokenizer usage")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4))
    for ax, (k, title) in zip(axes, panels):
        for index, (label, values) in enumerate(sorted(series.items())):
            known = [r for r in values if r.get(k) is not None]
            if known:
                errors = [r.get(f"{k}_std") or 0.0 for r in known]  # error bars: std over seeds
                xs, ys = [r["codebook_size"] for r in known], [r[k] for r in known]
                ax.errorbar(xs, ys, yerr=errors, fmt="o-", capsize=3, color=f"C{index}", label=label)
                for x, y, r in zip(xs, ys, known):
                    ax.annotate(r["levels"], (x, y), fontsize=6, alpha=0.7)
        _size_axis(ax, title, 7)
    path = out_dir / "fig10.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
