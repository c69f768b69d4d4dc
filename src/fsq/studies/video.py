"""The video study: FSQ vs VQ vs LFQ video tokenizers at equal bits per token, against the naive codec and the
per-frame image tokenizer at (nearly) equal bits per clip; plan, run and report.

``fsq study video --out DIR [--data moving_mnist|blobs] [--preset cpu|quick] [--seeds 0 1 2] [key=value...]``
trains, per seed (``train.seed``, which also draws the generated clips), one causal 3-D tokenizer per quantizer
from the data's video config (:data:`SOURCES`), the quantizer replaced (FSQ [8, 5, 5, 5]: log2(1000) = 9.97 bits
per token; VQ 1024 codes and LFQ 2^10 codes: 10 bits), and the per-frame image tokenizer of the data's frames
config. Every video tokenizer's evaluation holds the naive codec at its bits per clip on the same held-out clips
(:mod:`fsq.evaluation.video`); the per-frame tokenizer is evaluated here on those same clips
(``eval/step_N_clips.json`` in its run dir). Finished runs are reused, interrupted ones resume. ``key=value``
overrides go to the video tokenizers; ``frames.key=value`` to the per-frame tokenizer.

Tuning, the same for every method: each tokenizer (every video quantizer and the per-frame baseline) is trained at
each of :data:`fsq.studies.tuning.LR_FACTORS` times its config's learning rate (``video_<q>_lr<rate>_s<seed>``),
every run is also evaluated on the ``val`` split (``eval/step_N_val.json``; the per-frame tokenizer on the val
clips, ``step_N_clips_val.json``), and the report uses, per method, the rate with the best mean val PSNR over seeds
(:func:`fsq.studies.tuning.choose_rates`); the trials are listed beside the table. ``optim.lr`` overrides are
refused: the study sets the rate.

Stage II, on sources whose clips have class labels (``moving_mnist``: the first digit's class; :data:`STAGE2`):
per video tokenizer (at its chosen rate) a class-conditional video MaskGIT from the source's MaskGIT config
(``stage2.key=value`` overrides it), whose samples are judged frame by frame by the MNIST class judge beside real
held-out clips (:mod:`fsq.evaluation.video_samples`; ``eval/step_N_judged.json`` in the MaskGIT run dir). The report
(:mod:`fsq.studies.video_claims`) is a pure function of the study folder and imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import MaskGITExperiment, QuantizerConfig, TokenizerExperiment, config_path, load_config
from fsq.studies.common import (
    Stopwatch,
    finish_report,
    logged_time_sentence,
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
    choose_rates,
    refuse_lr_override,
    trial_rates,
    trials_markdown,
    tuning_table,
)
from fsq.studies.video_claims import (
    CLIPS_SUFFIX,
    JUDGED_SUFFIX,
    claims,
    collect,
    markdown_table,
    plot_curves,
    trials,
)

__all__ = ["claims", "markdown_table", "run_video_study", "trials_markdown", "write_report"]

# data source -> (the video tokenizer's config, the per-frame image tokenizer's config at equal bits per clip)
SOURCES = {
    "blobs": ("configs/tokenizer/fsq_blobs_3d.yaml", "configs/tokenizer/fsq_blobs_frames.yaml"),
    "moving_mnist": ("configs/tokenizer/fsq_moving_mnist_t2.yaml", "configs/tokenizer/fsq_moving_mnist_frames.yaml"),
}
# data source -> the class-conditional video MaskGIT config of Stage II (sources with class labels only)
STAGE2 = {"moving_mnist": "configs/maskgit/fsq_moving_mnist.yaml"}
DEFAULT_SOURCE = "moving_mnist"
FRAMES_PREFIX, STAGE2_PREFIX = "frames.", "stage2."
# label -> quantizer at (nearly) equal bits per token: 9.97 (FSQ) and 10 (VQ, LFQ). VQ: the MaskGIT recipe with a
# 32-wide code (the CPU MaskGIT study's), LFQ: its defaults.
QUANTIZERS: dict[str, dict[str, Any]] = {
    "FSQ": {"kind": "fsq", "levels": [8, 5, 5, 5]},
    "VQ": {"kind": "vq", "codebook_size": 1024, "dim": 32, "recipe": "maskgit"},
    "LFQ": {"kind": "lfq", "dim": 10},
}
# Presets: overrides of both configs. "cpu": the configs as they are (their headers give the measured cost), one
# torch thread per run and no progress bars. "quick": a smoke run in seconds at 16 px (numbers meaningless), for tests.
PRESETS: dict[str, dict[str, list[str]]] = {
    "cpu": {"video": ["train.progress=false"], "frames": ["train.progress=false"]},
    "quick": {
        "video": [
            "data.train_limit=4",
            "data.eval_limit=2",
            "data.image_size=16",
            "model.filters=8",
            "model.num_groups=4",
            "train.steps=2",
            "train.batch_size=2",
            "train.log_every=1",
            "train.checkpoint_every=2",
            "train.threads=1",
            "train.progress=false",
            "eval.batch_size=2",
        ],
        "frames": [
            "data.train_limit=18",
            "data.eval_limit=9",
            "data.image_size=16",
            "model.filters=8",
            "model.num_groups=4",
            "train.steps=2",
            "train.batch_size=9",
            "train.log_every=1",
            "train.checkpoint_every=2",
            "train.threads=1",
            "train.progress=false",
            "eval.batch_size=9",
        ],
    },
}
DEFAULT_SEEDS = {"cpu": [0, 1, 2], "quick": [0]}
STAGE2_PRESETS: dict[str, list[str]] = {
    "cpu": ["train.progress=false"],
    "quick": [
        "model.preset=null",
        "model.width=32",
        "model.depth=1",
        "model.heads=2",
        "model.mlp_dim=64",
        "data.train_limit=8",
        "train.steps=2",
        "train.batch_size=4",
        "train.log_every=1",
        "train.checkpoint_every=2",
        "train.threads=1",
        "train.progress=false",
        "eval.num_samples=10",
        "eval.guidance=[0.0]",
        "eval.batch_size=10",
        "eval.steps=2",
    ],
}
JUDGED_SAMPLES = {"cpu": 100, "quick": 10}  # sampled clips judged per MaskGIT (classes in equal shares)


def plan(
    data: str,
    preset: str,
    seeds: Sequence[int],
    overrides: Sequence[str],
    stage2: bool = True,
) -> list[tuple[dict[str, Any], Any]]:
    """(study.json entry, config) of every run: per seed the video tokenizer of each quantizer at each trial rate,
    then the per-frame image tokenizer at each trial rate; after all seeds (sources in :data:`STAGE2`, unless
    ``stage2`` is false) a class-conditional video MaskGIT per video tokenizer, its ``data.tokenizer`` left for the
    run to set to the chosen rate's run (its entry's ``tokenizer`` is None until then)."""
    if data not in SOURCES:
        raise ValueError(f"the video study runs on {sorted(SOURCES)}, not {data!r} (--data)")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} for the video study; choose from {sorted(PRESETS)}")
    if not seeds or len(set(seeds)) != len(seeds) or any(int(s) != s or s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {list(seeds)}")
    video_path, frames_path = (config_path(p, TokenizerExperiment.stage) for p in SOURCES[data])
    video_over = [o for o in overrides if not o.startswith((FRAMES_PREFIX, STAGE2_PREFIX))]
    frames_over = [o[len(FRAMES_PREFIX) :] for o in overrides if o.startswith(FRAMES_PREFIX)]
    stage2_over = [o[len(STAGE2_PREFIX) :] for o in overrides if o.startswith(STAGE2_PREFIX)]
    refuse_lr_override("video", [*video_over, *frames_over])
    video_lr = load_config(TokenizerExperiment, [video_path], video_over).optim.lr
    frames_lr = load_config(TokenizerExperiment, [frames_path], frames_over).optim.lr
    out: list[tuple[dict[str, Any], Any]] = []

    def trial(
        role: str, label: str, path: Path, over: list[str], lr: float, seed: int, name: str
    ) -> tuple[dict[str, Any], TokenizerExperiment]:
        """(entry, config) of one tokenizer run: the ``role``'s config at learning rate ``lr``."""
        cfg = load_config(
            TokenizerExperiment,
            [path],
            [*PRESETS[preset][role], *over, f"optim.lr={lr}", f"train.seed={seed}", f"name={name}"],
        )
        return {"name": name, "label": label, "role": role, "seed": seed, "lr": lr, "run_dir": f"runs/{name}"}, cfg

    for seed in seeds:
        for label, quantizer in QUANTIZERS.items():
            for lr in trial_rates(video_lr):
                name = f"video_{label.lower()}_lr{lr:g}_s{seed}"
                entry, cfg = trial("video", label, video_path, video_over, lr, seed, name)
                out.append((entry, replace(cfg, quantizer=QuantizerConfig(**quantizer))))  # no other kind's keys
        for lr in trial_rates(frames_lr):
            out.append(
                trial("frames", "per-frame FSQ", frames_path, frames_over, lr, seed, f"frames_fsq_lr{lr:g}_s{seed}")
            )
    if stage2 and data in STAGE2:  # after every tokenizer: each builds on its quantizer's chosen rate (the run sets it)
        stage2_path = config_path(STAGE2[data], MaskGITExperiment.stage)
        for seed in seeds:
            for label in QUANTIZERS:
                name = f"maskgit_{label.lower()}_s{seed}"
                stage2_cfg = load_config(
                    MaskGITExperiment,
                    [stage2_path],
                    [
                        *STAGE2_PRESETS[preset],
                        *stage2_over,
                        "data.tokenizer_config=null",
                        f"train.seed={seed}",
                        f"name={name}",
                    ],
                )
                entry = {"name": name, "label": label, "role": "stage2", "seed": seed, "run_dir": f"runs/{name}"}
                out.append(({**entry, "tokenizer": None}, stage2_cfg))
    return out


