"""The photos study: FSQ vs VQ vs LFQ vs BSQ photo tokenizers at equal bits per token, beside the naive codec,
JPEG and WebP at the same bits per image on the same held-out crops; plan, run and report.

``fsq study photos --out DIR [--preset cpu|quick] [--seeds 0 1 2] [key=value...]`` trains, per seed
(``train.seed``, which also draws the crops), tokenizers from ``configs/tokenizer/fsq_photos64.yaml`` with only the
quantizer replaced (FSQ [8, 5, 5, 5]: log2(1000) = 9.97 bits per token; VQ 1024 codes, LFQ and BSQ 2^10 codes: 10
bits). The FSQ runs' evaluations also run the image anchors (``eval.image_anchors``,
:mod:`fsq.evaluation.image_anchors`) on the same held-out crops at 10 bits per token; the other runs leave them
out (same crops, same bits: the same numbers). Finished runs are reused, interrupted ones resume.

Tuning, with the same number of trials for every quantizer (:data:`TRIALS`, :mod:`fsq.studies.tuning`): FSQ, LFQ
and BSQ try four learning rates (1/8 to 1x the config's); VQ, which has more to tune, tries two rates, a narrower
code (``dim=8``, against 32) and its recipe without the entropy term (``recipe=maskgit_noentropy``: the recipe
fixes the commitment weight at 0.25, which is not tried). Runs are ``photos_<q>_lr<rate>[_<setting>]_s<seed>``;
each is also evaluated on the ``val`` crops (new crops of the training photos: ``eval/step_N_val.json``), and the
report uses, per quantizer, the trial with the best mean val PSNR over seeds; every trial is listed. ``optim.lr``
overrides are refused.

The codebook-size sweep (Fig. 3a on real photos; ``--tasks codebook``, on by default): after the trials, FSQ at
the paper's levels for 2^8, 2^12, 2^14 and 2^16 codes (:data:`SWEEP_SIZES`; 2^10 is the trials' own [8, 5, 5, 5]),
each at the learning rate FSQ's trials chose on val (``photos_fsq_k<K>_s<seed>``), every run with the anchors at its
own bits; reported as PSNR, SSIM and rFID (with ``eval.fid_samples`` > 1) against K, beside the anchors.

Every run's evaluation also measures the EfficientNet-Lite0 perceptual distance of its reconstructions
(``eval.perceptual``; lower is closer; not LPIPS), reported beside PSNR and SSIM. The report is a
pure function of the study folder and imports no torch; every claim is decided by :mod:`fsq.studies.verdicts`
(one-sided, against the seed spread; single-seed verdicts marked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from fsq import markdown, rundir
from fsq.anchors.report import spent_bits
from fsq.config import QuantizerConfig, TokenizerExperiment, config_path, load_config
from fsq.io import write_text_atomic
from fsq.studies.common import (
    Stopwatch,
    latest_eval,
    over_seeds,
    pm,
    read_study,
    run_path,
    timing_line,
    train_phase,
    unless_busy,
    write_results,
    write_study,
)
from fsq.studies.tuning import (
    TUNING_SPLIT,
    VAL_SUFFIX,
    choose_trials,
    found_eval,
    refuse_lr_override,
    trial_key,
    trial_of,
    trials_markdown,
    tuning_table,
)
from fsq.studies.verdicts import Side, higher, lower, usage_cap

__all__ = ["claims", "collect", "plan", "run", "trials", "trials_markdown", "write_report"]

CONFIG = "configs/tokenizer/fsq_photos64.yaml"
QUANTIZERS: dict[str, dict[str, Any]] = {
    "FSQ": {"kind": "fsq", "levels": [8, 5, 5, 5]},
    "VQ": {"kind": "vq", "codebook_size": 1024, "dim": 32, "recipe": "maskgit"},
    "LFQ": {"kind": "lfq", "dim": 10},
    "BSQ": {"kind": "bsq", "dim": 10},
}
# per quantizer, the same number of trials: (factor of the config's optim.lr, settings replacing the quantizer's)
TRIALS: dict[str, list[tuple[float, dict[str, Any]]]] = {
    "FSQ": [(0.125, {}), (0.25, {}), (0.5, {}), (1.0, {})],
    "VQ": [(0.5, {}), (1.0, {}), (1.0, {"dim": 8}), (1.0, {"recipe": "maskgit_noentropy"})],
    "LFQ": [(0.125, {}), (0.25, {}), (0.5, {}), (1.0, {})],
    "BSQ": [(0.125, {}), (0.25, {}), (0.5, {}), (1.0, {})],
}
ANCHOR_METHODS = {"naive": "naive codec", "jpeg": "JPEG", "jpeg-payload": "JPEG (payload)", "webp": "WebP"}
MARGIN_DB = 1.0  # the target: a tokenizer beats the naive codec by at least 1 dB PSNR
PRESETS: dict[str, list[str]] = {
    "cpu": ["train.progress=false", "eval.perceptual=true"],  # the config as it is, with the perceptual distance
    "quick": [  # a smoke run in seconds (numbers meaningless), for tests
        "data.image_size=16",
        "data.train_limit=32",
        "data.num_crops=64",
        "data.eval_limit=8",
        "model.filters=8",
        "model.num_groups=4",
        "loss.perceptual_weight=0",
        "loss.adversarial_weight=0",
        "train.steps=2",
        "train.batch_size=8",
        "train.log_every=1",
        "train.checkpoint_every=2",
        "train.threads=1",
        "train.progress=false",
        "eval.batch_size=8",
        "eval.fid_samples=0",
        "eval.perceptual=true",
    ],
}
DEFAULT_SEEDS = {"cpu": [0, 1, 2], "quick": [0]}
SWEEP_SIZES = (2**8, 2**12, 2**14, 2**16)  # FSQ codebook sizes of the sweep, beside the trials' 2^10
TASKS = ("quantizers", "codebook")  # --tasks: the quantizer comparison (always), the FSQ codebook-size sweep
NUMERIC = ("bits_per_image", "psnr", "ssim", "perceptual", "codes_used", "code_cap")


def code_cap(e: dict[str, Any]) -> int | None:
    """The codes an evaluation could have seen: the codebook size, or the number of tokens it counted when fewer."""
    if not e.get("tokens") or not e.get("codebook_size"):
        return None
    return round(usage_cap(e["codebook_size"], e["tokens"]) * e["codebook_size"])


def used_of(g: dict[str, Any]) -> str:
    """``used / countable`` codes of a seed-mean row (``-`` without usage)."""
    if g.get("codes_used") is None:
        return "-"
    cap = f" / {g['code_cap']:.0f}" if g.get("code_cap") is not None else ""
    return pm(g["codes_used"], g["codes_used_std"], 0) + cap


def plan(
    preset: str, seeds: Sequence[int], overrides: Sequence[str], sweep: bool = False
) -> list[tuple[dict[str, Any], Any]]:
    """(study.json entry, config) of every run: per seed, per quantizer (FSQ first: its runs hold the anchors), one
    tokenizer per trial of :data:`TRIALS`; then, with ``sweep``, per seed FSQ at each of :data:`SWEEP_SIZES` (role
    ``sweep``; its learning rate, the entry's ``rate``, is None until the run sets it to FSQ's chosen one)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} for the photos study; choose from {sorted(PRESETS)}")
    if not seeds or len(set(seeds)) != len(seeds) or any(int(s) != s or s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {list(seeds)}")
    refuse_lr_override("photos", list(overrides))
    path = config_path(CONFIG, TokenizerExperiment.stage)
    base_lr = load_config(TokenizerExperiment, [path], [*PRESETS[preset], *overrides]).optim.lr
    out = []
    for seed in seeds:
        for label, quantizer in QUANTIZERS.items():
            anchors = f"eval.image_anchors=[{','.join(ANCHOR_METHODS)}]" if label == "FSQ" else "eval.image_anchors=[]"
            for factor, settings in TRIALS[label]:
                lr = factor * base_lr
                setting = ",".join(f"{k}={v}" for k, v in settings.items())
                slug = "".join(f"_{k}{v}" for k, v in settings.items())
                name = f"photos_{label.lower()}_lr{lr:g}{slug}_s{seed}"
                cfg = load_config(
                    TokenizerExperiment,
                    [path],
                    [*PRESETS[preset], anchors, *overrides, f"optim.lr={lr}", f"train.seed={seed}", f"name={name}"],
                )
                section = QuantizerConfig(**{**quantizer, **settings})  # the whole section: no other kind's keys
                cfg = replace(cfg, quantizer=section)
                entry = {"name": name, "label": label, "seed": seed, "lr": lr, "run_dir": f"runs/{name}"}
                out.append(({**entry, "setting": setting} if setting else entry, cfg))
    if sweep:
        from fsq.quantizers.levels import levels_for_codebook_size

        anchors = f"eval.image_anchors=[{','.join(ANCHOR_METHODS)}]"
        for seed in seeds:
            for size in SWEEP_SIZES:
                levels = levels_for_codebook_size(size)
                name = f"photos_fsq_k{math.prod(levels)}_s{seed}"
                cfg = load_config(
                    TokenizerExperiment,
                    [path],
                    [*PRESETS[preset], anchors, *overrides, f"train.seed={seed}", f"name={name}"],
                )
                fsq: dict[str, Any] = {"kind": "fsq", "levels": levels}
                cfg = replace(cfg, quantizer=QuantizerConfig(**fsq))
                entry = {"name": name, "label": "FSQ", "role": "sweep", "seed": seed, "levels": levels, "rate": None}
                out.append(({**entry, "run_dir": f"runs/{name}"}, cfg))
    return out


def _fsq_rate(out_dir: Path, study: dict[str, Any]) -> float:
    """The learning rate FSQ's trials chose on val (a RuntimeError while they are not all evaluated)."""
    chosen = choose_trials(trials(out_dir, study)).get("FSQ")
    if chosen is None:
        raise RuntimeError(f"{out_dir}: FSQ's trials are not all evaluated on {TUNING_SPLIT} yet")
    return chosen[0]


def evaluate_on_val(run_dir: Path, cfg: TokenizerExperiment) -> None:
    """Evaluate a run on the tuning split's crops, without the anchors: writes ``eval/step_N_val.json``."""
    from fsq.evaluation.tokenizer import evaluate_tokenizer

    cfg = replace(cfg, data=replace(cfg.data, eval_split=TUNING_SPLIT), eval=replace(cfg.eval, image_anchors=[]))
    with rundir.RunDirLock(run_dir, "evaluating it"):  # not while another process trains or evaluates it
        evaluate_tokenizer(run_dir, cfg=cfg, suffix=VAL_SUFFIX)


def run_photos_study(
    out_dir: str | Path,
    *,
    preset: str = "cpu",
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    sweep: bool = True,
    log=print,
    jobs: int = 1,
) -> Path:
    """Train (or reuse) every run, then write ``report.md``; ``sweep=False`` leaves out the codebook-size sweep.

    ``jobs`` > 1 trains that many runs at once, in worker processes that each go down the plan taking the runs no
    other is training (as separate calls into the same folder do): the trials first, then the sweep, which needs
    the rate FSQ's trials chose. The call's time is recorded when they are done."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    clock = Stopwatch()
    out_dir = Path(out_dir)
    seeds = list(DEFAULT_SEEDS[preset] if seeds is None and preset in DEFAULT_SEEDS else seeds or [0])
    runs = plan(preset, seeds, overrides, sweep)
    first = runs[0][1]
    previous = read_study(out_dir).get("timing") if (out_dir / "study.json").is_file() else None
    study: dict[str, Any] = {
        "kind": "photos",
        "title": "Photo tokenizers: FSQ vs VQ vs LFQ vs BSQ at equal bits, beside the naive codec, JPEG and WebP",
        "description": (
            "Tokenizers with the same encoder and decoder, only the quantizer changed (FSQ [8, 5, 5, 5], VQ 1024 "
            "codes, LFQ and BSQ 2^10 codes: 9.97 / 10 / 10 / 10 bits per token), on random crops of the `photos` "
            "source (train and test are different photos); the naive codec (area-downsampled to the token grid, "
            "4 + 3 + 3 bits of RGB per position, bicubic upsampling), JPEG and WebP (Pillow, at the quality whose "
            "size is nearest the same bits) on the same held-out crops. Each quantizer at the trial chosen on `val` "
            "crops (of the training photos), from the same number of trials."
        ),
        "preset": preset,
        "seeds": seeds,
        "overrides": list(overrides),
        "budget": (
            f"{first.data.image_size} px crops; {first.train.steps} steps x batch {first.train.batch_size} per run; "
            f"{first.data.eval_limit} held-out crops; seeds {', '.join(map(str, seeds))}."
        ),
        "runs": [entry for entry, _ in runs],
    }
    if previous:
        study["timing"] = previous
    write_study(out_dir, study)
    numbered = list(enumerate(runs, 1))
    phases = [
        [(i, entry, cfg) for i, (entry, cfg) in numbered if entry.get("role") != "sweep"],
        [(i, entry, cfg) for i, (entry, cfg) in numbered if entry.get("role") == "sweep"],
    ]
    trained = 0
    for phase in phases:
        if any(entry["rate"] is None for _, entry, _cfg in phase if entry.get("role") == "sweep"):
            try:  # the sweep: at the rate FSQ's trials chose, known once the trials are done
                rate = _fsq_rate(out_dir, study)
            except RuntimeError:  # a trial this call skipped: another call is still training it
                log("the codebook-size sweep waits for FSQ's trials (another call is training them): rerun when done")
                break
            for _, entry, _cfg in phase:
                entry["rate"] = rate
            write_study(out_dir, study)
        trained += train_phase(jobs, train_runs, out_dir, study, (phase, len(runs)), log, clock, trained)
    return write_report(out_dir)


def train_runs(
    out_dir: Path,
    study: dict[str, Any],
    phase: list[tuple[int, dict[str, Any], TokenizerExperiment]],
    total: int,
    log=print,
    clock: Stopwatch | None = None,
    trained_before: int = 0,
) -> int:
    """Train (and evaluate on the tuning split) the runs of ``phase`` (``(number, entry, config)``; a sweep entry
    with its rate set) not finished and not being worked on by another process; returns how many it trained.
    ``study.json`` is written after each run, with ``clock``'s record of this call (``trained_before`` runs
    earlier) when given. A module-level function, so that ``jobs`` > 1 can run it in worker processes."""
    from fsq import app  # training needs torch; the report does not

    trained = 0
    for index, entry, cfg in phase:
        run_dir = run_path(out_dir, entry)
        if entry.get("role") == "sweep":
            cfg = replace(cfg, optim=replace(cfg.optim, lr=entry["rate"]))
        if not rundir.has_eval(run_dir, cfg.train.steps):
            log(f"[{index}/{total}] {entry['name']}: training ...")
            if not unless_busy(partial(app.train, cfg, run_dir), log):  # another call is training it
                continue
            trained += 1
        tuned = entry.get("role") != "sweep"  # the sweep's runs are not trials: no val evaluation
        if tuned and not rundir.eval_path(run_dir, cfg.train.steps, f"{VAL_SUFFIX}.json").is_file():
            log(f"[{index}/{total}] {entry['name']}: evaluating on {TUNING_SPLIT} ...")
            if not unless_busy(partial(evaluate_on_val, run_dir, cfg), log):
                continue
        write_study(out_dir, study, clock, trained_before + trained)  # a cut-short call counts
    return trained


def trials(study_dir: str | Path, study: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run trained at a trial learning rate: its quantizer, seed, rate, and PSNR on the tuning split
    (``val_psnr``) and the held-out split (``psnr``), each None until evaluated."""
    out = []
    for run in study["runs"]:
        if run.get("lr") is None:
            continue
        run_dir = run_path(study_dir, run)
        out.append(trial_of(run, found_eval(run_dir, VAL_SUFFIX), latest_eval(run_dir)))
    return out


