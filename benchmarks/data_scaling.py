"""Does a training run's memory and start-up grow with the image folder? 20,000 PNGs against 2,000, 64 px.

The folder is streamed (listed once, each file decoded when its batch is drawn), so a run over ten times as many
files should hold the same peak memory (the list of paths is the only part that grows) and start as fast. The
script generates ``--large`` PNGs (``benchmarks/data.py``'s smooth colour blobs, 80 x 96 px, in 2 class
sub-folders) and a folder of the first ``--small`` of them (hard links), then runs the real command as a
subprocess, interleaved (small, large, small, large, ...) ``--repeats`` times:

``python -m fsq train tokenizer fsq_folder_256 data.source=FOLDER`` at 64 px with a small model (``model.preset=
cpu-tiny``, no perceptual or GAN loss, no compile, ``data.workers=0``: one process), batch 16, no evaluation,

once with ``train.steps=1`` and once with ``train.steps=3`` (metrics logged every step). Measured per run:

- peak memory: ``ru_maxrss`` of the training process (``os.wait4`` on its pid; Linux reports KiB);
- time to first step: from the launch to the first line of the run's ``metrics.jsonl`` (polled every 10 ms; it is
  written and flushed when step 1 ends), in the ``steps=3`` run;
- the wall time of the 1-step and the 3-step run.

Medians over the repeats go to ``benchmarks/results/data_scaling.json``; the README's table is rendered from it
(``fsq readme``), with the two ratios against the targets (memory within 10%, start-up within 1.5x).

Run: ``.venv/bin/python benchmarks/data_scaling.py`` (about 5 minutes on 2 cores, most of it writing the PNGs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from data import cpu_model, make_png_folder  # noqa: E402  (benchmarks/data.py)
from fsq.studies.bench_tables import markdown_table  # noqa: E402
from side_by_side import recorded_args  # noqa: E402  (benchmarks/side_by_side.py)

ROOT = Path(__file__).parents[1]
OVERRIDES = [
    "data.image_size=64",
    "data.train_split=all",
    "data.workers=0",
    "model.preset=cpu-tiny",
    "loss.perceptual_weight=0",
    "loss.adversarial_weight=0",
    "train.batch_size=16",
    "train.log_every=1",
    "train.checkpoint_every=1000",
    "train.compile=false",
    "train.eval_at_end=false",
    "train.progress=false",
]


def run_measured(folder: Path, steps: int, run_dir: Path, threads: int) -> dict[str, float]:
    """One ``fsq train tokenizer`` subprocess: its peak RSS (MiB), time to the first metrics line, wall time."""
    command = [sys.executable, "-m", "fsq", "train", "tokenizer", "fsq_folder_256", f"data.source={folder}"]
    command += [*OVERRIDES, f"train.steps={steps}", f"train.threads={threads}", "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
    metrics, first = run_dir / "metrics.jsonl", None
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        if first is None and metrics.is_file() and metrics.read_text().strip():
            first = time.perf_counter() - start
        time.sleep(0.01)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "first_step_s": first or wall, "wall_s": wall}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--large", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    p.add_argument("--note", default="machine shared with other users' work", help="recorded beside the load average")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "data_scaling.json"))
    return p.parse_args()


def main() -> None:
    args, load_start = parse_args(), os.getloadavg()
    samples: dict[int, list[dict[str, float]]] = {args.small: [], args.large: []}
    with tempfile.TemporaryDirectory(prefix="fsq_bench_scaling_") as tmp:
        large = make_png_folder(Path(tmp) / "large", args.large, 80, 96)
        small = Path(tmp) / "small"
        for path in sorted(large.rglob("*.png"))[: args.small]:
            (small / path.parent.name).mkdir(parents=True, exist_ok=True)
            os.link(path, small / path.parent.name / path.name)
        print(f"wrote {args.large} PNGs", file=sys.stderr, flush=True)
        for repeat in range(args.repeats):
            for count, folder in ((args.small, small), (args.large, large)):
                runs = Path(tmp) / f"runs{repeat}_{count}"
                one = run_measured(folder, 1, runs / "one", args.threads)
                three = run_measured(folder, 3, runs / "three", args.threads)
                samples[count].append({"one": one, "three": three})
                print(f"{count} files: {one} / {three}", file=sys.stderr, flush=True)
    results = []
    for count, runs in samples.items():

        def median(key: str, run: str, runs: list = runs) -> float:
            return statistics.median(r[run][key] for r in runs)

        results.append(
            {
                "images": count,
                "peak_rss_mib": max(median("peak_rss_mib", "one"), median("peak_rss_mib", "three")),
                "first_step_s": median("first_step_s", "three"),
                "run_1_step_s": median("wall_s", "one"),
                "run_3_steps_s": median("wall_s", "three"),
                "samples": runs,
            }
        )
    meta = {
        "kind": "data_scaling",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
        "loadavg_1_5_15min": {"start": load_start, "end": os.getloadavg()},
        "machine_note": args.note,
        "args": recorded_args(args),
        "command": "python -m fsq train tokenizer fsq_folder_256 data.source=FOLDER " + " ".join(OVERRIDES),
        "what": (
            f"Each: `fsq train tokenizer fsq_folder_256` at 64 px (cpu-tiny model, batch 16, 0 workers, no eval) as a "
            f"subprocess, medians of {args.repeats} interleaved repeats; peak RSS = ru_maxrss of the training process "
            "(larger of the 1- and 3-step runs); time to first step = launch to the first metrics line."
        ),
    }
    data = {"benchmark": meta, "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(markdown_table(data))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
