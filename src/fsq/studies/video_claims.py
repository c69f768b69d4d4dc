"""The video study's rows, table, claims and per-frame curves (torch-free): a pure function of the study folder.

Rows: one per (method, seed): the video tokenizers (FSQ, VQ, LFQ at equal bits per token), the per-frame image
tokenizer, and the naive codec (from each FSQ run's evaluation: the same held-out clips at the FSQ tokenizer's
bits per clip). Every number is measured on the video tokenizers' held-out clips. A method trained at several
learning rates (the study's trials) gives rows at the rate chosen on the tuning split (:func:`choose_rates`) only;
:func:`trials` lists every trial with its val and held-out PSNR.

Each claim names its test and its verdict follows from the numbers printed beside it (the project's shared tests,
:mod:`fsq.studies.verdicts`: the difference of the seed means against twice its standard error over seeds).
One-sided "A better than B": **yes** / **no** / **not resolved** when the difference lies inside the band;
two-sided parity "A matches B within ±m": **yes** when the whole band lies inside ``[-m, m]``, **no** when wholly
outside, else **not resolved**. With one seed the spread is unknown: the verdict is the point comparison,
marked "single seed".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq import markdown
from fsq.studies import verdicts
from fsq.studies.common import latest_eval, mean_std, over_seeds, pm, run_path
from fsq.studies.tuning import VAL_SUFFIX, choose_rates, trial_of
from fsq.studies.tuning import found_eval as _found
from fsq.studies.verdicts import Side

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
    cap = round(verdicts.usage_cap(e["codebook_size"], e["tokens"]) * e["codebook_size"]) if e.get("tokens") else None
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


def trials(study_dir: str | Path, study: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tokenizer run trained at a trial learning rate (entries with ``lr``): its method, seed, rate and PSNR on
    the tuning split (``val_psnr``, None until evaluated) and on the held-out split (``psnr``)."""
    out = []
    for run in study["runs"]:
        if run["role"] not in ("video", "frames") or run.get("lr") is None:
            continue
        run_dir = run_path(study_dir, run)
        clips = CLIPS_SUFFIX if run["role"] == "frames" else ""
        val = _found(run_dir, f"{clips}{VAL_SUFFIX}")
        held_out = _found(run_dir, clips) if clips else latest_eval(run_dir)
        out.append(trial_of(run, val, held_out))
    return out


