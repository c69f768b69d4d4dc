"""The MaskGIT study (paper Fig. 4): FSQ vs VQ tokens under the same Stage II budget, a guidance sweep, and the
same comparison at several multiples of the budget; plan, run and report.

``run_maskgit_study(out_dir, ...)`` trains, for each quantizer, a Stage I tokenizer (the preset's; or, with
``configs``, the tokenizer each MaskGIT config names), exports its training tokens once, then one MaskGIT per
(budget multiple, seed) under ``out_dir/runs/<name>``: ``train.steps`` times the multiple (all else equal). Each
MaskGIT is evaluated at every guidance weight twice: on the report split (``test``: ``eval/step_N.json``) and on
the tuning split (``val``: ``eval/step_N_val.json``), with sampling quality measured against reference images of
that split (``eval.reference_split``). Choices read the tuning split only: the guidance weight of the headline
comparison is the one with the lowest judge Frechet distance on ``val``. Finished runs (and evaluations) are
reused, interrupted ones resume. Overrides starting ``tokenizer.`` go to Stage I, the others to every MaskGIT;
``study.budgets=[1,2,4]`` and ``study.seeds=[0,1]`` set the plan.

The report half (:mod:`fsq.studies.maskgit_rows`, :mod:`fsq.studies.maskgit_claims`,
:mod:`fsq.studies.maskgit_plots`) is a pure function of the study folder and imports no torch.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import MaskGITExperiment, QuantizerConfig, TokenizerExperiment, config_path, load_config
from fsq.io import read_json
from fsq.studies import codebook
from fsq.studies.common import (
    Stopwatch,
    finish_report,
    read_study,
    relative_to_study,
    run_path,
    timing_line,
    unless_busy,
    write_results,
    write_study,
)
from fsq.studies.maskgit_claims import claims, markdown_table
from fsq.studies.maskgit_plots import plot
from fsq.studies.maskgit_rows import TUNE_SUFFIX, collect

__all__ = ["claims", "markdown_table", "run_maskgit_study", "write_report"]

TUNE_SPLIT, REPORT_SPLIT = "val", "test"
TOKENIZER_PREFIX, STUDY_PREFIX = "tokenizer.", "study."
DEFAULT_BUDGETS, DEFAULT_SEEDS = [1, 2, 4], [0, 1]
QUANTIZERS: dict[
    str, dict[str, Any]
] = {  # label -> Stage I quantizer: the paper's MaskGIT pair (FSQ [8,5,5,5] vs VQ 1024, MaskGIT recipe)
    "FSQ": {"kind": "fsq", "levels": [8, 5, 5, 5]},
    "VQ": {"kind": "vq", "codebook_size": 1024, "recipe": "maskgit"},
}
# Presets. "cpu": the codebook study's CPU scale (16 px MNIST, 4x4 tokens; a 2-layer width-64 transformer), one
# thread (measured faster than two on the shared 2-core machine). The MaskGIT learning rate 0.01 was chosen on
# `val` by the codebook study's sweep of this transformer on these tokens (0.002 / 0.005 / 0.01 / 0.02). The choice
# temperature was checked on `val` (1x, seed 0, no guidance, 500 samples; judge Frechet distance at 0.5 / 1 / 2 /
# 4.5: FSQ 34.5 / 34.4 / 34.2 / 37.1, VQ 35.5 / 35.7 / 36.6 / 39.3): 0.5 ... 2 lie within about one unit, the
# paper's 4.5 (made for 256 tokens) is worse for both; 2 kept. The decoding steps (8) were not tuned. The guidance
# weight is chosen on `val` per quantizer and budget by the study itself. "gpu": a larger transformer, longer runs
# and Inception FID beside the judge's numbers.
# The guidance sweep: the paper's weights (0 ... 0.25) and beyond, up to 4: at this scale the judge Frechet distance
# on `val` still fell at 1 for both quantizers (the first sweep ended there), so the sweep goes on until it turns.
GUIDANCE = [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0]
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        TokenizerExperiment.stage: {
            "data": {"image_size": 16, "eval_limit": 3000},
            "model": {"filters": 16, "channel_multipliers": [1, 2, 4], "num_res_blocks": 1, "num_groups": 8},
            "optim": {"lr": 0.002, "warmup_steps": 20},
            "train": {
                "steps": 400,
                "batch_size": 32,
                "ema_decay": 0.98,
                "log_every": 50,
                "checkpoint_every": 200,
                "threads": 1,
                "progress": False,
            },
            "eval": {"fid_samples": 0},
            "vq_dim": 32,
        },
        MaskGITExperiment.stage: {
            "model": {"preset": None, "width": 64, "depth": 2, "heads": 4, "mlp_dim": 256, "dropout": 0.0},
            "optim": {"lr": 0.01, "beta1": 0.9, "beta2": 0.96, "weight_decay": 0.045, "warmup_steps": 50},
            "train": {
                "steps": 400,
                "batch_size": 64,
                "ema_decay": 0.98,
                "log_every": 100,
                "checkpoint_every": 400,
                "threads": 1,
                "progress": False,
            },
            "eval": {
                "num_samples": 500,
                "steps": 8,
                "choice_temperature": 2.0,
                "guidance": GUIDANCE,
                "fid_samples": 0,
                "speed_steps": [8],
                "speed_batch": 50,
                "compression_samples": 1000,
                "grid_per_class": 10,
            },
        },
    },
    # "gpu": the codebook study's GPU presets (a lease of minutes: the same Stage I and II scale), with this study's
    # guidance sweep; its plumbing was checked on a CPU with tiny step counts, the preset has not yet run on a GPU.
    "gpu": {
        TokenizerExperiment.stage: {**copy.deepcopy(codebook.PRESETS["gpu"]), "eval": {"fid_samples": 2000}},
        MaskGITExperiment.stage: (
            lambda m: {
                **m,
                "train": {**m["train"], "checkpoint_every": 2400},
                "eval": {**m["eval"], "guidance": GUIDANCE},
            }
        )(copy.deepcopy(codebook.STAGE2_PRESETS["gpu"])),
    },
}


def _int_list(key: str, value: str) -> list[int]:
    """``[1,2,4]`` or ``1,2,4``: distinct integers, at least 1 for budgets and 0 for seeds."""
    items = [v for v in value.strip().strip("[]").replace(" ", "").split(",") if v]
    smallest = 1 if key == "budgets" else 0
    if not items or not all(v.isdigit() and int(v) >= smallest for v in items) or len(set(items)) != len(items):
        raise ValueError(
            f"study.{key} must list distinct integers >= {smallest}, e.g. study.{key}=[1,2,4], got {value!r}"
        )
    return [int(v) for v in items]


def split_overrides(items: Sequence[str]) -> tuple[list[str], list[str], list[str], dict[str, list[int]]]:
    """(config files, Stage I overrides, MaskGIT overrides, study settings) of the command line's items."""
    configs = [i for i in items if "=" not in i]
    pairs = [i for i in items if "=" in i]
    stage1 = [i[len(TOKENIZER_PREFIX) :] for i in pairs if i.startswith(TOKENIZER_PREFIX)]
    settings: dict[str, list[int]] = {}
    for item in (i for i in pairs if i.startswith(STUDY_PREFIX)):
        key, value = item[len(STUDY_PREFIX) :].split("=", 1)
        if key not in ("budgets", "seeds"):
            raise ValueError(f"unknown study setting {item!r}: use study.budgets=[1,2,4] or study.seeds=[0,1]")
        settings[key] = _int_list(key, value)
    stage2 = [i for i in pairs if not i.startswith((TOKENIZER_PREFIX, STUDY_PREFIX))]
    return configs, stage1, stage2, settings