def _budget(runs: list[tuple[dict[str, Any], Any]], data: str) -> str:
    video = next(c for r, c in runs if r["role"] == "video")
    frames = next(c for r, c in runs if r["role"] == "frames")
    seeds = sorted({r["seed"] for r, _ in runs})
    return (
        f"Data: generated `{data}` clips ({video.data.image_size} px, {video.data.length} frames per clip; train.seed "
        f"draws them, so each seed has its own clips), evaluated on {video.data.eval_limit or 128} held-out "
        f"`{video.data.eval_split}` clips. Video tokenizers: {video.train.steps} steps x batch "
        f"{video.train.batch_size} clips each; per-frame image tokenizer: {frames.train.steps} steps x batch "
        f"{frames.train.batch_size} frames. "
        f"Seeds: {', '.join(map(str, seeds))}."
    )


def _stage2_text(runs: list[tuple[dict[str, Any], Any]]) -> str:
    cfg = next(c for e, c in runs if e["role"] == "stage2")
    m, t = cfg.model, cfg.train
    return f"{m.depth} layers of width {m.width}, {t.steps} steps x batch {t.batch_size}"


def evaluate_on_split(run_dir: Path, cfg: TokenizerExperiment, split: str) -> None:
    """Evaluate a video tokenizer run on ``split`` beside its own evaluation: writes ``eval/step_N_val.json``."""
    from fsq.evaluation.tokenizer import evaluate_tokenizer

    evaluate_tokenizer(run_dir, cfg=replace(cfg, data=replace(cfg.data, eval_split=split)), suffix=VAL_SUFFIX)


