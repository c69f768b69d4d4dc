"""The codec study: the bitrate curve of 1-D (audio) tokenizers beside Codec2 and Opus on the same held-out clips;
plan, run and report.

``fsq study codec --out DIR [--runs RUN_DIR ...] [--levels 8,5,5,5 ...] [--seeds 0 1] [key=value ...]``:

- ``--runs``: tokenizer run dirs trained elsewhere (a codec of any preset, FSQ / residual FSQ / RVQ), evaluated
  here on their own held-out split (their ``eval/step_N.json`` is rewritten, as ``fsq eval`` does) unless their
  newest evaluation already has the audio metrics;
- otherwise (or as well) the study trains one tokenizer per level set of ``--levels`` (default ``8,5,5,5``) and
  seed of ``--seeds`` (default 0) from a base config (``study.config=...``, default the ``fsq_tones_1d`` config:
  generated tones, not speech) with the other overrides, under ``DIR/runs/``.

The anchors (``study.anchors=[...]``, default Codec2 700C, 1200, 2400, 3200, Opus 6 kbps and ``silence``, the trivial
baseline at 0 bits/s) run once per clip set (source, split, evaluated clips, crop length, sample rate): in the
evaluation of that set's first run, on exactly the clips the tokenizers are measured on. The clips are the runs'
``eval.length`` crops when they set it (longer than their training crop, through the model in chunks), and a run
evaluated with ``eval.depths`` (residual quantizers) has a row per depth too, scored on the same clips; a residual
run given by ``--runs`` is evaluated with ``eval.unquantized`` (a row for the decoded latent its stages approximate:
the ceiling of its depths, which tells a codec limited by its codebooks from one limited by its latent). The report
(:mod:`fsq.studies.codec_report`, torch-free) is a table sorted by bits per second and claims that each state their
test. Wall time, CPU time and load are recorded as in every study.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config import TokenizerExperiment, config_path, load_config, read_run_config
from fsq.io import read_json, write_text_atomic
from fsq.studies.codec_report import anchor_rows, claims, depth_rows, markdown_table, run_row, unquantized_rows
from fsq.studies.common import (
    Stopwatch,
    latest_eval,
    read_study,
    relative_to_study,
    run_path,
    timing_line,
    unless_busy,
    write_results,
    write_study,
)

__all__ = ["claims", "markdown_table", "run_codec_study", "write_report"]

STUDY_PREFIX = "study."
DEFAULT_CONFIG = "fsq_tones_1d"
DEFAULT_LEVELS = ["8,5,5,5"]
# the classical codecs, and silence (0 bits/s): the trivial baseline a metric must tell apart from a codec
DEFAULT_ANCHORS = ["codec2-700C", "codec2-1200", "codec2-2400", "codec2-3200", "opus-6k", "silence"]


def clip_set(cfg: TokenizerExperiment) -> str:
    """The clips a tokenizer is evaluated on, as one key: source, split, count limit, crop length (``eval.length``,
    else ``data.length``), sample rate."""
    d = cfg.data
    rate = f"{d.sample_rate:g} Hz" if d.sample_rate else "source rate"
    crop = cfg.eval.length or d.length
    length = f"{crop} samples" if crop else "whole clips"
    limit = f"first {d.eval_limit}" if d.eval_limit else "all"
    return f"{d.source}/{d.eval_split} ({limit}, {length}, {rate})"


def _study_options(overrides: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    own = {o[len(STUDY_PREFIX) :].split("=", 1)[0]: o.split("=", 1)[1] for o in overrides if o.startswith(STUDY_PREFIX)}
    unknown = sorted(set(own) - {"config", "anchors"})
    if unknown or any("=" not in o for o in overrides):
        raise ValueError(
            f"codec study: unknown study settings {unknown} (known: study.config, study.anchors) or an "
            f"override without '=' in {list(overrides)}"
        )
    return own, [o for o in overrides if not o.startswith(STUDY_PREFIX)]


def _anchor_list(text: str | None) -> list[str]:
    if text is None:
        return list(DEFAULT_ANCHORS)
    names = [n.strip() for n in text.strip().strip("[]").split(",") if n.strip()]
    from fsq.anchors.audio import anchor

    for name in names:
        anchor(name)  # an unknown name: a ValueError listing the known ones
    return names


def run_codec_study(
    out_dir: str | Path,
    *,
    runs: Sequence[str] = (),
    levels: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    overrides: Sequence[str] = (),
    log=print,
) -> Path:
    """Evaluate the given tokenizer ``runs`` and train (or reuse) one per level set and seed, run the anchors on
    each clip set, and write the report; returns its path."""
    from fsq import app  # training and evaluation need torch; the report does not

    clock = Stopwatch()
    out_dir = Path(out_dir)
    own, rest = _study_options(overrides)
    anchors = _anchor_list(own.get("anchors"))
    base = config_path(own.get("config", DEFAULT_CONFIG), TokenizerExperiment.stage)
    plan: list[tuple[dict[str, Any], list[str] | None]] = []  # (entry, the overrides that train it, or None)
    for given in runs:
        cfg = read_run_config(given)
        if not isinstance(cfg, TokenizerExperiment) or cfg.model.dims != 1:
            raise ValueError(f"{given}: the codec study takes 1-D (audio) tokenizer runs, this one is not")
        name = Path(given).resolve().name
        entry = {"name": name, "label": name, "seed": cfg.train.seed, "run_dir": relative_to_study(given, out_dir)}
        if cfg.quantizer.setting("num_stages") is not None:  # residual: its unquantized latent is scored too
            entry["residual"] = True
        plan.append(({**entry, "given": True, "clips": clip_set(cfg)}, None))
    if not runs or levels:
        for level_text in levels or DEFAULT_LEVELS:
            level_list = [int(v) for v in str(level_text).split(",")]
            for seed in seeds:
                label = f"FSQ {'x'.join(map(str, level_list))}"
                name = f"fsq_{'-'.join(map(str, level_list))}_s{seed}"
                own_overrides = [
                    *rest,
                    "quantizer.kind=fsq",
                    f"quantizer.levels={level_list}",
                    f"train.seed={seed}",
                    f"name={name}",
                ]
                cfg = load_config(TokenizerExperiment, [base], own_overrides)  # a bad override fails before training
                entry = {"name": name, "label": label, "seed": seed, "run_dir": f"runs/{name}", "clips": clip_set(cfg)}
                plan.append(({**entry, "given": False}, own_overrides))
    if not plan:
        raise ValueError("codec study: nothing to measure (give --runs or --levels)")
    study_path = out_dir / "study.json"
    previous = read_json(study_path, "the study's plan") if study_path.is_file() else {}
    study: dict[str, Any] = {
        "kind": "codec",
        "title": "Audio tokenizers as codecs: the bitrate curve beside Codec2 and Opus",
        "description": (
            "Each tokenizer's held-out clips measured by SI-SNR, multi-scale mel distance, multi-resolution STFT "
            "distance, and wideband PESQ / STOI where they can run; its bitrate is the token rate times log2 of the "
            "codebook size per index. The anchors (Codec2 and Opus through their command-line tools, time-aligned) "
            "run on exactly the same clips; their bits/s are measured from what they encoded."
        ),
        "anchors": anchors,
        "overrides": list(overrides),
        "runs": [entry for entry, _ in plan],
    }
    if previous.get("timing"):
        study["timing"] = previous["timing"]
    write_study(out_dir, study)
    anchored: set[str] = set()
    trained = 0
    for index, (entry, train_overrides) in enumerate(plan, 1):
        run_dir = run_path(out_dir, entry)
        wants_anchors = entry["clips"] not in anchored
        anchored.add(str(entry["clips"]))
        extra = [f"eval.audio_anchors=[{','.join(anchors)}]"] if wants_anchors else []
        extra += ["eval.unquantized=true"] if entry.get("residual") else []
        result = latest_eval(run_dir) if run_dir.is_dir() else None
        done = (
            result is not None
            and "bits_per_second" in result
            and (not wants_anchors or _has_anchors(result, anchors))
            and (not entry.get("residual") or bool(result.get("unquantized")))
        )
        cfg = load_config(TokenizerExperiment, [base], [*train_overrides, *extra]) if train_overrides else None
        if cfg is not None and not rundir.has_eval(run_dir, cfg.train.steps):
            log(f"[{index}/{len(plan)}] {entry['name']}: training ...")
            if unless_busy(partial(app.train, cfg, run_dir), log):  # else another call is training it
                trained += 1
                write_study(out_dir, study, clock, trained)  # a cut-short call counts
        elif not done:
            log(f"[{index}/{len(plan)}] {entry['name']}: evaluating ...")
            unless_busy(partial(app.evaluate, run_dir, extra), log)
        else:
            log(f"[{index}/{len(plan)}] {entry['name']}: evaluated earlier, reused")
    return write_report(out_dir)


def _has_anchors(result: dict[str, Any], anchors: Sequence[str]) -> bool:
    return set(anchors) <= set(result.get("anchors") or {})


def collect(study_dir: str | Path) -> list[dict[str, Any]]:
    """The study's rows: one per evaluated tokenizer run, and the anchors of each clip set (torch-free)."""
    study = read_study(study_dir)
    wanted = set(study.get("anchors") or [])
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()  # (clip set, anchor): each anchor once per clip set
    for run in study["runs"]:
        result = latest_eval(run_path(study_dir, run))
        if result is None or "bits_per_second" not in result:
            continue
        rows.append(run_row(run, result))
        rows.extend(depth_rows(run, result))
        rows.extend(unquantized_rows(run, result))
        for row in anchor_rows(run, result):
            if row["name"] in wanted and (row["clips"], row["name"]) not in seen:
                seen.add((row["clips"], row["name"]))
                rows.append(row)
    return rows