def tokenizer_config(preset: str, label: str, data: str, overrides: list[str]) -> TokenizerExperiment:
    """The Stage I config of one quantizer from the preset (``data`` the source)."""
    base = json.loads(json.dumps(PRESETS[preset][TokenizerExperiment.stage]))
    vq_dim = base.pop("vq_dim")
    base["data"]["source"] = data
    quantizer = dict(QUANTIZERS[label])
    if QuantizerConfig(**quantizer).setting("dim") is not None:  # a code width of its own (VQ): the preset's
        quantizer["dim"] = vq_dim
    base["quantizer"] = quantizer
    base["name"] = f"tokenizer_{label.lower()}"
    return load_config(TokenizerExperiment, [], overrides, base=base)


def arms(
    out_dir: Path, preset: str, data: str, configs: Sequence[str | Path], stage1: list[str], stage2: list[str]
) -> list[dict[str, Any]]:
    """One entry per quantizer: its label, tokenizer dir and config (None: trained elsewhere) and base MaskGIT config.

    Without ``configs``: the preset's tokenizers under ``out_dir/runs/tokenizer_<q>``, their tokens exported once
    under ``out_dir/tokens/``. With ``configs``: each MaskGIT config file as given (its ``data.tokenizer``).
    """
    result = []
    if configs:
        for path in configs:
            cfg = load_config(MaskGITExperiment, [config_path(path, MaskGITExperiment.stage)], stage2)
            tok = cfg.data.tokenizer_config
            tok_cfg = (
                load_config(TokenizerExperiment, [config_path(tok, TokenizerExperiment.stage)], stage1) if tok else None
            )
            label = tok_cfg.quantizer.kind.upper() if tok_cfg else cfg.name
            entry = {"label": label, "name": cfg.name, "tokenizer": Path(cfg.data.tokenizer), "tok_cfg": tok_cfg}
            result.append({**entry, "base": cfg})
        return result
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {list(PRESETS)}")
    for label in QUANTIZERS:
        tok_cfg = tokenizer_config(preset, label, data, stage1)
        tok_dir = out_dir / "runs" / tok_cfg.name
        base = json.loads(json.dumps(PRESETS[preset][MaskGITExperiment.stage]))
        base["name"] = f"maskgit_{label.lower()}"
        base["data"] = {
            "tokenizer": str(tok_dir),
            "tokens": str(out_dir / "tokens" / tok_cfg.name / tok_cfg.data.train_split),
            "train_split": tok_cfg.data.train_split,
        }
        cfg = load_config(MaskGITExperiment, [], stage2, base=base)
        result.append({"label": label, "name": base["name"], "tokenizer": tok_dir, "tok_cfg": tok_cfg, "base": cfg})
    return result


