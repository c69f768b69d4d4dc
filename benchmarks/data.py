"""Loader images/s by number of workers and resolution, beside the tokenizer's training step rate, one machine.

For each resolution (64, 128, 256 px) the script writes ``--images`` generated PNGs (smooth colour blobs with mild
noise, 1.25 x 1.5 times the resolution, so every image is decoded, resized on its shorter side and randomly
cropped as in training) into a folder and the same files into one WebDataset shard, then, interleaved round-robin
over ``--repeats`` (A, B, C, A, B, C, ...: machine noise hits every cell alike):

- loader: :class:`fsq.data.loader.StepLoader` over the folder / the shard with the training transform (shorter
  side to the resolution, random crop, flip), ``workers`` = 0, 1, 2 DataLoader processes; images/s over
  ``--batches`` batches of ``--batch`` after the first (which pays the workers' start-up, reported apart);
- model: one training step of the tokenizer (``--preset``, same resolution and batch: forward, L2 + aux loss,
  backward, Adam), images/s = batch / seconds per step (a warm-up step first).

Files are in the page cache (just written): this measures decoding and cropping, not the disk. The two halves run
one after the other, not together: in training, workers and the model share the same cores. ``--device cuda``
times the model on a GPU (bf16 autocast) while the loader stays on the CPU.

Run: ``.venv/bin/python benchmarks/data.py`` (a few minutes on 2 cores; ``--quick`` for a smoke run). Writes
``benchmarks/results/data.json``; the README's table is rendered from it (``fsq readme``).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fsq.config import TokenizerExperiment, load_config
from fsq.data.datasets import open_items
from fsq.data.loader import StepLoader
from fsq.data.transforms import ItemTransform
from fsq.models.autoencoder import Tokenizer
from fsq.stages.tokenizer import tokenizer_spec
from fsq.studies.bench_tables import markdown_table
from side_by_side import recorded_args  # benchmarks/side_by_side.py


def synthetic_png(rng: np.random.Generator, height: int, width: int) -> bytes:
    """A PNG of smooth random colour blobs plus mild noise: it compresses roughly like a photo, not like noise."""
    low = torch.from_numpy(rng.integers(0, 256, (1, 3, height // 16 + 2, width // 16 + 2)).astype(np.float32))
    smooth = F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    pixels = np.clip(smooth.numpy() + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_png_folder(root: Path, count: int, height: int, width: int, seed: int = 0, classes: int = 2) -> Path:
    """``root/class_K/NNNNNN.png``: ``count`` generated PNGs of ``height x width`` in ``classes`` sub-folders."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / f"class_{k}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"class_{i % classes}" / f"{i:06d}.png").write_bytes(synthetic_png(rng, height, width))
    return root


def make_shard(folder: Path, tar_path: Path) -> Path:
    """One WebDataset shard of every PNG under ``folder`` (``key.png`` + ``key.cls``)."""
    with tarfile.open(tar_path, "w") as tar:
        for n, path in enumerate(sorted(folder.rglob("*.png"))):
            for name, data in ((f"{n:06d}.png", path.read_bytes()), (f"{n:06d}.cls", path.parent.name[6:].encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return tar_path


def loader_rate(source: str, size: int, batch: int, workers: int, batches: int) -> dict[str, float]:
    """Images/s of the training loader over ``batches`` batches after the first (timed apart: worker start-up)."""
    items = open_items(source, "all")
    transform = ItemTransform("random", size)
    loader = StepLoader(items, transform, global_batch=batch, seed=0, stop=batches + 1, workers=workers)
    start = time.perf_counter()
    loader.batch(0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(1, batches + 1):
        loader.batch(step)
    elapsed = time.perf_counter() - start
    loader.close()
    return {"images_per_s": batches * batch / elapsed, "first_batch_s": first}


class ModelStep:
    """One tokenizer training step at ``size`` px and ``batch`` (forward, L2 + aux loss, backward, Adam)."""

    def __init__(self, preset: str, size: int, batch: int, device: torch.device) -> None:
        cfg = load_config(TokenizerExperiment, [], [f"model.preset={preset}", f"data.image_size={size}"])
        self.model = Tokenizer(tokenizer_spec(cfg, in_channels=3)).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.0, 0.99))
        self.x = torch.rand(batch, 3, size, size, device=device)
        self.device = device

    def __call__(self) -> float:
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            reconstruction, out = self.model(self.x)
        loss = F.mse_loss(reconstruction.float(), self.x) + out.aux_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def cpu_model() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), platform.processor())


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--images", type=int, default=144, help="generated PNGs per resolution (>= (batches+1) x batch)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=8, help="timed loader batches per cell")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--preset", default="cpu-tiny", help="tokenizer model preset for the step rate")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch threads of this process (default: torch's)")
    p.add_argument("--note", default="machine shared with other users' work", help="recorded beside the load average")
    p.add_argument("--quick", action="store_true", help="smoke run: 32 px, 1 repeat, 2 batches of 4")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "data.json"))
    args = p.parse_args()
    if args.quick:
        args.resolutions, args.repeats, args.batch, args.batches, args.images = [32], 1, 4, 2, 12
    return args


def main() -> None:
    args, load_start = parse_args(), os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fsq_bench_data_") as tmp:
        for size in args.resolutions:
            folder = make_png_folder(Path(tmp) / f"png{size}", args.images, round(size * 1.25), round(size * 1.5))
            sources = {"folder": str(folder), "wds": str(make_shard(folder, Path(tmp) / f"shard{size}.tar"))}
            step = ModelStep(args.preset, size, args.batch, device)
            step()  # warm-up
            samples: dict[tuple, list[dict[str, float]]] = {}
            for _ in range(args.repeats):  # round-robin: every cell once per repeat
                for name, source in sources.items():
                    for workers in args.workers:
                        cell = loader_rate(source, size, args.batch, workers, args.batches)
                        samples.setdefault(("loader", name, workers), []).append(cell)
                samples.setdefault(("model", "", -1), []).append({"step_s": step()})
            for (what, name, workers), cells in samples.items():
                if what == "model":
                    step_s = statistics.median(c["step_s"] for c in cells)
                    row = {"step_s": step_s, "images_per_s": args.batch / step_s, "preset": args.preset}
                    results.append({"what": what, "resolution": size, **row, "samples": cells})
                    continue
                rate = statistics.median(c["images_per_s"] for c in cells)
                first = statistics.median(c["first_batch_s"] for c in cells)
                results.append(
                    {"what": what, "resolution": size, "source": name, "workers": workers, "images_per_s": rate}
                    | {"first_batch_s": first, "samples": cells}
                )
            print(f"{size} px done", file=sys.stderr, flush=True)
    meta = {
        "kind": "data",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "loadavg_1_5_15min": {"start": load_start, "end": os.getloadavg()},
        "machine_note": args.note,
        "repeats": args.repeats,
        "batch": args.batch,
        "args": recorded_args(args),
        "what": (
            "PNGs 1.25 x 1.5 times the resolution, decoded, shorter side resized, randomly cropped and flipped "
            "(files in the page cache); tokenizer: one training step (forward, L2 + aux, backward, Adam) at the same "
            f"resolution and batch on {args.device}, timed apart from the loader (in training they share the cores)."
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