def collect(
    study_dir: str | Path, study: dict[str, Any], chosen: dict[str, tuple[float, str]] | None = None
) -> list[dict[str, Any]]:
    """One row per evaluated run and seed, plus, from each FSQ run's evaluation, one row per anchor; of runs trained
    as trials only those of their quantizer's chosen trial (``chosen``, by default :func:`choose_trials` of the
    :func:`trials`; none while a quantizer's trials are unfinished)."""
    rows: list[dict[str, Any]] = []
    if chosen is None:
        chosen = choose_trials(trials(study_dir, study))
    for run in study["runs"]:
        if run.get("role") == "sweep" or (run.get("lr") is not None and chosen.get(run["label"]) != trial_key(run)):
            continue
        e = latest_eval(run_path(study_dir, run))
        if e is None:
            continue
        anchors = e.get("anchors") or {}
        bits = (anchors.get("tokenizer") or {}).get("bits_per_image")
        if bits is None and e.get("token_grid") and e.get("codebook_size"):
            bits = e["token_grid"] ** 2 * math.log2(e["codebook_size"])
        rows.append(
            {
                "method": run["label"],
                "seed": run.get("seed", 0),
                "bits_per_image": bits,
                "psnr": e.get("psnr"),
                "ssim": e.get("ssim"),
                "perceptual": e.get("perceptual"),
                "codes_used": e.get("codes_used"),
                "code_cap": code_cap(e),
                "num_samples": e.get("num_samples"),
            }
        )
        for key, label in ANCHOR_METHODS.items():
            if key in anchors:
                a = anchors[key]
                rows.append(
                    {
                        "method": label,
                        "seed": run.get("seed", 0),
                        "bits_per_image": spent_bits(key, a),
                        "psnr": a["psnr"],
                        "ssim": a["ssim"],
                        "perceptual": None,
                        "codes_used": None,
                        "code_cap": None,
                        "num_samples": a["num_samples"],
                    }
                )
    return rows


