"""Video files through the training loader: peak memory by number of videos, decode rate beside the model's step.

The script writes ``--counts`` folders (default 5 and 50) of generated MPEG-4 videos (``--frames`` frames of
``--height x --width`` at 10 fps, a keyframe every ``--gop`` frames; smooth moving colour fields, so that the
encoder's work is like real footage's) with :func:`fsq.data.video_files.write_video`, then, for each folder and
each worker count, runs the training loader in a fresh process (:class:`fsq.data.loader.StepLoader` over
``video:DIR`` with the random crop of ``--length`` frames at ``--size`` px: every clip decoded from the keyframe
before its window) for ``--batches`` batches of ``--batch`` and reports:

- clips/s after the first batch (which pays the workers' start-up, reported apart);
- peak resident memory (``ru_maxrss``) of the loading process and of its worker processes (the largest child),
  so memory flat in the number of videos shows as equal rows for 5 and 50.

Beside it, the step rate of the real-video tokenizer (``--config``, default ``configs/tokenizer/fsq_videos.yaml``:
forward, L2 + aux loss, backward, Adam, same batch and clip shape), as clips/s the model consumes. The two halves run
one after the other: in training, workers and the model share the cores.

Run: ``.venv/bin/python benchmarks/video_data.py`` (a few minutes on 2 cores; ``--quick`` for a smoke run). Writes
``benchmarks/results/video_data.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fsq.studies.bench_tables import video_data_table
from side_by_side import recorded_args  # benchmarks/side_by_side.py

ROOT = Path(__file__).parents[1]


def make_videos(folder: Path, count: int, frames: int, height: int, width: int, gop: int, seed: int = 0) -> Path:
    """``count`` MPEG-4 files of smooth colour fields drifting at random speeds, one keyframe every ``gop``."""
    from fsq.data.video_files import write_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        freq = rng.uniform(0.02, 0.08, size=(3, 2))
        speed = rng.uniform(-2, 2, size=(3, 2))
        clip = np.empty((3, frames, height, width), dtype=np.uint8)
        for t in range(frames):
            for c in range(3):
                phase = freq[c, 0] * (yy + speed[c, 0] * t) + freq[c, 1] * (xx + speed[c, 1] * t)
                field = 128 + 100 * np.sin(phase) + rng.normal(0, 3, size=(height, width))
                clip[c, t] = np.clip(field, 0, 255).astype(np.uint8)
        write_video(folder / f"{i:04d}.mp4", clip, 10.0, gop=gop)
    return folder


def loader_cell(folder: str, size: int, length: int, batch: int, batches: int, workers: int) -> dict:
    """One loader run in this process (called through ``--cell`` in a fresh process): rates and peak memory."""
    from fsq.data.loader import StepLoader
    from fsq.data.signal_files import SignalFolderItems
    from fsq.data.signals import VIDEO, SignalTransform

    items = SignalFolderItems(folder, "all", VIDEO, min_length=length)
    transform = SignalTransform("random", VIDEO, length=length, size=size)
    loader = StepLoader(items, transform, global_batch=batch, seed=0, stop=batches + 1, workers=workers)
    start = time.perf_counter()
    loader.batch(0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(1, batches + 1):
        loader.batch(step)
    elapsed = time.perf_counter() - start
    loader.close()
    del loader
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest waited-for worker
    return {
        "clips_per_s": batches * batch / elapsed,
        "first_batch_s": first,
        "peak_rss_mib": own,
        "worker_peak_rss_mib": children if workers else None,
        "skipped": len(items.skipped),
    }


def model_rate(config: str, batch: int, repeats: int) -> dict:
    """Seconds per training step of the tokenizer in ``config`` at ``batch`` (median of ``repeats``, after one)."""
    import torch
    import torch.nn.functional as F

    from fsq.config import TokenizerExperiment, load_config
    from fsq.models.autoencoder import Tokenizer
    from fsq.stages.tokenizer import tokenizer_spec

    cfg = load_config(TokenizerExperiment, [config], [f"train.batch_size={batch}"])
    spec = tokenizer_spec(cfg, in_channels=3)
    model = Tokenizer(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, *spec.input_shape)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        reconstruction, out = model(x)
        loss = F.mse_loss(reconstruction, x) + out.aux_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times[1:])
    return {"step_s": step_s, "steps_per_s": 1 / step_s, "clips_per_s": batch / step_s, "shape": spec.input_shape}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=[5, 50], help="videos per folder")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--gop", type=int, default=12, help="frames between keyframes of the generated videos")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--length", type=int, default=9)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--repeats", type=int, default=2, help="model steps timed (after a warm-up)")
    p.add_argument("--config", default=str(ROOT / "configs" / "tokenizer" / "fsq_videos.yaml"))
    p.add_argument("--note", default="2-core machine shared with other jobs", help="recorded beside the load")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 and 4 short videos, 2 workers, 2 batches of 2")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "video_data.json"))
    p.add_argument("--cell", default=None, help=argparse.SUPPRESS)  # internal: one loader run, JSON to stdout
    args = p.parse_args(argv)
    if args.quick:
        args.counts, args.workers, args.frames, args.height, args.width = [2, 4], [2], 24, 48, 64
        args.batch, args.batches, args.repeats, args.size, args.length = 2, 2, 1, 16, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cell is not None:
        folder, workers = args.cell.rsplit(":", 1)
        cell = loader_cell(folder, args.size, args.length, args.batch, args.batches, int(workers))
        print(json.dumps(cell))
        return 0
    load_start = os.getloadavg()
    rows: list[dict] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="fsq_bench_video_") as tmp:
        for count in args.counts:
            start = time.perf_counter()
            folder = make_videos(Path(tmp) / f"v{count}", count, args.frames, args.height, args.width, args.gop)
            made = time.perf_counter() - start
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            for workers in args.workers:
                command = [sys.executable, __file__, "--cell", f"{folder}:{workers}"]
                command += [f"--{k}={getattr(args, k)}" for k in ("size", "length", "batch", "batches")]
                run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
                if run.returncode != 0:
                    print(run.stderr[-2000:], file=sys.stderr)
                    return 1
                cell = json.loads(run.stdout.strip().splitlines()[-1])
                rows.append({"videos": count, "workers": workers, "folder_mb": size_mb, "write_s": made, **cell})
    model = model_rate(args.config, args.batch, args.repeats)
    result = {
        "benchmark": {
            "kind": "video_data",
            "date": datetime.date.today().isoformat(),
            "cpu_count": os.cpu_count(),
            "loadavg_1_5_15min": {"start": load_start, "end": os.getloadavg()},
            "machine_note": args.note,
            "args": recorded_args(args, leave_out=("cell",)),
            "what": (
                f"generated MPEG-4 videos ({args.frames} frames of {args.height}x{args.width} at 10 fps, a keyframe "
                f"every {args.gop}); StepLoader over video:DIR, random {args.length}-frame crops at {args.size} px "
                "(each decoded from the keyframe before it), a fresh process per cell; peak RSS is ru_maxrss of the "
                "loading process and of its largest worker"
            ),
        },
        "loader": rows,
        "model": model,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(video_data_table(result))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
