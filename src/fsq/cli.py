"""The ``fsq`` command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fsq.counts import count_arg


def _split_configs(items: list[str]) -> tuple[list[str], list[str]]:
    """Positional arguments: ``key=value`` items are overrides, the others config files (merged in order)."""
    files = [i for i in items if "=" not in i]
    overrides = [i for i in items if "=" in i]
    return files, overrides


# options that take a list of values: argparse would read a `key=value` typed after them as one more value
_LIST_OPTIONS = frozenset({"--runs", "--tasks", "--seeds", "--sizes", "--levels", "--classes"})
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.\-]*=")


def overrides_last(argv: list[str]) -> list[str]:
    """``argv`` with every ``key=value`` override that follows a list option (``--seeds 0 1 train.steps=5``) moved
    to the end, after the options, where the positional overrides are read; everything else keeps its order."""
    kept: list[str] = []
    moved: list[str] = []
    in_list = False
    for item in argv:
        if item.startswith("-"):
            in_list = item in _LIST_OPTIONS
        elif in_list and _OVERRIDE.match(item):
            moved.append(item)
            continue
        kept.append(item)
    return kept + moved


def _is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _report_head(report: Path, seconds: float) -> None:
    print(report.read_text().split("## What the paper")[0])
    print(f"report: {report} ({seconds:.0f} s)")


def _study(args: argparse.Namespace) -> int:
    from fsq.studies import KINDS

    keys = ("data", "preset", "sizes", "levels", "tasks", "jobs", "seeds", "runs")
    options = {k: getattr(args, k, None) for k in keys}
    start = time.perf_counter()
    report = KINDS[args.kind].run(args.kind, args.out, overrides=args.overrides, options=options)
    _report_head(report, time.perf_counter() - start)
    return 0


def _demo(args: argparse.Namespace) -> int:
    print(
        "fsq demo: the paper's codebook-size study (Fig. 3) on MNIST at 16x16 px, CPU-sized: FSQ vs VQ (MaskGIT "
        "recipe, with and without its entropy penalty) at codebook sizes 2^6 ... 2^12, each followed by a MaskGIT"
    )
    args.kind, args.overrides = "codebook-size", []
    args.data, args.preset, args.sizes, args.levels, args.tasks = "mnist", "cpu", None, None, None
    return _study(args)


def _readme(args: argparse.Namespace) -> int:
    from fsq.studies.readme import update

    stale = update(args.markdown, check=args.check)
    if args.check and stale:
        print(f"{args.markdown}: stale generated blocks (run `fsq readme {args.markdown}`): {stale}", file=sys.stderr)
        return 1
    print(f"{args.markdown}: {len(stale)} block(s) {'stale' if args.check else 'rewritten'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from fsq.studies import write_report

    print(f"report: {write_report(args.study_dir)}")
    if args.records:
        from fsq.studies.records import MAX_RECORD_BYTES, export_records

        done = export_records(args.study_dir, args.records)
        print(f"records: {args.records} ({len(done['runs'])} evaluated runs)")
        for key, what in (("unfinished", "not evaluated yet"), ("outside", "outside the study folder")):
            if done[key]:
                print(f"  left out, {what}: {', '.join(done[key])}")
        if done["too_large"]:
            print(f"  left out, over {MAX_RECORD_BYTES / 1e6:g} MB: {', '.join(done['too_large'])}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from fsq import app
    from fsq.config import load_config, resolve_configs, schema_for
    from fsq.distributed import process_group

    files, overrides = _split_configs(args.items)
    cfg: Any = load_config(schema_for(args.stage), resolve_configs(files, args.stage), overrides)
    run_dir = Path(args.run_dir or Path("runs") / cfg.name)
    with process_group():  # under torchrun: destroyed before exit, every rank done
        result = app.train(cfg, run_dir)
    if result.get("eval") and _is_main():
        _print_results(result["eval"])
    if _is_main():
        print(f"run dir: {run_dir}")
    return 0


def _print_results(results: dict[str, Any], indent: str = "  ") -> None:
    """An evaluation's numbers, one line per entry: scalars, mappings of scalars, and lists of such mappings."""

    def scalar(value: Any) -> str | None:
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, (int, str)) or value is None:
            return str(value)
        return None

    def mapping(value: dict[str, Any]) -> str:
        cells = ((k, scalar(v)) for k, v in value.items())
        return ", ".join(f"{k.replace('_', ' ')} {text}" for k, text in cells if text is not None)

    for key, value in results.items():
        name = key.replace("_", " ")
        if scalar(value) is not None:
            print(f"{indent}{name:<22} {scalar(value)}")
        elif isinstance(value, dict):
            print(f"{indent}{name:<22} {mapping(value)}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                print(f"{indent}{name:<22} {mapping(item)}")


def _eval(args: argparse.Namespace) -> int:
    from fsq import app, rundir
    from fsq.distributed import process_group

    overrides = [*args.overrides, *([f"eval.fid_samples={args.fid_samples}"] if args.fid_samples is not None else [])]
    with process_group():
        results = app.evaluate(args.run_dir, overrides)
    if _is_main():
        _print_results(results)
        print(f"wrote {rundir.eval_path(args.run_dir, results['step'])}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from fsq.inference.frame_prediction import condition_frames_of, write_predictions
    from fsq.inference.sampling import write_samples
    from fsq.io import read_json
    from fsq.storage import new_files

    if condition_frames_of(args.run_dir):  # frame prediction: conditioned on held-out clips, scored by PSNR
        if args.classes:
            raise ValueError("--classes: a frame-prediction model takes the labels of the held-out clips it predicts")
        with new_files(args.out, what="predictions"):
            path = write_predictions(
                args.run_dir,
                args.out,
                num=args.num,
                steps=args.steps,
                guidance=args.guidance,
                choice_temperature=args.choice_temperature,
                seed=args.seed,
                device=args.device,
            )
        report = read_json(path.parent / "prediction.json", "the frame prediction report")
        print(
            f"predicted frames {report['given_frames']}..{report['frames'] - 1} of {report['clips']} held-out clips: "
            f"PSNR {report['psnr']:.2f} dB (repeating the last given frame: {report['repeat_psnr']:.2f} dB; "
            f"the real clips' tokens decoded: {report['tokenizer_psnr']:.2f} dB); predicted tokens equal to the real "
            f"ones: {report['token_accuracy']:.1%}"
        )
        print(f"wrote {path} and beside it " + ", ".join(sorted(p.name for p in path.parent.glob("prediction.*"))))
        return 0
    with new_files(args.out, what="samples"):  # a failure leaves no partial grids, nor a folder it created
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
    from fsq.inference.prediction import predict_files
    from fsq.storage import new_files

    with new_files(args.out, what="predictions"):  # a failure leaves no partial outputs, nor a folder it created
        written = predict_files(args.run_dir, args.images, args.out, device=args.device)
    print(f"wrote {len(written)} prediction(s) to {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from fsq.inference.export import export_run

    print(f"wrote the bundle {export_run(args.run_dir, args.out, name=args.name)} (safetensors + JSON + README.md)")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from fsq.stages.tokens import export_tokens

    layout = {"stages": args.stages, "groups": args.groups, "windows": args.windows}
    manifest = export_tokens(args.run_dir, args.split, args.out, shard_size=args.shard_size, **layout)
    print(
        f"wrote {manifest['num_images']} token grids {manifest['token_grid']} ({manifest['dtype']}, "
        f"{len(manifest['shards'])} shard(s)) to {args.out}"
    )
    return 0


def _encode(args: argparse.Namespace) -> int:
    from fsq.inference.codec import encode_file, open_model

    model = open_model(args.model, args.device)
    encoded = encode_file(model, args.input, args.out, rate=args.rate, resample=args.resample, tile=args.tile)
    print(describe_codes(encoded.codes.header, args.out))
    if encoded.real_time_factor is not None:
        rtf = encoded.real_time_factor
        print(f"real-time factor {rtf:.3g}x (seconds of signal per second of compute; encode, one pass)")
    return 0


def describe_codes(header: dict[str, Any], where: Any) -> str:
    """One line on a codes file: the signal, the token grid and the bitrate."""
    rate = f" at {header['rate']:g} {header['rate_unit']}" if header.get("rate") else ""
    duration = f", {header['duration_s']:.3g} s" if header.get("duration_s") else ""
    shape = "x".join(map(str, header["signal_shape"]))
    grid = "x".join(map(str, header["grid_shape"]))
    bitrate = header["bitrate"]
    amount = (
        f"{bitrate / 1000:.4g} kbit/s"
        if header["bitrate_unit"] == "bits/s"
        else f"{bitrate:g} {header['bitrate_unit']}"
    )
    if header["kind"] == "video" and header["signal_shape"][1] == 1:  # an image through a causal video model
        amount = f"{header['bits']:.6g} bits (an image as a one-frame video)"
    if header.get("tiles"):
        rows, cols = header["tiles"]
        chunk = "x".join(map(str, header["chunk_shape"]))
        return (
            f"{where}: image {shape} as {rows}x{cols} tiles of {chunk} px, each {grid} tokens "
            f"({header['quantizer']['description']}, {header['bits_per_token']:.4g} bits per token): {amount}"
        )
    return (
        f"{where}: {header['kind']} {shape}{rate}{duration} as {header['chunks']} chunk(s) of {grid} tokens "
        f"({header['quantizer']['description']}, {header['bits_per_token']:.4g} bits per token): {amount}"
    )


def _decode(args: argparse.Namespace) -> int:
    from fsq.inference.codec import decode_file, open_model

    model = open_model(args.model, args.device)
    decoded = decode_file(model, args.codes, args.out)
    shape = tuple(decoded.signal.shape)
    if decoded.kind.name == "video" and shape[1] == 1 and Path(args.out).suffix.lower() == ".png":
        print(f"wrote {args.out}: image {shape[0]}x{shape[2]}x{shape[3]} (a one-frame video)")
    else:
        print(f"wrote {args.out}: {decoded.kind.name} {'x'.join(map(str, shape))}")
    if decoded.real_time_factor is not None:
        rtf = decoded.real_time_factor
        print(f"real-time factor {rtf:.3g}x (seconds of signal per second of compute; decode, one pass)")
    return 0


def _data(args: argparse.Namespace) -> int:
    from fsq.data.sources import main as data_main

    argv = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    return data_main([*argv, args.action, *((args.names or ["all"]) if args.action == "prepare" else [])])


def _config(args: argparse.Namespace) -> int:
    from fsq.config import dump_yaml, load_stage_config, resolve_configs, schema_for, stage_names
    from fsq.config.registry import description_of
    from fsq.config.schema_doc import format_schema

    if not args.items and not args.stage and not args.schema:  # the stages, each with what it is
        names = stage_names()
        width = max(map(len, names))
        print("stages (fsq train STAGE CONFIG...; fsq config --schema STAGE lists a stage's keys):")
        for name in names:
            print(f"  {name:<{width}}  {description_of(schema_for(name))}".rstrip())
        return 0
    if args.schema:
        print(format_schema(schema_for(args.schema)), end="")
        return 0
    files, overrides = _split_configs(args.items)
    print(dump_yaml(load_stage_config(resolve_configs(files, args.stage), overrides, stage=args.stage)), end="")
    return 0


def _configs(args: argparse.Namespace) -> int:
    from fsq.config.names import configs_root, copy_config, shipped_configs

    if args.action == "copy":
        print(f"wrote {copy_config(args.name, args.dest, args.stage)}")
        return 0
    rows = [c for c in shipped_configs() if args.stage in (None, c.stage)]
    width = max(len(c.name) for c in rows)
    print(f"shipped configs in {configs_root()} (use a name, e.g. `fsq train tokenizer fsq_mnist smoke`):")
    for c in rows:
        print(f"  {c.name:<{width}}  {c.stage:<9}  {c.relative:<30}  {c.summary[:100]}")
    return 0


def _missing_extra(error: ModuleNotFoundError) -> int:
    """An optional dependency is missing: name the extra that installs it (other import errors propagate)."""
    from fsq.extras import install_hint

    if install_hint(error) is None:
        raise error
    print(f"fsq: error: {install_hint(error)}", file=sys.stderr)
    return 2


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
        help="the paper's studies: codebook-size (Fig. 3) | levels (Fig. 10) | maskgit (Fig. 4) | uvim (Tab. 2) | "
        "video (FSQ vs VQ vs LFQ video tokenizers) | codec (audio tokenizers' bitrate curve beside Codec2 and Opus) | "
        "photos (FSQ vs VQ vs LFQ vs BSQ photo tokenizers beside the naive codec, JPEG and WebP)",
    )
    study.add_argument("kind", choices=["codebook-size", "levels", "maskgit", "uvim", "video", "codec", "photos"])
    study.add_argument(
        "--runs", nargs="+", help="codec: tokenizer run dirs trained elsewhere, measured beside the anchors"
    )
    study.add_argument(
        "--tasks",
        nargs="+",
        help="uvim: tasks to run (default depth colorization panoptic); video: tokenizers [stage2] (default both); "
        "photos: quantizers [codebook] (default both)",
    )
    study.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="uvim, codebook-size, levels, video, codec: training seeds, one run each (default 0; video: 0 1 2, "
        "quick 0)",
    )
    study.add_argument(
        "--data",
        default="mnist",
        help="mnist | fashion | photos | an image folder; video: moving_mnist (mnist) | blobs",
    )
    study.add_argument(
        "--sizes",
        nargs="+",
        help="codebook sizes (codebook-size: default 64 256 1024 4096; levels: 256 1024 4096 16384 65536)",
    )
    study.add_argument(
        "--levels", nargs="+", help="level sets for the levels and codec studies, e.g. 8,5,5,5 4,4,4,4,4"
    )
    study.add_argument(
        "--preset",
        default="cpu",
        choices=["cpu", "gpu", "quick"],
        help="run size (default cpu; quick: video and photos only)",
    )
    study.add_argument(
        "--jobs",
        type=count_arg(),
        default=1,
        help="codebook-size, levels, uvim, photos, video: runs trained at once (processes; default 1)",
    )
    study.add_argument("--out", required=True, help="study folder; rerunning reuses and resumes its runs")
    study.add_argument(
        "overrides", nargs="*", help="key=value overrides applied to every run; maskgit: also its config files"
    )
    study.set_defaults(func=_study)

    report = commands.add_parser("report", help="rebuild a study's report from its run dirs (no torch needed)")
    report.add_argument("study_dir")
    report.add_argument(
        "--records",
        metavar="DEST",
        help="also copy the study's records (no weights) to DEST: what a long study publishes; copied back into a "
        "study folder, a rerun reuses every run they hold",
    )
    report.set_defaults(func=_report)

    # a maintainer's command (regenerates README blocks from published results): not listed in --help
    readme = commands.add_parser(
        "readme", description="regenerate the tables and claims a Markdown file takes from results"
    )
    readme.add_argument("markdown", nargs="?", default="README.md")
    readme.add_argument("--check", action="store_true", help="only check: exit 1 when a block is stale")
    readme.set_defaults(func=_readme)

    try:
        from fsq.config import stage_names

        stages: list[str] | None = stage_names()  # the registered stages (torch-free) and other packages' ones
    except ModuleNotFoundError:  # the core install (no PyYAML): the command itself names the extra it needs
        stages = None
    train = commands.add_parser("train", help="train a model: fsq train STAGE CONFIG... [key=value ...]")
    train.add_argument(
        "stage", choices=stages, help=f"what to train: {' | '.join(stages or ['STAGE'])} (`fsq config` describes them)"
    )
    train.add_argument("items", nargs="+", help="config names or YAML files (merged in order), key=value overrides")
    train.add_argument("--run-dir", help="run directory (default runs/<name>); an existing one resumes")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("eval", help="evaluate a run dir's newest checkpoint on its held-out split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument(
        "overrides", nargs="*", help="eval.* settings, key=value (e.g. eval.unquantized=true 'eval.depths=[1,2]')"
    )
    evaluate.add_argument(
        "--fid-samples", type=count_arg(0), default=None, help="images for rFID (default: the config's)"
    )
    evaluate.set_defaults(func=_eval)

    sample = commands.add_parser("sample", help="sample from a MaskGIT run: PNG grids (video: strips, GIF, MP4) + .npz")
    sample.add_argument(
        "run_dir", metavar="MODEL", help="a MaskGIT run dir, a bundle, a shipped name (mnist-maskgit-fsq) or a hub id"
    )
    sample.add_argument("--classes", type=int, nargs="+", help="class ids (default: all classes)")
    sample.add_argument(
        "--num", type=count_arg(), default=16, help="samples per class; frame prediction: held-out clips (default 16)"
    )
    sample.add_argument(
        "--steps", type=count_arg(), default=None, help="decoding steps T (default: the run's eval.steps)"
    )
    sample.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance weight (default 0)")
    sample.add_argument("--choice-temperature", type=float, default=None, help="default: the run's eval setting")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="cpu", help="cpu | cuda")
    sample.add_argument("--out", required=True, help="output folder")
    sample.set_defaults(func=_sample)

    predict = commands.add_parser("predict", help="UViM: predict depth / colours / panoptic for image files (PNGs)")
    predict.add_argument("run_dir", metavar="MODEL", help="a UViM run dir, a bundle, a shipped name or a hub repo id")
    predict.add_argument("images", nargs="+", help="image files (resized to the run's image size)")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--device", default="cpu", help="cpu | cuda")
    predict.set_defaults(func=_predict)

    export = commands.add_parser("export", help="write a run's model as a bundle (safetensors + JSON + model card)")
    export.add_argument("run_dir", help="a run dir of any stage")
    export.add_argument("out", help="the bundle folder to create (refused when it exists and is not empty)")
    export.add_argument("--name", help="the model's name in its card (default: the folder's name)")
    export.set_defaults(func=_export)

    tokenize = commands.add_parser("tokenize", help="export token shards of a split for Stage II")
    tokenize.add_argument(
        "run_dir", metavar="MODEL", help="a tokenizer run dir, a bundle, a shipped name (mnist-fsq) or a hub repo id"
    )
    tokenize.add_argument("--split", default="train", help="data split (train, val, test)")
    tokenize.add_argument("--out", required=True, help="output folder")
    tokenize.add_argument(
        "--shard-size", type=count_arg(), default=10_000, help="token grids per shard (default 10000)"
    )
    tokenize.add_argument(
        "--stages", type=count_arg(), default=None, help="residual tokenizers: the leading stages kept (default all)"
    )
    tokenize.add_argument(
        "--groups",
        type=count_arg(),
        default=1,
        help="FSQ: write each index as this many tokens, one per block of channels with equal level products",
    )
    tokenize.add_argument(
        "--windows",
        action="store_true",
        help="audio: every whole crop of each clip (the tokenizer's data.length, side by side), not only its centre",
    )
    tokenize.set_defaults(func=_tokenize)

    model_help = "a tokenizer run dir, a bundle, a shipped name (mnist-fsq) or a hub repo id"
    encode = commands.add_parser("encode", help="a signal file (.wav, image, .npy, .gif, video) to a codes file")
    encode.add_argument("model", metavar="MODEL", help=model_help)
    encode.add_argument("input", metavar="INPUT", help="the signal file: audio .wav/.npy, an image, a .npy/.gif clip")
    encode.add_argument("--out", required=True, help="the codes file to write (.npz)")
    encode.add_argument(
        "--rate", type=float, default=None, help="the rate of an input without one (default: the model's)"
    )
    encode.add_argument("--resample", action="store_true", help="resample an input at another rate to the model's")
    encode.add_argument(
        "--tile",
        action="store_true",
        help="an image of another size than the model's: cut into tiles of its size, each coded alone (seams may "
        "show at tile borders); decode puts them back",
    )
    encode.add_argument("--device", default="cpu", help="cpu | cuda")
    encode.set_defaults(func=_encode)

    decode = commands.add_parser("decode", help="a codes file back to a signal file (.wav, .png, .npy, .gif)")
    decode.add_argument("model", metavar="MODEL", help=f"{model_help}: the one that encoded the codes")
    decode.add_argument("codes", metavar="CODES", help="the codes file of `fsq encode` (.npz)")
    decode.add_argument("--out", required=True, help="the file to write: its extension picks the format")
    decode.add_argument("--device", default="cpu", help="cpu | cuda")
    decode.set_defaults(func=_decode)

    data = commands.add_parser("data", help="offline data sources: list | prepare [NAME...|all]")
    data.add_argument("action", choices=["list", "prepare"])
    data.add_argument("names", nargs="*", default=[], help="sources to prepare (default: all)")
    data.add_argument("--cache-dir", default=None, help="cache folder (default $FSQ_CACHE or ~/.cache/fsq)")
    data.set_defaults(func=_data)

    config = commands.add_parser(
        "config", help="print the resolved config of any stage (files name their stage); alone: list the stages"
    )
    config.add_argument("items", nargs="*", help="config names or YAML files, and key=value overrides")
    config.add_argument("--stage", choices=stages, help="the schema (default: the file's)")
    config.add_argument("--schema", choices=stages, help="list a stage's keys and exit")
    config.set_defaults(func=_config)

    configs = commands.add_parser("configs", help="the shipped configs: list | copy NAME DEST (to edit a copy)")
    actions = configs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="name, stage, path and summary of each shipped config and preset")
    copy = actions.add_parser("copy", help="copy a shipped config to edit it (never overwrites)")
    copy.add_argument("name", help="a config name (fsq_mnist, smoke) or a path below the shipped configs")
    copy.add_argument("dest", help="a folder, or the new file's path")
    for sub in (listing, copy):
        sub.add_argument("--stage", choices=stages, help="the stage the name belongs to")
    configs.set_defaults(func=_configs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fsq`` console script and ``python -m fsq``."""
    # torch's CPU allocator backs large tensors with transparent huge pages when this is set (read at its first
    # large allocation): 2 MB pages cut the page faults of freshly allocated tensors ~100x. Measured on the 2-core
    # machine: a MaskGIT with a 64,000-code head, 30 steps of batch 64, 1.21 -> 1.02 s/step, system time 34.6 ->
    # 21.7 s. The user's own setting wins.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    try:
        parser = build_parser()  # the stage choices come from the config registry (pyyaml: the `train` extra)
    except ModuleNotFoundError as error:
        return _missing_extra(error)
    args, extra = parser.parse_known_args(overrides_last(sys.argv[1:] if argv is None else list(argv)))
    if extra:  # argparse binds a trailing positional list early: items after an option land here
        listed = next((n for n in ("overrides", "items") if isinstance(getattr(args, n, None), list)), None)
        if listed is not None and not any(e.startswith("-") for e in extra):
            setattr(args, listed, getattr(args, listed) + extra)  # `... --run-dir X train.steps=2` as typed
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    where = f" (rank {os.environ.get('RANK', '0')} of {world})" if world > 1 else ""
    if not getattr(threading.excepthook, "fsq_hook", False):  # once per process (tests call main many times)
        threading.excepthook = _thread_failure(where, threading.excepthook)
    code = _run(args, world, where)
    if world > 1:  # a torchrun worker that ran a process group: ends here, without the interpreter's finalization
        from fsq.distributed import leave, started_a_group

        if started_a_group():
            leave(code)
    return code


def _run(args: argparse.Namespace, world: int, where: str) -> int:
    """The command's exit status: 0, or 2 / 3 with one line naming the problem; a bug raises (its traceback)."""
    try:
        from fsq.config import ConfigError
        from fsq.rundir import RunDirBusy
    except ModuleNotFoundError as error:
        return _missing_extra(error)
    try:
        return args.func(args)
    # OSError: missing files, disk full; FloatingPointError: a diverged (non-finite) loss
    except (ConfigError, ValueError, RunDirBusy, OSError, FloatingPointError) as error:
        print(f"fsq: error{where}: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        return _missing_extra(error)
    except Exception as error:
        return _unexpected(error, world, where)


# what torch's process-group backends (gloo, NCCL) say when a peer rank died, froze past the timeout or hung up
_COLLECTIVE_WORDS = (
    "gloo",
    "nccl",
    "connection closed by peer",
    "connection reset",
    "broken pipe",
    "timed out",
    "timeout",
    "processgroup",
    "process group",
    "socket",
    "collective",
)


def _thread_failure(where: str, default: Any) -> Any:
    """A ``threading.excepthook``: a background writer that fails on a full disk (TensorBoard's event writer) is
    one line naming the writer and the reason; any other thread's error keeps its traceback."""
    from fsq.storage import storage_reason

    def hook(failure: Any) -> None:
        reason = storage_reason(failure.exc_value) if failure.exc_value is not None else None
        if reason is None:
            default(failure)
        elif type(failure.thread).__name__ != "_AsyncWriterThread":  # TensorBoard's: re-raised by its next write
            name = failure.thread.name if failure.thread is not None else "a thread"
            print(f"fsq: error{where}: background writer thread {name} failed to write ({reason})", file=sys.stderr)

    hook.fsq_hook = True  # type: ignore[attr-defined]
    return hook


def collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed or timed-out collective operation (a dead, frozen or failed peer rank)."""
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, RuntimeError) and (
        "Dist" in type(error).__name__ or any(w in text for w in _COLLECTIVE_WORDS)
    )


def _unexpected(error: Exception, world: int, where: str) -> int:
    """One line for a failed write (any writer's storage error) or, under torchrun, a failed collective; any
    other error propagates (a bug: its traceback is wanted)."""
    from fsq.storage import storage_reason

    reason = storage_reason(error)
    if reason is not None:
        print(f"fsq: error{where}: a write failed ({reason}): {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    if world == 1 or not collective_failure(error):
        raise error
    first = re.sub(r"^\[[^\]]*\]\s*", "", (str(error).strip().splitlines() or [""])[0])  # no C++ source location
    detail = first.split(". ")[0][:200]
    print(
        f"fsq: error{where}: a collective operation failed or timed out ({type(error).__name__}: {detail}); "
        "another rank probably failed, froze or was killed first: its own 'fsq: error (rank N ...)' line, or the "
        "launcher's report, names the cause",
        file=sys.stderr,
    )
    return 3


if __name__ == "__main__":
    sys.exit(main())
