"""The ``fsq`` command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _study(args: argparse.Namespace) -> int:
    from fsq.reporting import collect, markdown_table
    from fsq.studies import run_study

    if args.kind == "uvim":
        from fsq.studies import run_uvim_study

        start = time.perf_counter()
        report = run_uvim_study(args.out, tasks=args.tasks, overrides=args.overrides)
        print(report.read_text().split("## What the paper")[0])
        print(f"report: {report} ({time.perf_counter() - start:.0f} s)")
        return 0
    if args.kind == "maskgit":
        from fsq.studies import run_maskgit_study

        files, overrides = _split_configs(args.overrides)
        start = time.perf_counter()
        report = run_maskgit_study(args.out, files or DEFAULT_MASKGIT_CONFIGS, overrides=overrides)
        print(report.read_text().split("## What the paper")[0])
        print(f"report: {report} ({time.perf_counter() - start:.0f} s)")
        return 0

    level_sets = [[int(v) for v in item.split(",")] for item in args.levels] if args.levels else None
    start = time.perf_counter()
    report = run_study(
        args.kind,
        args.out,
        data=args.data,
        preset=args.preset,
        sizes=[int(s) for s in args.sizes] if args.sizes else None,
        level_sets=level_sets,
        overrides=args.overrides,
    )
    print(markdown_table(collect(args.out)))
    print(f"\nreport: {report} ({time.perf_counter() - start:.0f} s)")
    return 0


DEFAULT_MASKGIT_CONFIGS = ["configs/maskgit/fsq_mnist.yaml", "configs/maskgit/vq_mnist.yaml"]


def _demo(args: argparse.Namespace) -> int:
    args.kind, args.sizes, args.levels, args.overrides = "codebook-size", None, None, []
    args.data, args.preset = "mnist", "cpu"
    print(
        "fsq demo: the paper's codebook-size study (Fig. 3) on MNIST at 16x16 px, CPU-sized: FSQ vs VQ (MaskGIT "
        "recipe, with and without its entropy penalty) at codebook sizes 2^6 ... 2^14"
    )
    return _study(args)


def _report(args: argparse.Namespace) -> int:
    from fsq.reporting import read_study, write_report

    kind = read_study(args.study_dir)["kind"]
    if kind == "uvim":
        from fsq.uvim_report import write_uvim_report

        print(f"report: {write_uvim_report(args.study_dir)}")
        return 0
    if kind == "maskgit":
        from fsq.generation_report import write_maskgit_report

        print(f"report: {write_maskgit_report(args.study_dir)}")
        return 0
    print(f"report: {write_report(args.study_dir)}")
    return 0


def _split_configs(items: list[str]) -> tuple[list[str], list[str]]:
    """Positional arguments: ``key=value`` items are overrides, the others config files (merged in order)."""
    files = [i for i in items if "=" not in i]
    overrides = [i for i in items if "=" in i]
    return files, overrides


def _train(args: argparse.Namespace) -> int:
    from fsq.config import MaskGITExperiment, TokenizerExperiment, UViMExperiment, load_config

    files, overrides = _split_configs(args.items)
    schema = {"maskgit": MaskGITExperiment, "uvim": UViMExperiment}.get(args.stage, TokenizerExperiment)
    cfg = load_config(schema, files, overrides)
    run_dir = Path(args.run_dir or Path("runs") / cfg.name)
    from fsq.distributed import teardown

    try:
        if args.stage == "maskgit":
            from fsq.training.maskgit import train_maskgit

            result = train_maskgit(cfg, run_dir)
        elif args.stage == "uvim":
            from fsq.training.uvim import train_uvim

            result = train_uvim(cfg, run_dir)
        else:
            from fsq.training.tokenizer import train_tokenizer

            result = train_tokenizer(cfg, run_dir)
    finally:
        teardown()  # under torchrun: destroy the process group before exit
    if result.get("eval") and _is_main():
        _print_eval(result["eval"])
    if _is_main():
        print(f"run dir: {run_dir}")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _print_eval(results: dict) -> None:
    if "task" in results:  # a UViM evaluation
        for part in ("prediction", "oracle", "baseline"):
            values = ", ".join(f"{k} {v:.4f}" for k, v in results[part].items() if isinstance(v, float))
            print(f"  {part:<11} {values}")
        print(f"  oracle codes used {results['oracle_codes_used']}/{results['codebook_size']}")
        return
    if "guidance" in results:  # a MaskGIT evaluation
        from fsq.generation_report import markdown_table, maskgit_rows

        print(markdown_table(maskgit_rows([results])))
        return
    keys = ["step", "num_samples", "psnr", "ssim", "rfid", "codes_used", "usage", "perplexity", "entropy_bits"]
    for key in keys:
        if key in results:
            value = results[key]
            print(f"  {key:<13} {value:.4f}" if isinstance(value, float) else f"  {key:<13} {value}")
    print(f"  {'parameters':<13} {results['parameters']}")


def _eval(args: argparse.Namespace) -> int:
    from fsq.config import MaskGITExperiment, UViMExperiment, experiment_class, read_yaml
    from fsq.distributed import teardown

    config_path = Path(args.run_dir) / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{args.run_dir} is not a run dir (no config.yaml)")
    try:
        schema = experiment_class(read_yaml(config_path))
        if schema is MaskGITExperiment:
            from fsq.evaluation.generation import evaluate_maskgit

            results = evaluate_maskgit(args.run_dir)
        elif schema is UViMExperiment:
            from fsq.evaluation.uvim import evaluate_uvim

            results = evaluate_uvim(args.run_dir)
        else:
            from fsq.evaluation.evaluate import evaluate_tokenizer

            results = evaluate_tokenizer(args.run_dir, fid_samples=args.fid_samples)
    finally:
        teardown()
    if _is_main():
        _print_eval(results)
        step = results["step"]
        print(f"wrote {Path(args.run_dir) / 'eval' / f'step_{step:06d}.json'}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from fsq.evaluation.generation import write_samples

    path = write_samples(
        args.run_dir,
        args.out,
        classes=args.classes,
        num=args.num,
        steps=args.steps,
        guidance=args.guidance,
        choice_temperature=args.choice_temperature,
        seed=args.seed,
        device=args.device,
    )
    print(f"wrote {path} and the PNG grids beside it")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from fsq.evaluation.uvim import predict_files

    written = predict_files(args.run_dir, args.images, args.out, device=args.device)
    print(f"wrote {len(written)} prediction(s) to {args.out}")
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

    demo = commands.add_parser("demo", help="the codebook-size study on MNIST, CPU-sized (make demo)")
    demo.add_argument("--out", default="runs/demo_study", help="study folder (default runs/demo_study)")
    demo.set_defaults(func=_demo)

    study = commands.add_parser(
        "study",
        help="the paper's studies: codebook-size (Fig. 3) | levels (Fig. 10) | maskgit (Fig. 4) | uvim (Tab. 2)",
    )
    study.add_argument("kind", choices=["codebook-size", "levels", "maskgit", "uvim"])
    study.add_argument("--tasks", nargs="+", help="uvim: tasks to run (default depth colorization panoptic)")
    study.add_argument("--data", default="mnist", help="mnist | fashion | photos | an image folder")
    study.add_argument("--sizes", nargs="+", help="codebook sizes (default 64 256 1024 4096 16384)")
    study.add_argument("--levels", nargs="+", help="level sets for the levels study, e.g. 8,5,5,5 4,4,4,4,4")
    study.add_argument("--preset", default="cpu", choices=["cpu", "gpu"], help="run size (default cpu)")
    study.add_argument("--out", required=True, help="study folder; rerunning reuses and resumes its runs")
    study.add_argument(
        "overrides", nargs="*", help="key=value overrides applied to every run; maskgit: also its config files"
    )
    study.set_defaults(func=_study)

    report = commands.add_parser("report", help="rebuild a study's report from its run dirs (no torch needed)")
    report.add_argument("study_dir")
    report.set_defaults(func=_report)

    train = commands.add_parser("train", help="train a model: fsq train tokenizer CONFIG... [key=value ...]")
    train.add_argument("stage", choices=["tokenizer", "maskgit", "uvim"], help="what to train")
    train.add_argument("items", nargs="+", help="YAML config files (merged in order) and key=value overrides")
    train.add_argument("--run-dir", help="run directory (default runs/<name>); an existing one resumes")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("eval", help="evaluate a run dir's newest checkpoint on its held-out split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--fid-samples", type=int, default=None, help="images for rFID (default: the config's)")
    evaluate.set_defaults(func=_eval)

    sample = commands.add_parser("sample", help="sample images from a MaskGIT run: PNG grid per class + .npz")
    sample.add_argument("run_dir")
    sample.add_argument("--classes", type=int, nargs="+", help="class ids (default: all classes)")
    sample.add_argument("--num", type=int, default=16, help="samples per class (default 16)")
    sample.add_argument("--steps", type=int, default=None, help="decoding steps T (default: the run's eval.steps)")
    sample.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance weight (default 0)")
    sample.add_argument("--choice-temperature", type=float, default=None, help="default: the run's eval setting")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="cpu", help="cpu | cuda")
    sample.add_argument("--out", required=True, help="output folder")
    sample.set_defaults(func=_sample)

    predict = commands.add_parser("predict", help="UViM: predict depth / colours / panoptic for image files (PNGs)")
    predict.add_argument("run_dir")
    predict.add_argument("images", nargs="+", help="image files (resized to the run's image size)")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--device", default="cpu", help="cpu | cuda")
    predict.set_defaults(func=_predict)

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
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse binds a trailing nargs="*" positional early: items after an option land here
        if isinstance(getattr(args, "overrides", None), list) and not any(e.startswith("-") for e in extra):
            args.overrides += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from fsq.config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"fsq: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