def _chosen_tokenizer(out_dir: Path, study: dict[str, Any], entry: dict[str, Any]) -> str:
    """The run dir (relative to the study) of the video tokenizer a Stage II run builds on: its quantizer's run of
    the same seed at the rate chosen on val."""
    rate = choose_rates(trials(out_dir, study)).get(entry["label"])
    match = [
        r
        for r in study["runs"]
        if r["role"] == "video" and r["label"] == entry["label"] and r["seed"] == entry["seed"] and r["lr"] == rate
    ]
    if rate is None or not match:
        raise RuntimeError(f"{entry['name']}: the {entry['label']} tokenizers' rate trials are not all evaluated yet")
    return match[0]["run_dir"]


def evaluate_frames_on_clips(
    run_dir: Path,
    frames_cfg: TokenizerExperiment,
    video_cfg: TokenizerExperiment,
    split: str | None = None,
    suffix: str = CLIPS_SUFFIX,
) -> None:
    """Evaluate the per-frame image tokenizer of ``run_dir`` on the clips of ``video_cfg`` (centred time crops, as
    the video tokenizer's evaluation) of ``split`` (None: its held-out split): writes ``eval/step_N<suffix>.json``
    (``_clips``; ``_clips_val`` for the tuning split)."""
    import torch

    from fsq.data.loader import iterate_batches
    from fsq.data.signals import to_unit
    from fsq.io import write_json_atomic
    from fsq.metrics.video import ClipScores
    from fsq.models.baselines import per_frame_reconstruct, tokenizer_bits_per_clip
    from fsq.quantizers.stats import CodebookUsage
    from fsq.stages.tokenizer import item_transform, load_run, open_split

    if frames_cfg.train.threads:
        torch.set_num_threads(frames_cfg.train.threads)
    model, step = load_run(run_dir)
    model.eval()
    split = split or video_cfg.data.eval_split
    held_out = open_split(video_cfg, split, video_cfg.data.eval_limit)
    transform = item_transform(video_cfg, held_out, train=False)
    frames = video_cfg.data.length or held_out.read(0).shape[1]
    scores, usage = ClipScores(frames), CodebookUsage(model.codebook_size)
    for _, clips, _, valid in iterate_batches(held_out, transform, range(len(held_out)), 32):
        x = to_unit(clips[valid])
        if len(x):
            reconstruction, indices = per_frame_reconstruct(model, x)
            scores.update(x, reconstruction)
            usage.update(indices)
    summary = usage.summary()
    result = {
        "step": step,
        "split": split,
        "source": video_cfg.data.source,
        "num_samples": scores.summary()["num_clips"],
        "bits_per_clip": tokenizer_bits_per_clip(model) * frames,
        **{k: v for k, v in scores.summary().items() if k != "num_clips"},
        "codebook_size": model.codebook_size,
        "codes_used": summary.codes_used,
        "tokens": summary.tokens,
        "levels": model.spec.quantizer.report().get("levels"),
        "token_grid": list(model.spec.grid_shape),
    }
    write_json_atomic(result, rundir.eval_path(run_dir, step, f"{suffix}.json"))


