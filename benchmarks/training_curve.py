"""A tokenizer's training curve, published: the logged metrics of its runs as a results JSON and a plot.

Runs given in order are phases trained one after the other (a fine-tune started from the previous run with
``train.init_from``); each is cut at its newest checkpoint. Reads ``RUN/metrics.jsonl`` (the rows ``fsq train`` logs
every ``train.log_every`` steps: loss, training-crop PSNR, learning rate, seconds per step), ``RUN/meta.json`` (the
commands that started or resumed it) and the run's newest evaluation, and writes ``--json`` (the rows, the wall time
summed from the logged step times, the threads, the commands, the machine's load average sampled during the run when
``--load`` names a file of ``uptime`` lines, and the evaluation's held-out numbers; steps redone after a resume
count once) and ``--png`` (loss and seconds per step against steps). ``--after CURVE.json`` puts the phases of a curve
written earlier first (a fine-tune of a published bundle whose earlier run dirs are gone).

Run: ``.venv/bin/python benchmarks/training_curve.py RUN [RUN ...] --json docs/results/speech_fsq_curve.json --png
docs/speech_fsq_curve.png [--load RUN.load]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
from pathlib import Path
from typing import Any

from fsq import checkpoint as ckpt
from fsq import rundir
from fsq.config import read_run_config

EVAL_KEYS = ("step", "num_samples", "bits_per_second", "si_snr_db", "mel_distance", "stft_distance", "pesq_wb", "stoi")


def load_samples(path: Path) -> list[float]:
    """The 1-minute load averages of a file of ``uptime`` lines (``load average: 1.0, 2.0, 3.0``)."""
    values = []
    for line in path.read_text().splitlines():
        match = re.search(r"load average:\s*([\d.]+)", line)
        if match:
            values.append(float(match.group(1)))
    return values


def phase(run: Path) -> dict[str, Any]:
    """One run's rows (one per step, up to its newest checkpoint: what a later phase or the bundle started from)
    and its settings, commands and newest evaluation."""
    cfg = read_run_config(run)
    folder = ckpt.latest_checkpoint(run)
    last = rundir.step_of(folder.name) if folder is not None else None
    # one row per step: after a resume the run redoes the steps since its checkpoint (their second logging kept)
    rows = sorted(
        {r["step"]: r for r in rundir.read_metrics(run) if "loss" in r and "step" in r}.values(),
        key=lambda r: r["step"],
    )
    rows = [r for r in rows if last is None or r["step"] <= last]
    if not rows:
        raise SystemExit(f"{run}: no logged training rows in {rundir.METRICS}")
    wall, previous = 0.0, 0
    for r in rows:  # each row's sec_per_step covers the steps since the previous row
        wall += r.get("sec_per_step", 0.0) * (r["step"] - previous)
        previous = r["step"]
        r["wall_s"] = wall
    meta = json.loads((run / rundir.META).read_text()) if (run / rundir.META).is_file() else {"runs": []}
    result = rundir.latest_eval(run)
    return {
        "run": run.name,
        "config": cfg.name,
        "steps": rows[-1]["step"],
        "threads": cfg.train.threads,
        "batch_size": cfg.train.batch_size,
        "crop_samples": cfg.data.length,
        "init_from": cfg.train.init_from,
        "loss": {
            k: v for k, v in dataclasses.asdict(cfg.loss).items() if k.endswith("_weight") and k != "r1_weight" and v
        },
        "lr": cfg.optim.lr,
        "wall_s_from_step_times": wall,
        "sec_per_step_median": statistics.median(r["sec_per_step"] for r in rows if "sec_per_step" in r),
        "commands": [" ".join(start.get("command", [])[1:]) for start in meta["runs"]],
        "started": [start.get("started") for start in meta["runs"]],
        "held_out": {k: result.get(k) for k in EVAL_KEYS} | {"depths": result.get("depths")} if result else None,
        "rows": rows,
    }


def _load_summary(loads: list[float]) -> dict[str, Any] | None:
    if not loads:
        return None
    return {"samples": len(loads), "mean": statistics.fmean(loads), "min": min(loads), "max": max(loads)}


def _joined_load(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two load summaries as one (the mean weighted by their samples)."""
    if a is None or b is None:
        return a or b
    n = a["samples"] + b["samples"]
    mean = (a["mean"] * a["samples"] + b["mean"] * b["samples"]) / n
    return {"samples": n, "mean": mean, "min": min(a["min"], b["min"]), "max": max(a["max"], b["max"])}


def curve(runs: list[Path], load: Path | None = None, after: dict[str, Any] | None = None) -> dict[str, Any]:
    """The phases (runs trained one after the other, each started from the previous one) and their totals;
    ``after``: a curve published earlier (its run dirs may be gone), whose phases come first."""
    earlier = list(after["phases"]) if after else []
    new = [phase(run) for run in runs]
    loads = _load_summary(load_samples(load) if load is not None and load.is_file() else [])
    for p in new:
        p["load_average_1min"] = loads
    phases = earlier + new
    return {
        "steps": sum(p["steps"] for p in phases),
        "wall_s_from_step_times": sum(p["wall_s_from_step_times"] for p in phases),
        "threads": sorted({t for p in phases for t in ([p["threads"]] if isinstance(p["threads"], int) else [])}),
        "load_average_1min": _joined_load(after.get("load_average_1min") if after else None, loads),
        "phases": phases,
    }


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    offset = 0
    for i, p in enumerate(data["phases"]):
        steps = [offset + r["step"] for r in p["rows"]]
        terms = ", ".join(f"{k.removesuffix('_weight')} {v:g}" for k, v in p["loss"].items())
        left.plot(
            steps,
            [400 * r["rec_loss"] if "rec_loss" in r else r["loss"] for r in p["rows"]],
            lw=1,
            label=f"{p['run']}: waveform MSE x 400 ({terms})",
        )
        if any("mel_loss" in r for r in p["rows"]):
            left.plot(steps, [r.get("mel_loss") for r in p["rows"]], lw=1, ls="--", label=f"{p['run']}: mel loss")
        right.plot(steps, [r["sec_per_step"] for r in p["rows"]], lw=1, label=p["run"])
        if i:
            for axis in (left, right):
                axis.axvline(offset, color="grey", lw=0.5)
        offset = steps[-1]
    left.set(
        xlabel="step (phases one after the other)", ylabel="training loss", yscale="log", title="loss on training crops"
    )
    left.legend(fontsize=7)
    right.set(
        xlabel="step",
        ylabel="s / step",
        title=f"{data['threads']} thread(s), {data['wall_s_from_step_times'] / 60:.0f} min of step time",
    )
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run dirs, in the order they trained")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--load", type=Path)
    parser.add_argument("--after", type=Path, help="a curve JSON written earlier: its phases come first")
    args = parser.parse_args()
    after = json.loads(args.after.read_text()) if args.after else None
    data = curve(args.runs, args.load, after)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    plot(data, args.png)
    print(
        f"{data['steps']} steps, {data['wall_s_from_step_times'] / 60:.1f} min of logged step time; "
        f"wrote {args.json}, {args.png}"
    )


if __name__ == "__main__":
    main()
