"""Plots of the MaskGIT study (torch-free, matplotlib): the guidance sweep (paper Fig. 4) and FSQ vs VQ against
Stage II compute.

``guidance.png``: against the guidance weight (symlog axis), (a) judge Frechet distance, (b) class accuracy,
(c) precision and (d) recall in the judge's feature space, one line per quantizer and budget (means over seeds,
report split). ``budget.png``: judge Frechet distance and class accuracy against training images seen (log axis),
at no guidance and at the weight chosen on the tuning split, error bars one std over seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq.studies.maskgit_rows import chosen_guidance, summarize

COLORS = {"FSQ": "C0", "VQ": "C1"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(quantizer: str) -> str:
    return COLORS.get(quantizer, "C2")


def guidance_plot(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    """``guidance.png``: sampling quality and precision / recall against the guidance weight."""
    plt = _pyplot()
    summary = summarize(rows)
    budgets = sorted({s["budget"] for s in summary})
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    panels = [
        ("judge_fd", "(a) judge Frechet distance (lower is better)", 1.0),
        ("class_accuracy", "(b) class accuracy (%)", 100.0),
        ("judge_precision", "(c) precision (judge features)", 1.0),
        ("judge_recall", "(d) recall (judge features)", 1.0),
    ]
    for quantizer in sorted({s["quantizer"] for s in summary}):
        for b_index, budget in enumerate(budgets):
            line = sorted(
                (s for s in summary if s["quantizer"] == quantizer and s["budget"] == budget),
                key=lambda s: s["guidance"],
            )
            width = 0.8 + 0.7 * b_index
            alpha = 0.45 + 0.55 * (b_index + 1) / len(budgets)
            for ax, (key, _, scale) in zip(axes, panels):
                points = [(s["guidance"], scale * s[key]) for s in line if s[key] is not None]
                if points:
                    ax.plot(
                        *zip(*points),
                        "o-",
                        color=_color(quantizer),
                        linewidth=width,
                        alpha=alpha,
                        markersize=3,
                        label=f"{quantizer} {budget}x",
                    )
    weights = sorted({s["guidance"] for s in summary})
    for ax, (_, title, _) in zip(axes, panels):
        ax.set_xscale("symlog", linthresh=0.05)
        ax.set_xticks(weights, [f"{w:g}" for w in weights], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("guidance weight")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(plt, fig, out_dir / "guidance.png")


def budget_plot(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    """``budget.png``: FSQ and VQ against Stage II training images seen."""
    plt = _pyplot()
    summary = summarize(rows)
    chosen = chosen_guidance(summary)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    panels = [
        ("judge_fd", "judge Frechet distance (lower is better)", 1.0),
        ("class_accuracy", "class accuracy (%)", 100),
    ]
    for quantizer in sorted({s["quantizer"] for s in summary}):
        for label, pick, style in (("CFG 0", lambda s: s["guidance"] == 0, "o--"), ("CFG chosen on val", None, "o-")):
            line = sorted(
                (
                    s
                    for s in summary
                    if s["quantizer"] == quantizer
                    and (pick(s) if pick else s["guidance"] == chosen.get((quantizer, s["budget"])))
                ),
                key=lambda s: s["images_seen"],
            )
            for ax, (key, _, scale) in zip(axes, panels):
                points = [s for s in line if s[key] is not None]
                if points:
                    ax.errorbar(
                        [s["images_seen"] for s in points],
                        [scale * s[key] for s in points],
                        yerr=[scale * (s[f"{key}_std"] or 0.0) for s in points],
                        fmt=style,
                        color=_color(quantizer),
                        capsize=3,
                        markersize=4,
                        label=f"{quantizer}, {label}",
                    )
    for ax, (_, title, _) in zip(axes, panels):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("Stage II training images seen (steps x batch)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(plt, fig, out_dir / "budget.png")


def _save(plt, fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Both plots; returns their paths."""
    return [guidance_plot(rows, out_dir), budget_plot(rows, out_dir)]
