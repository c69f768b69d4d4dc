"""The video study's rows, table, claims and per-frame curves (torch-free): a pure function of the study folder.

Rows: one per (method, seed): the video tokenizers (FSQ, VQ, LFQ at equal bits per token), the per-frame image
tokenizer, and the naive codec (from each FSQ run's evaluation: the same held-out clips at the FSQ tokenizer's
bits per clip). Every number is measured on the video tokenizers' held-out clips.

Each claim names its test and its verdict follows from the numbers printed beside it: the gap of the seed means,
against the seed spread (the sum of the two sample standard deviations over seeds). One-sided "A better than B by
more than m": **holds** when gap - m exceeds the spread, **fails** when it is below minus the spread, else **not
resolved**. Two-sided "A and B differ": **A better** / **B better** when |gap| exceeds m plus the spread, else
**not resolved**. With one seed there is no spread: the verdict is the sign of the gap, marked "single seed".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.io import read_json
from fsq.studies.common import latest_eval, mean_std, over_seeds, pm, run_path

CLIPS_SUFFIX = "_clips"  # the per-frame image tokenizer's evaluation on the video clips: eval/step_N_clips.json
JUDGED_SUFFIX = "_judged"  # a video MaskGIT's samples judged frame by frame: eval/step_N_judged.json
NUMERIC = (
    "bits_per_clip",
    "psnr",
    "ssim",
    "temporal_l1",
    "temporal_psnr",
    "first_frame_psnr",
    "later_frames_psnr",
    "codes_used",
    "code_cap",
    "usage_of_cap",
    "sample_agreement",
    "real_agreement",
    "judge_fd",
)
STAGE2_KEYS = {"agreement": "sample_agreement", "real_agreement": "real_agreement", "judge_fd": "judge_fd"}
VIDEO_METHODS = ("FSQ", "VQ", "LFQ", "BSQ")


def _row(run: dict[str, Any], method: str, e: dict[str, Any], scores: dict[str, Any]) -> dict[str, Any]:
    curve = scores.get("psnr_per_frame") or []
    cap = min(e["codebook_size"], e["tokens"]) if e.get("tokens") else None
    row = {
        "name": run["name"],
        "method": method,
        "seed": run.get("seed", 0),
        "step": e.get("step"),
        "bits_per_clip": scores.get("bits_per_clip", e.get("bits_per_clip")),
        "psnr": scores.get("psnr"),
        "ssim": scores.get("ssim"),
        "temporal_l1": scores.get("temporal_l1"),
        "temporal_psnr": scores.get("temporal_psnr"),
        "first_frame_psnr": curve[0] if curve else None,
        "later_frames_psnr": sum(curve[1:]) / (len(curve) - 1) if len(curve) > 1 else None,
        "psnr_per_frame": curve,
        "ssim_per_frame": scores.get("ssim_per_frame") or [],
        "codebook_size": e.get("codebook_size") if method != "naive" else None,
        "codes_used": e.get("codes_used") if method != "naive" else None,
        "code_cap": cap if method != "naive" else None,
        "usage_of_cap": e["codes_used"] / cap if cap and method != "naive" else None,
        "levels": scores.get("levels", e.get("levels")),
        "num_clips": e.get("num_samples"),
    }
    return row


def collect(study_dir: str | Path, study: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluated run (and per FSQ run one for the naive codec), in the plan's order."""
    rows: list[dict[str, Any]] = []
    judged: dict[tuple[str, int], dict[str, Any]] = {}
    for run in study["runs"]:
        run_dir = run_path(study_dir, run)
        if run["role"] == "stage2":
            found = sorted((run_dir / rundir.EVAL).glob(f"{rundir.STEP_PREFIX}*{JUDGED_SUFFIX}.json"))
            if found:
                judged[(run["label"], run.get("seed", 0))] = read_json(found[-1], "judged video samples")
            continue
        if run["role"] == "frames":
            found = sorted((run_dir / rundir.EVAL).glob(f"{rundir.STEP_PREFIX}*{CLIPS_SUFFIX}.json"))
            if found:
                e = read_json(found[-1], "a per-frame evaluation on clips")
                rows.append(_row(run, run["label"], e, e))
            continue
        e = latest_eval(run_dir)
        if e is None:
            continue
        rows.append(_row(run, run["label"], e, e))
        if run["label"] == "FSQ" and e.get("naive", {}).get("psnr") is not None:
            naive = dict(e["naive"])
            rows.append(_row({**run, "name": f"naive_s{run.get('seed', 0)}"}, "naive", e, naive))
    for row in rows:  # Stage II: the judged samples of the MaskGIT on each video tokenizer, beside its row
        j = judged.get((row["method"], row["seed"]))
        for source, key in STAGE2_KEYS.items():
            row[key] = j.get(source) if j else None
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seeds of each method together: mean and sample std of every number, the curves averaged."""
    groups = over_seeds(rows, ("method",), NUMERIC)
    for g in groups:
        members = [r for r in rows if r["method"] == g["method"]]
        for key in ("psnr_per_frame", "ssim_per_frame"):
            curves = [r[key] for r in members if r[key]]
            g[key] = [mean_std(list(v))[0] for v in zip(*curves)] if curves else []
    return groups


def _find(groups: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    return next((g for g in groups if g["method"] == method), None)


def _values(rows: list[dict[str, Any]], method: str, key: str) -> list[float]:
    return [r[key] for r in rows if r["method"] == method and r.get(key) is not None]


def verdict(a: list[float], b: list[float], *, higher: bool, margin: float, two_sided: bool) -> tuple[str, str]:
    """(verdict, evidence) of "A better than B" (one-sided, by more than ``margin``) or "A and B differ" (two-sided)
    from the per-seed values of each; ``higher``: larger is better. See the module docstring."""
    ma, sa = mean_std(a)
    mb, sb = mean_std(b)
    if ma is None or mb is None:
        return "not measured", "no runs"
    gap = (ma - mb) if higher else (mb - ma)  # positive: A better
    seeds = f"{len(a)} vs {len(b)} seed(s)"
    if sa is None or sb is None:  # one seed on a side: no spread, the sign of the gap only
        evidence = f"gap {gap:+.4g} in A's favour, seed spread not measured, {seeds}"
        if two_sided:
            word = "A better" if gap > margin else ("B better" if gap < -margin else "no difference")
        else:
            word = "holds" if gap > margin else "fails"
        return f"{word} (single seed: not a test)", evidence
    spread = sa + sb
    evidence = f"gap {gap:+.4g} in A's favour, seed spread {spread:.4g}, {seeds}"
    if two_sided:
        if abs(gap) > margin + spread:
            return ("A better" if gap > 0 else "B better"), evidence
        return "not resolved", evidence
    if gap - margin > spread:
        return "holds", evidence
    if gap - margin < -spread:
        return "fails", evidence
    return "not resolved", evidence


# (A, B, metric key, metric words, larger is better, margin, two-sided, unit)
CLAIMS = [
    ("FSQ", "VQ", "psnr", "PSNR", True, 0.0, True, " dB"),
    ("FSQ", "LFQ", "psnr", "PSNR", True, 0.0, True, " dB"),
    ("FSQ", "VQ", "ssim", "SSIM", True, 0.0, True, ""),
    ("FSQ", "LFQ", "ssim", "SSIM", True, 0.0, True, ""),
    ("FSQ", "VQ", "temporal_l1", "temporal error (L1 of frame differences)", False, 0.0, True, ""),
    ("FSQ", "naive", "psnr", "PSNR", True, 0.0, False, " dB"),
    ("VQ", "naive", "psnr", "PSNR", True, 0.0, False, " dB"),
    ("LFQ", "naive", "psnr", "PSNR", True, 0.0, False, " dB"),
    ("FSQ", "per-frame FSQ", "psnr", "PSNR", True, 0.0, False, " dB"),
    ("FSQ", "per-frame FSQ", "temporal_l1", "temporal error (L1 of frame differences)", False, 0.0, False, ""),
    ("FSQ", "VQ", "usage_of_cap", "share of countable codes used", True, 0.0, False, ""),
    ("FSQ", "LFQ", "usage_of_cap", "share of countable codes used", True, 0.0, True, ""),
    ("FSQ", "VQ", "judge_fd", "Stage II judge Frechet distance of sampled frames", False, 0.0, True, ""),
    ("FSQ", "LFQ", "judge_fd", "Stage II judge Frechet distance of sampled frames", False, 0.0, True, ""),
    ("FSQ", "VQ", "sample_agreement", "Stage II judge agreement with the conditioning class", True, 0.0, True, ""),
    ("FSQ", "LFQ", "sample_agreement", "Stage II judge agreement with the conditioning class", True, 0.0, True, ""),
]


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """Each claim with its test, the numbers and the verdict that follows from them."""
    groups = summarize(rows)
    out = []
    for a, b, key, words, higher, margin, two_sided, unit in CLAIMS:
        ga, gb = _find(groups, a), _find(groups, b)
        if ga is None or gb is None or ga.get(key) is None or gb.get(key) is None:
            continue
        word, evidence = verdict(
            _values(rows, a, key), _values(rows, b, key), higher=higher, margin=margin, two_sided=two_sided
        )
        test = (
            f"two-sided, margin {margin:g}"
            if two_sided
            else f"one-sided (A {'>' if higher else '<'} B), margin {margin:g}"
        )
        word = word.replace("A better", f"{a} better").replace("B better", f"{b} better")
        digits = {"ssim": 3, "temporal_l1": 4, "usage_of_cap": 3, "sample_agreement": 3}.get(key, 2)
        out.append(
            f"{words}, {a} (A) vs {b} (B) [{test}; {'higher' if higher else 'lower'} is better]: "
            f"{pm(ga[key], ga.get(f'{key}_std'), digits, unit=unit)} vs "
            f"{pm(gb[key], gb.get(f'{key}_std'), digits, unit=unit)}"
            f" ({evidence}) -> **{word}**."
        )
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Mean ± sample std over seeds per method (a single seed shows no ±)."""
    stage2 = any(r.get("judge_fd") is not None for r in rows)
    header = (
        "| method | bits/clip | seeds | PSNR dB | SSIM | temporal L1 | temporal PSNR dB | first frame PSNR | "
        "later frames PSNR | codes used (of countable) |"
        + (" Stage II agreement (real clips) | Stage II judge FD |" if stage2 else "")
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for g in summarize(rows):
        codes = "-"
        if g.get("codes_used") is not None:
            share = pm(g["usage_of_cap"], g["usage_of_cap_std"], 1, 100, "%")
            codes = f"{g['codes_used']:.0f} / {g['code_cap']:.0f} ({share})"
        cells = [
            g["method"],
            pm(g["bits_per_clip"], None, 1),
            str(len(g["seeds"])),
            pm(g["psnr"], g["psnr_std"], 2),
            pm(g["ssim"], g["ssim_std"], 3),
            pm(g["temporal_l1"], g["temporal_l1_std"], 4),
            pm(g["temporal_psnr"], g["temporal_psnr_std"], 2),
            pm(g["first_frame_psnr"], None, 2),
            pm(g["later_frames_psnr"], None, 2),
            codes,
        ]
        if stage2:
            agreement = pm(g["sample_agreement"], g["sample_agreement_std"], 1, 100, "%")
            real = pm(g["real_agreement"], None, 1, 100, "%")
            cells += [f"{agreement} ({real})" if g["sample_agreement"] is not None else "-"]
            cells += [pm(g["judge_fd"], g["judge_fd_std"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """``frames.png``: PSNR and SSIM against frame position, one line per method (seed means)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in summarize(rows) if g["psnr_per_frame"]]
    if not groups:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for g in groups:
        frames = range(len(g["psnr_per_frame"]))
        axes[0].plot(frames, g["psnr_per_frame"], "o-", label=g["method"])
        axes[1].plot(frames, g["ssim_per_frame"], "o-", label=g["method"])
    axes[0].set(xlabel="frame", ylabel="PSNR (dB)", title="PSNR per frame position")
    axes[1].set(xlabel="frame", ylabel="SSIM", title="SSIM per frame position")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "frames.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