def for_split(cfg: MaskGITExperiment, split: str) -> MaskGITExperiment:
    """``cfg`` evaluated on ``split``: its held-out grids and its reference images both from that split."""
    return replace(cfg, data=replace(cfg.data, eval_split=split), eval=replace(cfg.eval, reference_split=split))


def run_config(base: MaskGITExperiment, name: str, budget: int, seed: int) -> MaskGITExperiment:
    """One MaskGIT run: ``budget`` times the base's steps, ``seed``, evaluated on the report split."""
    train = replace(base.train, steps=base.train.steps * budget, seed=seed)
    return for_split(replace(base, name=name, train=train), REPORT_SPLIT)


def run_maskgit_study(
    out_dir: str | Path,
    configs: Sequence[str | Path] = (),
    *,
    preset: str = "cpu",
    data: str = "mnist",
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    overrides: Sequence[str] = (),
    log=print,
) -> Path:
    """Train (or reuse) every run of the study, evaluate each on the tuning and report splits; write ``report.md``.

    ``overrides``: ``tokenizer.KEY=VALUE`` for Stage I, ``KEY=VALUE`` for every MaskGIT. The wall time, CPU time
    and load average of the calls that trained or evaluated anything are recorded in ``study.json`` (``timing``,
    summed over the calls into the same folder). A guidance weight added to the sweep later is evaluated alone on
    the finished runs (no retraining; the weights measured before are kept).
    """
    from fsq import app  # training needs torch; the report does not

    if not budgets or not seeds:
        raise ValueError(f"the study needs at least one budget and one seed, got {list(budgets)} and {list(seeds)}")
    stopwatch = Stopwatch()
    out_dir = Path(out_dir)
    stage1 = [o[len(TOKENIZER_PREFIX) :] for o in overrides if o.startswith(TOKENIZER_PREFIX)]
    stage2 = [o for o in overrides if not o.startswith(TOKENIZER_PREFIX)]
    plan = arms(out_dir, preset, data, configs, stage1, stage2)
    labels = [a["label"] for a in plan]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the configs' quantizers must differ (they label the rows): {labels}")
    runs, cfgs = [], []
    for a in plan:
        for budget in budgets:
            for seed in seeds:
                name = f"{a['name']}_x{budget}_s{seed}"
                cfg = run_config(a["base"], name, budget, seed)
                cfgs.append((a, cfg))
                runs.append(
                    {
                        "name": name,
                        "label": a["label"],
                        "run_dir": f"runs/{name}",
                        "stage": MaskGITExperiment.stage,
                        "tokenizer": relative_to_study(a["tokenizer"], out_dir),
                        "budget": budget,
                        "seed": seed,
                        "steps": cfg.train.steps,
                        "batch_size": cfg.train.batch_size,
                    }
                )
    b = plan[0]["base"]
    budget_text = (
        f"Stage II: a {b.model.depth}-layer width-{b.model.width} MaskGIT per quantizer, budget multiple and seed: "
        f"{' / '.join(str(b.train.steps * m) for m in budgets)} steps ({', '.join(f'{m}x' for m in budgets)}) x batch "
        f"{b.train.batch_size}, seeds {', '.join(map(str, seeds))}; {b.eval.num_samples} samples per guidance weight "
        f"({', '.join(f'{g:g}' for g in b.eval.guidance)}; {b.eval.steps} decoding steps, choice temperature "
        f"{b.eval.choice_temperature:g}), judged against as many `{TUNE_SPLIT}` images (choices) and `{REPORT_SPLIT}` "
        f"images (reported); compression cost on {b.eval.compression_samples} held-out grids."
    )
    tok0 = plan[0]["tok_cfg"]
    if tok0 is not None:
        budget_text = (
            f"Stage I: {tok0.train.steps} steps x batch {tok0.train.batch_size} per tokenizer, "
            f"{tok0.data.image_size} px `{tok0.data.source}`. " + budget_text
        )
    previous = read_study(out_dir).get("timing") if (out_dir / "study.json").is_file() else None
    study: dict[str, Any] = {
        "kind": "maskgit",
        "title": "Stage II: class-conditional MaskGIT on FSQ and VQ tokens (paper Fig. 4)",
        "description": (
            "Same transformer and budget for both quantizers; every run evaluated at each guidance weight on the "
            f"tuning split (`{TUNE_SPLIT}`: choices) and the report split (`{REPORT_SPLIT}`: the numbers shown)."
        ),
        "preset": None if configs else preset,
        "data": data,
        "configs": [str(p) for p in configs],
        "overrides": list(overrides),
        "budgets": list(budgets),
        "seeds": list(seeds),
        "budget": budget_text,
        "runs": runs,
    }
    if previous:
        study["timing"] = previous
    write_study(out_dir, study)
    trained = evaluated = 0
    waiting: set[str] = set()  # tokenizers another call is training: their MaskGIT runs wait for a rerun
    for a in plan:
        if a["tok_cfg"] is not None and not rundir.eval_files(a["tokenizer"]):  # a tokenizer with an eval is reused
            log(f"tokenizer {a['tokenizer']}: training {a['label']} ...")
            if not unless_busy(partial(app.train, a["tok_cfg"], a["tokenizer"]), log):
                waiting.add(a["name"])
                continue
            trained += 1
        tokens = a["base"].data.tokens
        if tokens and not (Path(tokens) / "manifest.json").is_file():
            log(f"tokens of {a['tokenizer']}: exporting to {tokens} ...")
            if not unless_busy(partial(_export_once, a["tokenizer"], a["base"].data.train_split, tokens), log):
                waiting.add(a["name"])
    for index, (run, (a, cfg)) in enumerate(zip(runs, cfgs), 1):
        run_dir = run_path(out_dir, run)
        step = cfg.train.steps
        if a["name"] in waiting:
            log(f"[{index}/{len(runs)}] {run['name']}: waits for its tokenizer (another call is on it)")
            continue
        if not rundir.has_eval(run_dir, step):
            log(f"[{index}/{len(runs)}] {run['name']}: training MaskGIT on {a['tokenizer']} ...")
            if not unless_busy(partial(app.train, cfg, run_dir), log):  # another call is training it
                continue
            trained += 1
        done: list[int] = []  # the evaluations it ran (none when its weights were all measured before)
        tag = f"[{index}/{len(runs)}] {run['name']}"
        if not unless_busy(lambda: done.append(_evaluate_run(run_dir, cfg, tag, log)), log):  # noqa: B023
            continue
        evaluated += sum(done)
        if trained or evaluated:  # after every run: a study cut short keeps the time it spent
            write_study(out_dir, study, stopwatch, trained)  # a cut-short call counts
    return write_report(out_dir)