def write_report(study_dir: str | Path) -> Path:
    """Write results.json, results.csv and report.md for a codec study folder; returns the report's path."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    rows = collect(study_dir)
    if not rows:
        raise ValueError(f"{study_dir}: no tokenizer run has an audio evaluation yet")
    write_results(study_dir, study, rows)
    measured = {r["name"] for r in rows if r["kind"] == "tokenizer"}
    missing = [run["name"] for run in study["runs"] if run["name"] not in measured]
    skipped = sorted({f"{k}: {v}" for run in study["runs"] for k, v in _skipped(study_dir, run).items()})
    lines = [
        f"# {study['title']}",
        "",
        study.get("description", ""),
        "",
        *([timing_line(study["timing"]), ""] if study.get("timing") else []),
        markdown_table(rows),
        "",
        "Bits/s of a tokenizer: fixed-length codes (no entropy coding). Of an anchor: its codec frames or packets "
        "over the duration they code; in brackets its whole encoded file over the clip (Opus: the Ogg container; "
        "both: the silence padded after the clip to cover the codec's delay, which dominates on short clips). Mel "
        "distance: DAC's multi-scale "
        "log-mel L1; STFT distance: spectral convergence + log magnitude (Parallel WaveGAN). Codec2 is narrowband "
        "(8 kHz): every metric at 16 kHz counts the band it drops.",
        "",
        *(
            [
                "`silence` is the trivial baseline (every clip decoded as silence, 0 bits/s): a metric on which it "
                "comes near a codec says little about that codec. SI-SNR gives it 0 dB (a silent estimate has no "
                "projection and no residual), above Codec2's: SI-SNR judges waveform coherence, not quality.",
                "",
            ]
            if any(r["name"] == "silence" for r in rows)
            else []
        ),
        *(
            [
                "A row `..., unquantized` decodes the latent a residual quantizer's stages approximate (residual FSQ: "
                "its first stage's continuous code; RVQ: the encoder's output), as if the model had infinitely many "
                "stages: it spends no bits and is the ceiling of that model's depths. A depth level with it gains "
                "nothing from more stages; only a wider latent (more channels) or a better encoder and decoder can.",
                "",
            ]
            if any(r["kind"] == "ceiling" for r in rows)
            else []
        ),
        "## Claims, measured",
        "",
        *[f"- {line}" for line in claims(rows)],
        "",
        *(["## Not measured", "", *[f"- {s}" for s in skipped], ""] if skipped else []),
        *([f"Runs not evaluated yet: {', '.join(missing)}", ""] if missing else []),
    ]
    path = study_dir / "report.md"
    write_text_atomic("\n".join(lines) + "\n", path)
    return path


def _skipped(study_dir: Path, run: dict[str, Any]) -> dict[str, str]:
    result = latest_eval(run_path(study_dir, run)) if run_path(study_dir, run).is_dir() else None
    return dict((result or {}).get("audio_metrics_skipped") or {})


def run(kind: str, out_dir: str | Path, *, overrides: list[str], options: dict[str, Any]) -> Path:
    """``fsq study codec --out DIR [--runs ...] [--levels ...] [--seeds ...] [key=value ...]``."""
    return run_codec_study(
        out_dir,
        runs=options.get("runs") or (),
        levels=options.get("levels"),
        seeds=options.get("seeds") or [0],
        overrides=overrides,
    )