def run_video_study(
    out_dir: str | Path,
    *,
    data: str = DEFAULT_SOURCE,
    preset: str = "cpu",
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    stage2: bool = True,
    log=print,
    jobs: int = 1,
) -> Path:
    """Train (or reuse) every run, evaluate the per-frame tokenizer on the video clips, write ``report.md``;
    ``stage2=False`` leaves out the MaskGIT runs (Stage I only: the tokenizers and their baselines).

    ``jobs`` > 1 trains that many runs at once, in worker processes that each go down the plan taking the runs no
    other is working on (as separate calls into the same folder do): Stage I first, then the MaskGIT runs on the
    tokenizers chosen on val. The call's time is recorded when they are done."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    clock = Stopwatch()
    out_dir = Path(out_dir)
    seeds = list(DEFAULT_SEEDS[preset] if seeds is None and preset in DEFAULT_SEEDS else seeds or [0])
    runs = plan(data, preset, seeds, overrides, stage2)
    previous = read_study(out_dir).get("timing") if (out_dir / "study.json").is_file() else None
    study: dict[str, Any] = {
        "kind": "video",
        "title": "Video tokenizers: FSQ vs VQ vs LFQ at equal bits, against a naive codec and per-frame coding",
        "description": (
            "Causal 3-D tokenizers with the same encoder and decoder, only the quantizer changed (FSQ [8, 5, 5, 5], "
            "VQ 1024 codes, LFQ 2^10 codes: 9.97 / 10 / 10 bits per token); the naive codec (every frame "
            "area-downsampled to the token grid, uniformly quantized at the FSQ tokenizer's bits per clip, upsampled "
            "bilinearly) and an image tokenizer coding each frame on its own at (nearly) the same bits per clip, all "
            "on the same held-out clips. FVD is not computed (its I3D weights do not install offline)."
        ),
        "data": data,
        "preset": preset,
        "seeds": seeds,
        "overrides": list(overrides),
        "budget": _budget(runs, data),
        "runs": [entry for entry, _ in runs],
    }
    if previous:
        study["timing"] = previous
    write_study(out_dir, study)
    clips_cfg = {e["seed"]: c for e, c in runs if e["role"] == "video"}  # any video run of a seed: the same clips
    if any(e["role"] == "stage2" for e, _ in runs):
        study["stage2"] = (
            f"Stage II: per video tokenizer (at its chosen rate) a class-conditional MaskGIT ({_stage2_text(runs)}); "
            f"{JUDGED_SAMPLES[preset]} sampled clips per run (no guidance), every frame judged by the MNIST class "
            "judge beside as many real held-out clips."
        )
        write_study(out_dir, study)
    numbered = list(enumerate(runs, 1))
    phases = [
        [(i, entry, cfg) for i, (entry, cfg) in numbered if entry["role"] != "stage2"],
        [(i, entry, cfg) for i, (entry, cfg) in numbered if entry["role"] == "stage2"],
    ]
    options = {"total": len(runs), "clips": clips_cfg, "samples": JUDGED_SAMPLES[preset]}
    trained = 0
    for phase in phases:
        if any(entry["tokenizer"] is None for _, entry, _cfg in phase if entry["role"] == "stage2"):
            try:  # Stage II builds on the tokenizer chosen on val, known once Stage I is done
                for _, entry, _cfg in phase:
                    entry["tokenizer"] = _chosen_tokenizer(out_dir, study, entry)
            except RuntimeError:  # a tokenizer this call skipped: another call is still training it
                log("the MaskGIT runs wait for the tokenizers' trials (another call is training them): rerun when done")
                break
            write_study(out_dir, study)
        trained += train_phase(jobs, train_runs, out_dir, study, (phase, options), log, clock, trained)
    return write_report(out_dir)


def train_runs(
    out_dir: Path,
    study: dict[str, Any],
    phase: list[tuple[int, dict[str, Any], Any]],
    options: dict[str, Any],
    log=print,
    clock: Stopwatch | None = None,
    trained_before: int = 0,
) -> int:
    """Train and evaluate the runs of ``phase`` (``(number, entry, config)``; a Stage II entry with its tokenizer
    set) not finished and not being worked on by another process; returns how many it trained. ``options``: the
    plan's ``total``, each seed's video config (``clips``: the clips the per-frame tokenizer is scored on) and the
    ``samples`` a Stage II run is judged on. ``study.json`` is written after each run, with ``clock``'s record of
    this call (``trained_before`` runs earlier) when given. A module-level function, so that ``jobs`` > 1 can run
    it in worker processes."""
    from fsq import app  # training needs torch; the report does not

    trained = 0
    for index, entry, cfg in phase:
        run_dir = run_path(out_dir, entry)
        if entry["role"] == "stage2":
            cfg = replace(cfg, data=replace(cfg.data, tokenizer=str(out_dir / entry["tokenizer"])))
        tag = f"[{index}/{options['total']}] {entry['name']}"
        if not rundir.has_eval(run_dir, cfg.train.steps):
            log(f"{tag}: training ...")
            if not unless_busy(partial(app.train, cfg, run_dir), log):  # another call is training it
                continue
            trained += 1
        if not unless_busy(partial(_evaluate_run, run_dir, entry, cfg, options, tag, log), log):
            continue
        write_study(out_dir, study, clock, trained_before + trained)  # a cut-short call counts
    return trained


def _evaluate_run(run_dir: Path, entry: dict[str, Any], cfg: Any, options: dict[str, Any], tag: str, log=print) -> None:
    """The study's own evaluations of a trained run, those it lacks, holding the run dir: a video tokenizer on
    `val`; the per-frame tokenizer on the video clips (held-out and `val`); a MaskGIT's sampled clips judged."""
    step = cfg.train.steps
    with rundir.RunDirLock(run_dir, "evaluating it"):  # not while another process trains or evaluates it
        if entry["role"] == "video" and not rundir.eval_path(run_dir, step, f"{VAL_SUFFIX}.json").is_file():
            log(f"{tag}: evaluating on {TUNING_SPLIT} ...")
            evaluate_on_split(run_dir, cfg, TUNING_SPLIT)
        if entry["role"] == "frames":
            for split, suffix in ((None, CLIPS_SUFFIX), (TUNING_SPLIT, CLIPS_SUFFIX + VAL_SUFFIX)):
                if not rundir.eval_path(run_dir, step, f"{suffix}.json").is_file():
                    log(f"{tag}: evaluating frame by frame on the video clips ...")
                    evaluate_frames_on_clips(run_dir, cfg, options["clips"][entry["seed"]], split=split, suffix=suffix)
        judged = rundir.eval_path(run_dir, step, f"{JUDGED_SUFFIX}.json")
        if entry["role"] == "stage2" and not judged.is_file():
            log(f"{tag}: sampling and judging clips frame by frame ...")
            from fsq.evaluation.video_samples import evaluate_video_samples
            from fsq.io import write_json_atomic

            samples = evaluate_video_samples(run_dir, num_samples=options["samples"], seed=entry["seed"])
            write_json_atomic(samples, judged)