def _export_once(tokenizer: Path, split: str, tokens: str | Path) -> None:
    """Export a tokenizer's tokens unless they are there, holding its run dir (two calls never write them at once;
    a tokenizer that is no run dir here, a bundle name, is not locked)."""
    from fsq.stages.tokens import export_tokens  # torch; the report does not need it

    with rundir.RunDirLock(tokenizer, "exporting its tokens") if Path(tokenizer).is_dir() else nullcontext():
        if not (Path(tokens) / "manifest.json").is_file():
            export_tokens(tokenizer, split, tokens)


def _evaluate_run(run_dir: Path, cfg: MaskGITExperiment, tag: str, log=print) -> int:
    """Evaluate the guidance weights a MaskGIT run's evaluations lack, on the report and the tuning split (a weight
    added later: only it is run), holding the run dir; returns how many evaluations it ran."""
    import torch  # evaluation needs torch; the report does not

    from fsq.evaluation.maskgit import evaluate_maskgit

    step, ran = cfg.train.steps, 0
    with rundir.RunDirLock(run_dir, "evaluating it"):  # not while another process trains or evaluates it
        for split, suffix in ((REPORT_SPLIT, ""), (TUNE_SPLIT, TUNE_SUFFIX)):
            missing = missing_weights(rundir.eval_path(run_dir, step, f"{suffix}.json"), cfg.eval.guidance)
            if missing:
                log(f"{tag}: evaluating on `{split}` (guidance {missing}) ...")
                if cfg.train.threads:
                    torch.set_num_threads(cfg.train.threads)
                evaluate_maskgit(run_dir, cfg=for_split(cfg, split), suffix=suffix, reuse=True)
                ran += 1
    return ran


