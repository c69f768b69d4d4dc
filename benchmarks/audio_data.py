"""Audio loader speed (decode + resample, x real time per worker) and peak memory from 100 to 10,000 clips.

The script writes ``--clips`` audio files at 22,050 Hz (espeak-ng's rate: every clip is resampled to 16 kHz, as a
user's folder of speech would be) in a temporary folder: harmonic "vowels" with a moving pitch, noise bursts and
pauses, ``--seconds`` long, mono, once as 16-bit ``.wav`` and once as ``.flac``. Then, interleaved round-robin
over ``--repeats`` (A, B, C, A, B, C, ...: machine noise hits every cell alike):

- **loader**: :class:`fsq.data.loader.StepLoader` over ``audio:DIR``
  (:class:`fsq.data.signal_files.SignalFolderItems` with ``rate=16000, resample=True``: soundfile decoding, soxr
  resampling) with the training transform (a random crop of ``--crop`` samples), ``workers`` = 0, 1, 2;
  ``--batches`` batches of ``--batch`` after the first (which pays the workers' start-up; the DataLoader's
  prefetch, 2 batches per worker, is a small part of 40 timed batches). Real-time factor = the seconds of audio
  decoded and resampled (whole clips: the crop comes after) per second of wall time; per worker = that divided by
  the number of decoding processes (0 workers: the main process, 1).
- **memory** (unless ``--no-memory``): the real command, as a subprocess, over folders of ``--memory-clips``
  clips (the large folder's files; the smaller folders are hard links to its first files):
  ``python -m fsq train tokenizer fsq_tones_1d data.source=audio:DIR data.sample_rate=16000 data.resample=true
  data.length=4096 ...`` (smoke-sized model, batch 16, 3 steps, no evaluation, ``data.workers=0``); peak memory is
  ``ru_maxrss`` of that process (``os.wait4``), median over the repeats.

Files are in the page cache (just written): this measures decoding and resampling, not the disk. On a machine
shared with other work the timings are lower bounds of what the code does alone; the JSON records the load average.

Run: ``.venv/bin/python benchmarks/audio_data.py`` (a few minutes on 2 cores, most of it writing 10,000 clips);
``--quick`` for a smoke run. Writes ``benchmarks/results/audio_data.json`` and prints a table.
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

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).parent))
from data import cpu_model  # noqa: E402  (benchmarks/data.py)
from fsq.data.loader import StepLoader  # noqa: E402
from fsq.data.signal_files import SignalFolderItems  # noqa: E402
from fsq.data.signals import AUDIO, SignalTransform  # noqa: E402
from fsq.studies.bench_tables import audio_data_table  # noqa: E402
from side_by_side import recorded_args  # noqa: E402  (benchmarks/side_by_side.py)

ROOT = Path(__file__).parents[1]
FILE_RATE, RATE = 22050, 16000
TRAIN = [
    "data.sample_rate=16000",
    "data.resample=true",
    "data.length=4096",
    "data.train_split=all",
    "data.workers=0",
    "model.filters=8",
    "model.num_groups=4",
    "train.batch_size=16",
    "train.steps=3",
    "train.log_every=1",
    "train.checkpoint_every=1000",
    "train.compile=false",
    "train.eval_at_end=false",
    "train.progress=false",
]


def speech_like(rng: np.random.Generator, seconds: float, rate: int = FILE_RATE) -> np.ndarray:
    """Float32 mono in [-1, 1]: voiced segments (harmonics of a gliding pitch), noise bursts, pauses."""
    out, t = [], 0
    while t < seconds * rate:
        n = int(rng.uniform(0.05, 0.3) * rate)
        kind = rng.choice(3, p=[0.6, 0.25, 0.15])
        if kind == 0:  # voiced
            f0 = np.linspace(rng.uniform(90, 250), rng.uniform(90, 250), n)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            seg = sum(rng.uniform(0.1, 1) / h * np.sin(h * phase) for h in range(1, 8))
        elif kind == 1:  # fricative
            seg = rng.normal(0, 0.3, n)
        else:
            seg = np.zeros(n)
        out.append(seg * np.hanning(n))
        t += n
    audio = np.concatenate(out)[: int(seconds * rate)]
    return (0.5 * audio / max(float(np.abs(audio).max()), 1e-6)).astype(np.float32)


def write_clips(folder: Path, count: int, seconds: float, suffix: str, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        soundfile.write(folder / f"{i:06d}{suffix}", speech_like(rng, seconds), FILE_RATE)
    return folder


def loader_rate(folder: Path, batch: int, workers: int, batches: int, crop: int) -> dict[str, float]:
    """Audio seconds decoded + resampled per wall second over ``batches`` batches after the first."""
    items = SignalFolderItems(folder, "all", AUDIO, rate=RATE, min_length=crop, resample=True)
    transform = SignalTransform("random", AUDIO, length=crop)
    loader = StepLoader(items, transform, global_batch=batch, seed=0, stop=batches + 1, workers=workers)
    start = time.perf_counter()
    loader.batch(0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(1, batches + 1):
        clips, _ = loader.batch(step)
        assert clips.shape == (batch, 1, crop)
    elapsed = time.perf_counter() - start
    loader.close()
    seconds = batches * batch * float(soundfile.info(next(iter(sorted(folder.iterdir())))).duration)
    realtime = seconds / elapsed
    return {"realtime": realtime, "realtime_per_worker": realtime / max(1, workers), "first_batch_s": first}


def run_memory(folder: Path, run_dir: Path, threads: int) -> float:
    """Peak RSS (MiB) of a short ``fsq train tokenizer`` run over ``folder``."""
    command = [sys.executable, "-m", "fsq", "train", "tokenizer", "fsq_tones_1d", f"data.source=audio:{folder}"]
    command += [*TRAIN, f"train.threads={threads}", "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
    log = run_dir.parent / f"{run_dir.name}.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {log.read_text()[-2000:]}")
    return usage.ru_maxrss / 1024


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=200, help="clips per format for the loader cells")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each generated clip")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=40, help="timed batches per cell (workers prefetch 2 each)")
    p.add_argument("--crop", type=int, default=16000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-clips", type=int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--no-memory", action="store_true", help="loader cells only")
    p.add_argument("--threads", type=int, default=1, help="torch threads (this process and the training runs)")
    p.add_argument("--note", default="machine shared with other users' work", help="recorded beside the load average")
    p.add_argument("--quick", action="store_true", help="smoke run: 24 clips, 1 repeat, 2 batches of 4, no memory")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "audio_data.json"))
    args = p.parse_args()
    if args.quick:
        args.clips, args.repeats, args.batch, args.batches, args.no_memory = 24, 1, 4, 2, True
    return args


def main() -> None:
    args, load_start = parse_args(), os.getloadavg()
    torch.set_num_threads(args.threads)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fsq_bench_audio_") as tmp:
        folders = {s: write_clips(Path(tmp) / s[1:], args.clips, args.seconds, s) for s in (".wav", ".flac")}
        samples: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(args.repeats):
            for suffix, folder in folders.items():
                for workers in args.workers:
                    cell = loader_rate(folder, args.batch, workers, args.batches, args.crop)
                    samples.setdefault((suffix, workers), []).append(cell)
        for (suffix, workers), cells in samples.items():
            median = {k: statistics.median(c[k] for c in cells) for k in cells[0]}
            results.append({"what": "loader", "format": suffix, "workers": workers, **median, "samples": cells})
        print("loader cells done", file=sys.stderr, flush=True)
        if not args.no_memory:
            sizes = sorted(args.memory_clips)
            large = write_clips(Path(tmp) / "memory" / str(sizes[-1]), sizes[-1], 1.0, ".flac", seed=1)
            paths = sorted(large.iterdir())
            memory_folders = {sizes[-1]: large}
            for size in sizes[:-1]:
                memory_folders[size] = Path(tmp) / "memory" / str(size)
                memory_folders[size].mkdir()
                for path in paths[:size]:
                    os.link(path, memory_folders[size] / path.name)
            print(f"wrote {sizes[-1]} clips for the memory runs", file=sys.stderr, flush=True)
            peaks: dict[int, list[float]] = {size: [] for size in sizes}
            for repeat in range(args.repeats):
                for size in sizes:
                    peaks[size].append(
                        run_memory(memory_folders[size], Path(tmp) / f"run{repeat}_{size}", args.threads)
                    )
                    print(f"{size} clips: {peaks[size][-1]:.0f} MiB", file=sys.stderr, flush=True)
            for size in sizes:
                results.append(
                    {
                        "what": "memory",
                        "clips": size,
                        "peak_rss_mib": statistics.median(peaks[size]),
                        "samples": peaks[size],
                    }
                )
    meta = {
        "kind": "audio_data",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "soundfile": soundfile.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
        "loadavg_1_5_15min": {"start": load_start, "end": os.getloadavg()},
        "machine_note": args.note,
        "repeats": args.repeats,
        "batch": args.batch,
        "clip_seconds": args.seconds,
        "file_rate": FILE_RATE,
        "rate": RATE,
        "args": recorded_args(args),
        "command": "python -m fsq train tokenizer fsq_tones_1d data.source=audio:DIR " + " ".join(TRAIN),
    }
    data = {"benchmark": meta, "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(audio_data_table(data))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