TABLE_NOTE = (
    "Means over seeds (± one sample standard deviation; none with one seed), on the held-out clips. PSNR and SSIM: "
    "per frame, averaged over frames and clips. Temporal L1: mean |(x[t+1] - x[t]) - (y[t+1] - y[t])| (lower is "
    "better); temporal PSNR: its PSNR form (peak 1). First frame: a causal tokenizer codes it on its own. Codes "
    "used: distinct codes in the held-out tokens, of the codes countable from them (the codebook size, or the "
    "number of tokens seen when smaller). Bits/clip: fixed-length codes (tokens x log2 codebook size; naive: "
    "positions x log2 of its levels)."
)


def write_report(study_dir: str | Path) -> Path:
    """Write results.json/csv, plots/frames.png and report.md from the run dirs; returns the report's path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    found = trials(study_dir, study)
    chosen = choose_rates(found)
    rows = collect(study_dir, study, chosen)
    if not rows:
        raise ValueError(f"{study_dir}: no run of the video study has been evaluated yet")
    tokenizers = [[run_path(study_dir, r)] for r in study["runs"] if r["role"] in ("video", "frames")]
    logged = logged_time_sentence(tokenizers, "tokenizer runs")
    if logged:  # the runs' own cost, whichever process trained them
        study = {**study, "budget": f"{study.get('budget', '')} {logged}"}
    write_results(study_dir, {**study, "trials": found} if found else study, rows)
    plots = plot_curves(rows, study_dir / "plots")
    naive = next((r for r in rows if r["method"] == "naive"), None)
    done = {r["name"] for r in rows}
    judged = {  # Stage II runs add numbers to their tokenizer's row: finished once their samples are judged
        run["name"]
        for run in study["runs"]
        if run["role"] == "stage2" and list((run_path(study_dir, run) / rundir.EVAL).glob(f"*{JUDGED_SUFFIX}.json"))
    }
    tried = {t["name"] for t in found if t["val_psnr"] is not None and t["psnr"] is not None}
    missing = [run["name"] for run in study["runs"] if run["name"] not in done | judged | tried]
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        study.get("budget", "") + (f" {study['stage2']}" if study.get("stage2") else ""),
        "",
        *([timing_line(study["timing"]), ""] if study.get("timing") else []),
        markdown_table(rows),
        "",
        TABLE_NOTE
        + (f" Naive codec: {naive['levels']} levels per position and channel." if naive and naive["levels"] else ""),
        "",
        *(
            [
                "## Learning-rate trials",
                "",
                f"Every method trained at each rate; the table above uses, per method, the rate with the best mean "
                f"PSNR on `{TUNING_SPLIT}` over seeds (Moving MNIST: clips of the 5,000 MNIST training digits kept "
                "out of training).",
                "",
                tuning_table(found, chosen),
                "",
            ]
            if found
            else []
        ),
        "## Claims, measured here",
        "",
        "Each line: the claim (one-sided: A better than B; two-sided: A matches B within a margin), the seed means "
        "(± sample std), the test (the difference against twice its standard error over seeds) and the verdict; a "
        "difference inside that band is not resolved, and a single seed is marked so.",
        "",
        *[f"- {line}" for line in claims(rows)],
        "",
        "## Plots",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    return finish_report(study_dir, lines, missing)


TASKS = ("tokenizers", "stage2")


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study video [--data moving_mnist|blobs] [--preset cpu|quick] [--seeds ...] [--tasks tokenizers
    [stage2]] [key=value ...]`` (``--data mnist``, the CLI's default, means ``moving_mnist``; ``--tasks
    tokenizers`` runs Stage I alone: at the MaskGIT config's size, 1280-token sequences in batches of 64, Stage II
    is a GPU job)."""
    data = options.get("data")
    preset = options.get("preset") or "cpu"
    tasks = list(options.get("tasks") or TASKS)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or "tokenizers" not in tasks:
        raise ValueError(
            f"the video study's --tasks are tokenizers (always) and stage2 (the MaskGIT runs), got {tasks}"
        )
    return run_video_study(
        out_dir,
        data=DEFAULT_SOURCE if data in (None, "mnist") else data,
        preset=preset,
        seeds=options.get("seeds"),
        overrides=overrides,
        stage2="stage2" in tasks,
        jobs=int(options.get("jobs") or 1),
    )