def missing_weights(path: Path, weights: Sequence[float]) -> list[float]:
    """The guidance weights of ``weights`` that the evaluation at ``path`` lacks (all of them without the file)."""
    if not path.is_file():
        return list(weights)
    done = {row["guidance"] for row in read_json(path, "a guidance evaluation").get("guidance", [])}
    return [w for w in weights if w not in done]


def write_report(study_dir: str | Path) -> Path:
    """Write results.json/csv, plots/, the sample grids under ``samples/`` and report.md; returns its path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = collect(study_dir)
    if not rows:
        raise ValueError(f"{study_dir}: no MaskGIT run has been evaluated yet")
    write_results(study_dir, study, rows)
    plots = plot(rows, study_dir / "plots")
    samples = study_dir / "samples"
    samples.mkdir(exist_ok=True)
    images = []
    runs = {run["name"]: run for run in study["runs"]}
    seed, budget = min(r["seed"] for r in rows), max(r["budget"] for r in rows)
    weights = sorted({0.0, max(r["guidance"] for r in rows)})
    for r in rows:  # the first seed at the largest budget, without and with the strongest guidance
        if r["seed"] == seed and r["budget"] == budget and r["guidance"] in weights:
            grid = rundir.eval_path(run_path(study_dir, runs[r["name"]]), r["step"], f"_samples_g{r['guidance']:g}.png")
            if grid.is_file():
                target = samples / f"{r['name']}_g{r['guidance']:g}.png"
                shutil.copyfile(grid, target)
                images.append((f"{r['quantizer']}, {budget}x, CFG {r['guidance']:g}", target))
    finished = {r["name"] for r in rows}
    missing = [
        run["name"]
        for run in study["runs"]
        if run.get("stage") == MaskGITExperiment.stage and run["name"] not in finished
    ]
    first = rows[0]
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        study.get("budget", ""),
        "",
        *([timing_line(study["timing"]), ""] if study.get("timing") else []),
        markdown_table(rows),
        "",
        f"Means over seeds (± one standard deviation). `*`: the guidance weight chosen on `{first['tune_split']}` "
        f"(lowest judge Frechet distance there); every other number on `{first['report_split']}`. Class accuracy: "
        f"share of {first['num_samples']} samples (classes in equal shares) the class judge assigns to the "
        f"conditioning class (the judge scores {100 * (first['judge_accuracy'] or float('nan')):.2f}% on real "
        f"held-out images). Judge FD: Frechet distance between the judge's penultimate features of the samples and "
        f"of as many `{first['reference_split']}` images (not FID); judge precision / recall: k-NN (k = 3) manifolds "
        "in the same features. Tokenizer usage: codes the tokenizer uses on as many held-out images as there are "
        "samples; sampled usage: codes in the samples' tokens. Bits/token: compression cost of held-out token grids "
        "under the trained transformer.",
        "",
        "## What the paper claims, measured here",
        "",
        *[f"- {line}" for line in claims(rows)],
        "",
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
        "## Samples (one row per class)",
        "",
        *[f"**{label}**\n\n![{label}](samples/{path.name})\n" for label, path in images],
    ]
    return finish_report(study_dir, lines, missing)


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study maskgit [CONFIG...] [key=value...]``: items without ``=`` are MaskGIT configs (default: the
    preset's FSQ and VQ); ``tokenizer.*`` overrides go to Stage I; ``study.budgets`` / ``study.seeds`` set the plan."""
    configs, stage1, stage2, settings = split_overrides(overrides)
    return run_maskgit_study(
        out_dir,
        configs,
        preset=options.get("preset") or "cpu",
        data=options.get("data") or "mnist",
        budgets=settings.get("budgets", DEFAULT_BUDGETS),
        seeds=settings.get("seeds", DEFAULT_SEEDS),
        overrides=[f"{TOKENIZER_PREFIX}{o}" for o in stage1] + stage2,
    )