SWEEP_NUMERIC = (
    "bits_per_image",
    "psnr",
    "ssim",
    "rfid",
    "codes_used",
    "code_cap",
    "naive_psnr",
    "jpeg_psnr",
    "jpeg_bits",
    "webp_psnr",
    "webp_bits",
)


def sweep_rows(
    study_dir: str | Path, study: dict[str, Any], chosen: dict[str, tuple[float, str]]
) -> list[dict[str, Any]]:
    """The codebook-size sweep: one row per evaluated sweep run and seed, plus FSQ's chosen trial of each seed (the
    2^10 point), each with the anchors at its own bits; none without sweep runs."""
    if not any(run.get("role") == "sweep" for run in study["runs"]):
        return []
    rows = []
    for run in study["runs"]:
        main = run["label"] == "FSQ" and run.get("lr") is not None and chosen.get("FSQ") == trial_key(run)
        if run.get("role") != "sweep" and not main:
            continue
        e = latest_eval(run_path(study_dir, run))
        if e is None:
            continue
        anchors = e.get("anchors") or {}
        rows.append(
            {
                "codebook_size": e.get("codebook_size"),
                "levels": e.get("levels"),
                "seed": run.get("seed", 0),
                "bits_per_image": (anchors.get("tokenizer") or {}).get("bits_per_image"),
                "psnr": e.get("psnr"),
                "ssim": e.get("ssim"),
                "rfid": e.get("rfid"),
                "codes_used": e.get("codes_used"),
                "code_cap": code_cap(e),
                **{f"{key}_psnr": (anchors.get(key) or {}).get("psnr") for key in ("naive", "jpeg", "webp")},
                **{f"{key}_bits": (anchors.get(key) or {}).get("bits_per_image") for key in ("jpeg", "webp")},
            }
        )
    return sorted(rows, key=lambda r: (r["codebook_size"] or 0, r["seed"]))


