"""The paper's studies as commands: codebook-size sweep (Fig. 3) and level-set ablation (Fig. 10).

``run_study(kind, out_dir, ...)`` plans one ordinary tokenizer run dir per (quantizer, codebook size) under
``out_dir/runs/``, trains each with :func:`fsq.training.tokenizer.train_tokenizer` (a finished run, one holding
its evaluation, is reused; an interrupted one resumes from its checkpoint), then writes the report with
:mod:`fsq.reporting`. The study's plan is saved as ``study.json`` so ``fsq report`` can rebuild the report later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fsq.config import TokenizerExperiment, load_config
from fsq.quantizers.levels import levels_for_codebook_size

# Presets: base overrides of the tokenizer config. "cpu" is sized from reference/recipes.md sec. 8 (16 px images,
# 4x4 tokens, ~0.05 s per step on 2 cores) so the 15 runs of the demo fit in 10 minutes; "gpu": one GPU.
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
    overrides: list[str] = (),
    log=print,
) -> Path:
    """Train (or reuse) every run of the study, then write and return ``report.md``."""
    from fsq.reporting import write_report
    from fsq.training.tokenizer import has_final_eval, train_tokenizer

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
    (out_dir / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    for index, (run, cfg) in enumerate(zip(runs, configs), 1):
        run_dir = out_dir / "runs" / run["name"]
        if has_final_eval(run_dir, cfg):
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training {run['label']} {run['levels'] or run['target_size']} ...")
        result = train_tokenizer(cfg, run_dir)
        e = result["eval"]
        log(
            f"    PSNR {e['psnr']:.2f} dB, codes used {e['codes_used']}/{e['codebook_size']} "
            f"({100 * e['usage']:.1f}%), {e['seconds']:.0f} s eval"
        )
    return write_report(out_dir)


def run_maskgit_study(out_dir: str | Path, configs: list[str | Path], *, overrides: list[str] = (), log=print) -> Path:
    """Stage II on several tokenizers with the same budget (paper Fig. 4 table): one MaskGIT run per config.

    Each config names its tokenizer run (``data.tokenizer``); a tokenizer not trained yet is trained first from
    ``data.tokenizer_config``. MaskGIT runs live under ``out_dir/runs/<name>``; finished ones are reused.
    """
    from fsq.config import MaskGITExperiment
    from fsq.generation_report import write_maskgit_report
    from fsq.training.maskgit import train_maskgit
    from fsq.training.state import has_final_eval as finished
    from fsq.training.tokenizer import train_tokenizer

    out_dir = Path(out_dir)
    experiments = [load_config(MaskGITExperiment, [path], list(overrides)) for path in configs]
    names = [cfg.name for cfg in experiments]
    if len(set(names)) != len(names):
        raise ValueError(f"the configs' names must differ (they name the run dirs): {names}")
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [
        {"name": cfg.name, "run_dir": str(out_dir / "runs" / cfg.name), "tokenizer": cfg.data.tokenizer}
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
    (out_dir / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    for index, (run, cfg) in enumerate(zip(runs, experiments), 1):
        tokenizer_dir = Path(cfg.data.tokenizer)
        if cfg.data.tokenizer_config and not (tokenizer_dir / "eval").is_dir():
            log(f"[{index}/{len(runs)}] tokenizer {tokenizer_dir}: training from {cfg.data.tokenizer_config} ...")
            train_tokenizer(load_config(TokenizerExperiment, [cfg.data.tokenizer_config]), tokenizer_dir)
        run_dir = Path(run["run_dir"])
        if finished(run_dir, cfg.train.steps):
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training MaskGIT on {tokenizer_dir} ...")
        train_maskgit(cfg, run_dir)
    return write_maskgit_report(out_dir)


# The UViM study (paper Table 2): label -> (config file, overrides). Each task FSQ vs VQ (UViM recipe, with
# splitting), plus the ablations: VQ without splitting on depth, and both quantizers without context on panoptic.
UVIM_PLAN = [
    ("depth", "FSQ", "configs/uvim/depth_fsq.yaml", []),
    ("depth", "VQ", "configs/uvim/depth_vq.yaml", []),
    ("depth", "VQ, no splitting", "configs/uvim/depth_vq.yaml", ["quantizer.recipe=uvim_nosplit"]),
    ("colorization", "FSQ", "configs/uvim/colorization_fsq.yaml", []),
    ("colorization", "VQ", "configs/uvim/colorization_vq.yaml", []),
    ("panoptic", "FSQ", "configs/uvim/panoptic_fsq.yaml", []),
    ("panoptic", "VQ", "configs/uvim/panoptic_vq.yaml", []),
    ("panoptic", "FSQ, no context", "configs/uvim/panoptic_fsq.yaml", ["model.use_context=false"]),
    ("panoptic", "VQ, no context", "configs/uvim/panoptic_vq.yaml", ["model.use_context=false"]),
]


def run_uvim_study(
    out_dir: str | Path,
    *,
    tasks: list[str] | None = None,
    root: str | Path = ".",
    overrides: list[str] = (),
    log=print,
) -> Path:
    """Train (or reuse) every UViM run of the plan for ``tasks`` under ``out_dir/runs/``, then write the report."""
    import time

    from fsq.config import UViMExperiment
    from fsq.training.uvim import train_uvim
    from fsq.uvim_report import write_uvim_report

    out_dir = Path(out_dir)
    plan_rows = [row for row in UVIM_PLAN if tasks is None or row[0] in tasks]
    if not plan_rows:
        raise ValueError(f"no UViM runs for tasks {tasks}; choose from depth, colorization, panoptic")
    runs, configs = [], []
    for task, label, path, extra in plan_rows:
        slug = label.lower().replace(", ", "_").replace(" ", "")
        name = f"{task}_{slug}"
        cfg = load_config(UViMExperiment, [Path(root) / path], [*extra, *overrides, f"name={name}"])
        runs.append(
            {
                "name": name,
                "task": task,
                "label": label,
                "config": path,
                "overrides": extra,
                "run_dir": str(out_dir / "runs" / name),
            }
        )
        configs.append(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    study_path = out_dir / "study.json"
    previous = json.loads(study_path.read_text())["runs"] if study_path.is_file() else []
    seconds = {r["name"]: r.get("seconds") for r in previous}
    c0 = configs[0]
    fsq = next((c for c in configs if c.quantizer.kind == "fsq"), c0).quantizer
    vq = next((c for c in configs if c.quantizer.kind == "vq"), c0).quantizer  # an FSQ config's VQ fields are unused
    study = {
        "kind": "uvim",
        "title": "UViM with FSQ vs VQ: depth, colorization, panoptic (paper Table 2)",
        "description": (
            f"Synthetic scenes / photo crops at {c0.data.image_size} px, {c0.data.train_size} training pairs, "
            f"{c0.data.eval_size} held-out; oracle {c0.train.oracle_steps} steps and language model "
            f"{c0.train.lm_steps} steps at batch {c0.train.batch_size}; {c0.model.code_grid}x{c0.model.code_grid} "
            f"codes; FSQ {fsq.levels} vs VQ {vq.codebook_size} codes (UViM recipe)."
        ),
        "overrides": list(overrides),
        "runs": runs,
    }
    for run in runs:
        run["seconds"] = seconds.get(run["name"])
    study_path.write_text(json.dumps(study, indent=2) + "\n")
    for index, (run, cfg) in enumerate(zip(runs, configs), 1):
        run_dir = Path(run["run_dir"])
        if (run_dir / "eval" / f"step_{cfg.train.lm_steps:06d}.json").exists():
            log(f"[{index}/{len(runs)}] {run['name']}: finished earlier, reused")
            continue
        log(f"[{index}/{len(runs)}] {run['name']}: training ...")
        tick = time.perf_counter()
        train_uvim(cfg, run_dir)
        run["seconds"] = time.perf_counter() - tick
        study_path.write_text(json.dumps(study, indent=2) + "\n")
    return write_uvim_report(out_dir)
