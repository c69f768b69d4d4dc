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


def _split_configs(items: list[str]) -> tuple[list[str], list[str]]:
    """Positional arguments: ``key=value`` items are overrides, the others config files (merged in order)."""
    files = [i for i in items if "=" not in i]
    overrides = [i for i in items if "=" in i]
    return files, overrides


def _train(args: argparse.Namespace) -> int:
    from fsq.config import TokenizerExperiment, load_config

    if args.stage != "tokenizer":
        print(f"fsq train {args.stage}: not implemented yet (Stage II / UViM land in later releases)", file=sys.stderr)
        return 2
    files, overrides = _split_configs(args.items)
    cfg = load_config(TokenizerExperiment, files, overrides)
    run_dir = Path(args.run_dir or Path("runs") / cfg.name)
    from fsq.training.tokenizer import train_tokenizer

    result = train_tokenizer(cfg, run_dir)
    if "eval" in result and _is_main():
        _print_eval(result["eval"])
    if _is_main():
        print(f"run dir: {run_dir}")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _print_eval(results: dict) -> None:
    keys = ["step", "num_samples", "psnr", "ssim", "rfid", "codes_used", "usage", "perplexity", "entropy_bits"]
    for key in keys:
        if key in results:
            value = results[key]
            print(f"  {key:<13} {value:.4f}" if isinstance(value, float) else f"  {key:<13} {value}")
    print(f"  {'parameters':<13} {results['parameters']}")


def _eval(args: argparse.Namespace) -> int:
    from fsq.evaluation.evaluate import evaluate_tokenizer

    results = evaluate_tokenizer(args.run_dir, fid_samples=args.fid_samples)
    if _is_main():
        _print_eval(results)
        step = results["step"]
        print(f"wrote {Path(args.run_dir) / 'eval' / f'step_{step:06d}.json'}")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from fsq.tokens import export_tokens

    manifest = export_tokens(args.run_dir, args.split, args.out, shard_size=args.shard_size)
    print(
        f"wrote {manifest['num_images']} token grids {manifest['token_grid']} ({manifest['dtype']}, "
        f"{len(manifest['shards'])} shard(s)) to {args.out}"
    )
    return 0


def _data(args: argparse.Namespace) -> int:
    from fsq.data.sources import main as data_main

    argv = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    return data_main([*argv, args.action, *((args.names or ["all"]) if args.action == "prepare" else [])])


def _config(args: argparse.Namespace) -> int:
    from fsq.config import TokenizerExperiment, dump_yaml, load_config

    files, overrides = _split_configs(args.items)
    print(dump_yaml(load_config(TokenizerExperiment, files, overrides)), end="")
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

    train = commands.add_parser("train", help="train a model: fsq train tokenizer CONFIG... [key=value ...]")
    train.add_argument("stage", choices=["tokenizer", "maskgit", "uvim"], help="what to train")
    train.add_argument("items", nargs="+", help="YAML config files (merged in order) and key=value overrides")
    train.add_argument("--run-dir", help="run directory (default runs/<name>); an existing one resumes")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("eval", help="evaluate a run dir's newest checkpoint on its held-out split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--fid-samples", type=int, default=None, help="images for rFID (default: the config's)")
    evaluate.set_defaults(func=_eval)

    tokenize = commands.add_parser("tokenize", help="export token shards of a split for Stage II")
    tokenize.add_argument("run_dir")
    tokenize.add_argument("--split", default="train", help="data split (train, val, test)")
    tokenize.add_argument("--out", required=True, help="output folder")
    tokenize.add_argument("--shard-size", type=int, default=10_000)
    tokenize.set_defaults(func=_tokenize)

    data = commands.add_parser("data", help="offline data sources: list | prepare [NAME...|all]")
    data.add_argument("action", choices=["list", "prepare"])
    data.add_argument("names", nargs="*", default=[], help="sources to prepare (default: all)")
    data.add_argument("--cache-dir", default=None, help="cache folder (default $FSQ_CACHE or ~/.cache/fsq)")
    data.set_defaults(func=_data)

    config = commands.add_parser("config", help="print the resolved tokenizer config")
    config.add_argument("items", nargs="*", help="YAML files and key=value overrides")
    config.set_defaults(func=_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fsq`` console script and ``python -m fsq``."""
    args = build_parser().parse_args(argv)
    from fsq.config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError) as error:
        print(f"fsq: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
