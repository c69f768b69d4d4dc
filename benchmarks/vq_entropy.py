"""MaskGIT's VQ entropy loss, forward + backward: the fused version with its gradient by hand
(``fsq.quantizers.vq.entropy_loss``) against the same loss as a composition of torch operations with autograd's
gradient (``entropy_loss_reference``), side by side in one run.

Each case is N vectors of width D against K codes at MaskGIT's temperature 0.01 (the distances' matmul included,
as in a training step); the two versions run interleaved (A, B, A, B, ...) ``--repeats`` times and the best time of
each is kept. ``(20480, 1024, 32)`` is the video study's VQ step (16 clips of 5 x 16 x 16 tokens).

Run: ``.venv/bin/python benchmarks/vq_entropy.py [--threads 1] [--repeats 5]``; writes
``benchmarks/results/vq_entropy.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import side_by_side
from fsq.quantizers.vq import entropy_loss, entropy_loss_reference, squared_distances

CASES = [(4096, 1024, 32), (20480, 1024, 32), (8192, 4096, 8)]  # (N, K, D)
TEMPERATURE = 0.01  # MaskGIT's


def step_seconds(loss, x: torch.Tensor, codebook: torch.Tensor) -> float:
    """One forward + backward of ``loss`` on the distances of ``x`` to ``codebook``, in seconds."""
    xs, cs = x.clone().requires_grad_(True), codebook.clone().requires_grad_(True)
    start = time.perf_counter()
    loss(squared_distances(xs, cs), TEMPERATURE).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "vq_entropy.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = []
    for n, k, d in CASES:
        g = torch.Generator().manual_seed(0)
        x, codebook = torch.randn(n, d, generator=g), 0.05 * torch.randn(k, d, generator=g)
        times: dict[str, list[float]] = {"composition": [], "fused": []}
        for _ in range(args.repeats):
            times["composition"].append(step_seconds(entropy_loss_reference, x, codebook))
            times["fused"].append(step_seconds(entropy_loss, x, codebook))
        best = {name: min(values) for name, values in times.items()}
        rows.append({"n": n, "k": k, "d": d, **{f"{name}_s": value for name, value in best.items()}})
        rows[-1]["speedup"] = best["composition"] / best["fused"]
    result = {**side_by_side.header("vq_entropy", args.threads, args.repeats, load_before), "rows": rows}
    side_by_side.write(result, args.out)
    print("| N | K | D | composition s | fused s | speedup |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['k']} | {r['d']} | {r['composition_s']:.3f} | {r['fused_s']:.3f} | {r['speedup']:.2f}x |"
        )
    print(
        f"\n{args.threads} thread(s), best of {args.repeats}; 1-min load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