def sweep_table(groups: list[dict[str, Any]]) -> str:
    """The sweep's seed means per codebook size."""
    lines = markdown.table(
        [
            "codes (levels)",
            "bits / image",
            "PSNR (dB)",
            "SSIM",
            "rFID",
            "codes used",
            "naive codec",
            "JPEG",
            "WebP",
            "seeds",
        ]
    )
    for g in groups:
        cells = [
            pm(g[k], g[f"{k}_std"], d) if g[k] is not None else "-"
            for k, d in (("bits_per_image", 0), ("psnr", 2), ("ssim", 3), ("rfid", 1))
        ] + [used_of(g)]
        anchors = [f"{g['naive_psnr']:.2f}" if g["naive_psnr"] is not None else "-"] + [
            f"{g[f'{k}_psnr']:.2f} ({g[f'{k}_bits']:.0f} bits)" if g[f"{k}_psnr"] is not None else "-"
            for k in ("jpeg", "webp")
        ]
        levels = g["levels"] if g.get("levels") else ""
        lines.append(markdown.row([f"{g['codebook_size']} {levels}", *cells, *anchors, len(g["seeds"])]))
    return "\n".join(lines)


def sweep_claims(groups: list[dict[str, Any]]) -> list[str]:
    """Fig. 3a's question on photos: is the largest codebook better than the smallest (PSNR one-sided; rFID too
    where both were measured)."""
    if len(groups) < 2:
        return []
    small, large = groups[0], groups[-1]
    lines = []
    v = higher(Side.of(large, "psnr"), Side.of(small, "psnr"))
    lines.append(
        f"FSQ at {large['codebook_size']} codes beats FSQ at {small['codebook_size']} codes in PSNR: {v.bold()} "
        f"({large['psnr']:.2f} vs {small['psnr']:.2f} dB; {v.test()})"
    )
    if large.get("rfid") is not None and small.get("rfid") is not None:
        v = lower(Side.of(large, "rfid"), Side.of(small, "rfid"))
        lines.append(
            f"FSQ at {large['codebook_size']} codes has a lower rFID than at {small['codebook_size']} codes: "
            f"{v.bold()} ({large['rfid']:.1f} vs {small['rfid']:.1f}; {v.test()})"
        )
    return lines


