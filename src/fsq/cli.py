"""The ``fsq`` command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import torch

    from fsq.patch_study import format_table, results_as_dicts, run

    torch.set_num_threads(args.threads)
    sizes = tuple(2**k for k in args.log2_sizes)
    print(f"FSQ vs VQ on real photo patches (matplotlib's grace_hopper.jpg), codebook sizes {list(sizes)}")
    print(f"{args.steps} steps per model, batch {args.batch}, {args.threads} threads ...", flush=True)
    start = time.perf_counter()
    results = run(sizes, steps=args.steps, batch=args.batch, seed=args.seed)
    print(format_table(results))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "patch_study.json"
    path.write_text(json.dumps({"results": results_as_dicts(results), "steps": args.steps}, indent=2) + "\n")
    print(f"\nwrote {path} ({time.perf_counter() - start:.0f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fsq import __version__

    parser = argparse.ArgumentParser(prog="fsq", description="Finite Scalar Quantization tokenizers and models.")
    parser.add_argument("--version", action="version", version=f"fsq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="one-minute FSQ vs VQ comparison on real photo patches (CPU)")
    demo.add_argument("--steps", type=int, default=300, help="training steps per model (default 300)")
    demo.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    demo.add_argument("--log2-sizes", type=int, nargs="+", default=[6, 8, 10, 12, 14], help="log2 codebook sizes")
    demo.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fsq`` console script and ``python -m fsq``."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
