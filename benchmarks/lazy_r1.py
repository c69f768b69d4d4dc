"""The tokenizer's discriminator step with R1 on every step (``loss.r1_every=1``) against lazy R1
(``loss.r1_every=16``, StyleGAN2's lazy regularization), side by side in one run.

One round is ``--every`` consecutive discriminator steps (forward on reals and fakes, the non-saturating loss, the
R1 penalty where it is due, backward; no optimizer step) of ``fsq.stages.tokenizer.discriminator_loss``, so the lazy
version's one penalised step is amortised as in training. The two run interleaved (A, B, A, B, ...) ``--repeats``
times; the median round of each is kept. The default is fsq_photos64's GAN trials: 64 px RGB, batch 16,
``loss.discriminator_channels=64``.

Run: ``.venv/bin/python benchmarks/lazy_r1.py [--threads 1] [--repeats 5] [--quick]``; writes
``benchmarks/results/lazy_r1.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import side_by_side
from fsq.models.discriminator import StyleGANDiscriminator
from fsq.stages.tokenizer import discriminator_loss


def round_seconds(network: torch.nn.Module, passed: dict[str, torch.Tensor], every: int, r1_every: int) -> float:
    """Seconds for ``every`` consecutive discriminator steps at ``r1_every``."""
    start = time.perf_counter()
    for step in range(every):
        network.zero_grad(set_to_none=True)
        discriminator_loss(network, passed, 10.0, step, r1_every).loss.backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--every", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="16 px, batch 2, 8 channels, 2 repeats (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lazy_r1.json")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.channels, args.repeats = 16, 2, 8, 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = StyleGANDiscriminator(in_channels=3, image_size=args.size, base_channels=args.channels)
    shape = (args.batch, 3, args.size, args.size)
    passed = {"real": torch.rand(shape), "fake": torch.rand(shape)}
    load_before = os.getloadavg()[0]
    round_seconds(network, passed, 2, 1)  # warm-up
    times: dict[int, list[float]] = {1: [], args.every: []}
    for _ in range(args.repeats):
        for r1_every in times:
            times[r1_every].append(round_seconds(network, passed, args.every, r1_every))
    eager, lazy = (statistics.median(times[k]) / args.every for k in (1, args.every))
    result = {
        **side_by_side.header("lazy_r1", args.threads, args.repeats, load_before),
        "shape": list(shape),
        "discriminator_channels": args.channels,
        "r1_every": args.every,
        "seconds_per_step": {"r1_every_1": eager, f"r1_every_{args.every}": lazy},
        "samples": {str(k): v for k, v in times.items()},
        "speedup": eager / lazy,
    }
    side_by_side.write(result, args.out)
    print(f"| discriminator step | r1_every=1 s | r1_every={args.every} s | speedup |\n|---|---|---|---|")
    print(f"| {'x'.join(map(str, shape))}, {args.channels} ch | {eager:.3f} | {lazy:.3f} | {eager / lazy:.2f}x |")
    print(
        f"\n{args.threads} thread(s), median of {args.repeats} rounds of {args.every} steps; 1-min load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