def claims(groups: list[dict[str, Any]]) -> list[str]:
    """Claim lines: each tokenizer against the naive codec plus 1 dB, and against WebP, in PSNR (one-sided)."""
    by = {g["method"]: g for g in groups}
    naive, webp = by.get("naive codec"), by.get("WebP")
    lines = []
    for label in QUANTIZERS:
        g = by.get(label)
        if g is None:
            continue
        ours = Side.of(g, "psnr")
        if naive is not None:
            bar = Side(naive["psnr"] + MARGIN_DB, naive.get("psnr_std"), len(naive["seeds"]))
            v = higher(ours, bar)
            lines.append(
                f"{label} beats the naive codec by >= {MARGIN_DB:g} dB PSNR: {v.bold()} ({label} "
                f"{ours.mean:.2f} dB, naive {naive['psnr']:.2f} dB; {v.test()})"
            )
        if webp is not None:
            v = higher(ours, Side.of(webp, "psnr"))
            lines.append(
                f"{label} beats WebP at its bits: {v.bold()} ({label} {ours.mean:.2f} dB at "
                f"{g['bits_per_image']:.0f} bits, WebP {webp['psnr']:.2f} dB at {webp['bits_per_image']:.0f} bits; "
                f"{v.test()})"
            )
    return lines