def collect(
    study_dir: str | Path, study: dict[str, Any], chosen: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """One row per evaluated run (and per FSQ run one for the naive codec), in the plan's order; of a method
    trained at trial rates, only the runs at its chosen rate (``chosen``, by default :func:`choose_rates` of the
    study's :func:`trials`; none while a method's trials are unfinished)."""
    rows: list[dict[str, Any]] = []
    judged: dict[tuple[str, int], dict[str, Any]] = {}
    if chosen is None:
        chosen = choose_rates(trials(study_dir, study))
    for run in study["runs"]:
        run_dir = run_path(study_dir, run)
        if run.get("lr") is not None and chosen.get(run["label"]) != run["lr"]:
            continue
        if run["role"] == "stage2":
            samples = _found(run_dir, JUDGED_SUFFIX)
            if samples:
                judged[(run["label"], run.get("seed", 0))] = samples
            continue
        if run["role"] == "frames":
            e = _found(run_dir, CLIPS_SUFFIX)
            if e:
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


def _values(rows: list[dict[str, Any]], method: str, key: str) -> list[float]:
    return [r[key] for r in rows if r["method"] == method and r.get(key) is not None]


def _side(rows: list[dict[str, Any]], method: str, key: str) -> Side | None:
    """The seed mean, sample std and seed count of ``key`` for ``method`` (None without values)."""
    values = _values(rows, method, key)
    mean, std = mean_std(values)
    return None if mean is None else Side(mean, std, len(values))


def decide(a: Side, b: Side, *, lower_is_better: bool, parity: float | None) -> verdicts.Verdict:
    """One-sided "A better than B" (``parity`` None) or two-sided "A matches B within ± parity"."""
    if parity is None:
        return verdicts.better(a, b, lower_is_better)
    return verdicts.matches(a, b, parity)


# (A, B, metric key, metric words, lower is better, parity margin (None: one-sided "A better"), relative margin,
# unit). Parity margins: 0.5 dB PSNR, 0.02 SSIM, 0.05 of the countable codes, 5 points of judge agreement, and 10% of
# B's judge Frechet distance (the MaskGIT study's parity).
CLAIMS: list[tuple[str, str, str, str, bool, float | None, bool, str]] = [
    ("FSQ", "VQ", "psnr", "PSNR", False, 0.5, False, " dB"),
    ("FSQ", "LFQ", "psnr", "PSNR", False, 0.5, False, " dB"),
    ("FSQ", "VQ", "ssim", "SSIM", False, 0.02, False, ""),
    ("FSQ", "LFQ", "ssim", "SSIM", False, 0.02, False, ""),
    ("FSQ", "naive", "psnr", "PSNR", False, None, False, " dB"),
    ("VQ", "naive", "psnr", "PSNR", False, None, False, " dB"),
    ("LFQ", "naive", "psnr", "PSNR", False, None, False, " dB"),
    ("FSQ", "per-frame FSQ", "psnr", "PSNR", False, None, False, " dB"),
    ("FSQ", "per-frame FSQ", "temporal_l1", "temporal error (L1 of frame differences)", True, None, False, ""),
    ("FSQ", "VQ", "usage_of_cap", "share of countable codes used", False, None, False, ""),
    ("FSQ", "LFQ", "usage_of_cap", "share of countable codes used", False, 0.05, False, ""),
    ("FSQ", "VQ", "judge_fd", "Stage II judge Frechet distance of sampled frames", True, 0.10, True, ""),
    ("FSQ", "LFQ", "judge_fd", "Stage II judge Frechet distance of sampled frames", True, 0.10, True, ""),
    ("FSQ", "VQ", "sample_agreement", "Stage II judge agreement with the conditioning class", False, 0.05, False, ""),
    ("FSQ", "LFQ", "sample_agreement", "Stage II judge agreement with the conditioning class", False, 0.05, False, ""),
]


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """Each claim with its test, the numbers and the verdict that follows from them."""
    out = []
    for a, b, key, words, lower_is_better, parity, relative, unit in CLAIMS:
        side_a, side_b = _side(rows, a, key), _side(rows, b, key)
        if side_a is None or side_b is None:
            continue
        margin = parity * abs(side_b.mean) if parity is not None and relative else parity
        v = decide(side_a, side_b, lower_is_better=lower_is_better, parity=margin)
        digits = {"ssim": 3, "temporal_l1": 4, "usage_of_cap": 3, "sample_agreement": 3}.get(key, 2)
        claim = f"{a} better than {b}" if parity is None else f"{a} matches {b} within ±{margin:.3g}{unit}"
        out.append(
            f"{words} ({'lower' if lower_is_better else 'higher'} is better), {claim}: "
            f"{pm(side_a.mean, side_a.std, digits, unit=unit)} vs {pm(side_b.mean, side_b.std, digits, unit=unit)} "
            f"({v.test()}) -> {v.bold()}."
        )
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Mean ± sample std over seeds per method (a single seed shows no ±)."""
    stage2 = any(r.get("judge_fd") is not None for r in rows)
    head = ["method", "bits/clip", "seeds", "PSNR dB", "SSIM", "temporal L1", "temporal PSNR dB", "first frame PSNR"]
    head += ["later frames PSNR", "codes used (of countable)"]
    head += ["Stage II agreement (real clips)", "Stage II judge FD"] if stage2 else []
    lines = markdown.table(head)
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
        lines.append(markdown.row(cells))
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