def write_report(study_dir: str | Path) -> Path:
    """Write results.json/csv and report.md from the run dirs; returns the report's path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    found = trials(study_dir, study)
    chosen = choose_trials(found)
    rows = collect(study_dir, study, chosen)
    if not rows:
        if found:
            raise ValueError(
                f"{study_dir}: no quantizer has all its learning-rate trials evaluated on {TUNING_SPLIT} yet"
            )
        raise ValueError(f"{study_dir}: no run of the photos study has been evaluated yet")
    sweep = sweep_rows(study_dir, study, chosen)
    extra = {**({"trials": found} if found else {}), **({"codebook_sweep": sweep} if sweep else {})}
    write_results(study_dir, {**study, **extra}, rows)
    sweep_groups = over_seeds(sweep, ("codebook_size",), SWEEP_NUMERIC) if sweep else []
    for g in sweep_groups:
        g["levels"] = next(r["levels"] for r in sweep if r["codebook_size"] == g["codebook_size"])
    groups = over_seeds(rows, ("method",), NUMERIC)
    method_table = markdown.table(
        ["method", "bits / image", "PSNR (dB)", "SSIM", "perceptual distance", "codes used", "seeds"]
    )
    for g in groups:
        method_table.append(
            markdown.row(
                [
                    g["method"],
                    pm(g["bits_per_image"], g["bits_per_image_std"], 0),
                    pm(g["psnr"], g["psnr_std"], 2),
                    pm(g["ssim"], g["ssim_std"], 3),
                    pm(g["perceptual"], g["perceptual_std"], 4),
                    used_of(g),
                    len(g["seeds"]),
                ]
            )
        )
    done = {(r["method"], r["seed"]) for r in rows}
    tried = {t["name"] for t in found if t["val_psnr"] is not None and t["psnr"] is not None}
    missing = [
        r["name"]
        for r in study["runs"]
        if (
            latest_eval(run_path(study_dir, r)) is None
            if r.get("role") == "sweep"
            else (r["label"], r.get("seed", 0)) not in done and r["name"] not in tried
        )
    ]
    lines = [
        f"# {study['title']}",
        "",
        study["description"],
        "",
        study.get("budget", ""),
        "",
        *([timing_line(study["timing"]), ""] if study.get("timing") else []),
        *method_table,
        "",
        "Means over seeds (± one sample standard deviation; none with one seed) on the held-out crops. Bits: "
        "tokenizers tokens x log2(codebook size); naive codec its fixed-length code; JPEG and WebP their whole "
        "files, headers included; JPEG (payload) its entropy-coded scan plus 7 bits naming the quality "
        "(fsq.anchors.images). Codes used: distinct codes in the held-out tokens, of those countable from them (the "
        "codebook size, or the number of tokens seen when fewer). Perceptual distance: EfficientNet-Lite0 "
        "(ImageNet) features of reconstruction and original, unit-normalised per position, squared distance summed "
        "over four blocks (the perceptual loss's form; not LPIPS, not comparable with LPIPS numbers; lower is "
        "closer; - where not measured: the codecs).",
        "",
        *(
            [
                "## Tuning trials",
                "",
                f"Every quantizer had {len(next(iter(TRIALS.values())))} trials; the table above uses, per quantizer, "
                f"the trial with the best mean PSNR on `{TUNING_SPLIT}` crops (new crops of the training photos) over "
                "seeds.",
                "",
                tuning_table(found, chosen),
                "",
            ]
            if found
            else []
        ),
        *(
            [
                "## Codebook size (FSQ)",
                "",
                "FSQ at each codebook size, at the learning rate its trials chose on val, beside the anchors at the "
                "same bits per image (PSNR in dB; JPEG and WebP with the bits they really took: a target below their "
                "smallest file keeps that file). rFID: Inception-v3 FID of the reconstructions against their "
                "originals, on the first `eval.fid_samples` held-out crops (- where not measured).",
                "",
                sweep_table(sweep_groups),
                "",
            ]
            if sweep_groups
            else []
        ),
        "## Claims, measured here",
        "",
        *[f"- {line}" for line in [*claims(groups), *sweep_claims(sweep_groups)]],
        "",
    ]
    if missing:
        lines += [f"Runs not finished yet (rerun the study to resume them): {', '.join(missing)}", ""]
    lines += ["Every number is also in `results.json` and `results.csv`; each run dir is under `runs/`.", ""]
    path = study_dir / "report.md"
    write_text_atomic("\n".join(lines), path)
    return path


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study photos [--preset cpu|quick] [--seeds ...] [--tasks quantizers [codebook]] [key=value ...]``."""
    tasks = list(options.get("tasks") or TASKS)
    if sorted(set(tasks) - set(TASKS)) or "quantizers" not in tasks:
        raise ValueError(
            f"the photos study's --tasks are quantizers (always) and codebook (the FSQ sweep), got {tasks}"
        )
    return run_photos_study(
        out_dir,
        preset=options.get("preset") or "cpu",
        seeds=options.get("seeds"),
        overrides=overrides,
        sweep="codebook" in tasks,
        jobs=int(options.get("jobs") or 1),
    )
