"""``fsq export RUN OUT``: a run's newest weights as a self-contained bundle, with a model card generated from it.

The bundle is what the run's stage exports (its registry entry's ``export``, :mod:`fsq.stages`), for the built-in
stages what :mod:`fsq.hub` describes (safetensors + JSON, nothing pickled): a tokenizer bundle
(:class:`TokenizerBundle`: ``Tokenizer.save_pretrained``), a MaskGIT bundle with its tokenizer and sampling
defaults (:class:`~fsq.inference.sampling.MaskGITPipeline`) or a UViM bundle with its oracle, language model and
task (:class:`~fsq.inference.prediction.UViMPredictor`). Beside the weights:

* ``eval.json``: the run's evaluation of the exported step, as the run wrote it (when it has one);
* ``README.md``: the model card, generated here from the run's ``config.yaml``, ``meta.json``, that evaluation
  and its stage's card text: what the model is and how to use it, its data, the command and config that trained
  it, and the measured numbers. Nothing in it is typed by hand, so the card cannot drift from the run.

The bundle is written to a temporary folder and renamed into place; an existing non-empty ``OUT`` is refused.
Paths of the exporting machine are written relative to the working directory (or ``~``) in its text files.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsq import markdown, rundir, storage
from fsq.anchors.report import anchors_table, audio_anchors_table
from fsq.config import dump_yaml, read_run_config
from fsq.inference.sampling import run_metadata
from fsq.io import read_json, write_json_atomic
from fsq.models.autoencoder import Tokenizer
from fsq.stages import get_stage, tokenizer

DATASET_IDS = {"mnist": "mnist", "fashion": "fashion_mnist"}  # the built-in sources' Hugging Face dataset ids
LICENSE = "apache-2.0"  # fsq's own (pyproject.toml); the weights are released under it


def example_settings(
    *, channels: int = 3, size: int = 28, num_classes: int = 0, shape: list[int] | None = None
) -> dict[str, Any]:
    """What a card's example needs to run for this model: the input's channels and size (``shape``: its axes'
    sizes, default ``size`` x ``size``), and class labels it has."""
    labels = list(range(min(3, num_classes)))
    return {
        "channels": channels,
        "size": size,
        "batch_shape": ", ".join(map(str, [4, channels, *(shape or [size, size])])),
        "labels": labels if labels else "None, 4",
        "labels_meaning": "one image per class label" if labels else "4 unconditional images",
    }


def front_matter(cfg: Any, tags: tuple[str, ...], tokenizer_source: str | None = None) -> list[str]:
    """The hub's YAML front matter of a card: license, library name, tags and (for built-in data) datasets."""
    source = tokenizer_source or getattr(cfg.data, "source", None)
    lines = ["---", f"license: {LICENSE}", "library_name: fsq", "tags:"]
    lines += [f"- {t}" for t in ("fsq", "finite-scalar-quantization", *tags, "pytorch")]
    if source in DATASET_IDS:
        lines += ["datasets:", f"- {DATASET_IDS[source]}"]
    return [*lines, "---", ""]


@dataclass
class TokenizerBundle:
    """A tokenizer run's export: its newest EMA weights and their provenance (``Tokenizer.save_pretrained``)."""

    model: Tokenizer
    metadata: dict[str, Any]

    @classmethod
    def from_run(cls, run_dir: str | Path) -> TokenizerBundle:
        run = tokenizer.STAGE.load_run(Path(run_dir), True)  # refuses a run of another stage
        return cls(run.model("tokenizer", Tokenizer), run_metadata(run.cfg, run.step, run_dir))

    @property
    def card_example(self) -> dict[str, Any]:
        """:func:`example_settings` arguments: the input the card's example feeds the tokenizer."""
        spec = self.model.spec
        return {
            "channels": spec.in_channels,
            "size": spec.image_size,
            "shape": spec.shape or [spec.image_size] * spec.dims,
        }

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> None:
        self.model.save_pretrained(directory, metadata=self.metadata, card=card)


def _commands(run_dir: Path) -> list[str]:
    """The command lines that (re)started the run, from its ``meta.json``."""
    path = run_dir / rundir.META
    if not path.is_file():
        return []
    lines = []
    for start in read_json(path, "the run's start record", required={"runs": list})["runs"]:
        argv = [str(a) for a in start.get("command") or []]
        if argv:  # the console script or ``python -m fsq`` is ``fsq``; anything else (a test, a script) as it was
            lines.append(" ".join(["fsq", *argv[1:]] if Path(argv[0]).name in ("fsq", "__main__.py") else argv))
    return lines


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metrics(evaluation: dict[str, Any]) -> list[str]:
    """Markdown lines of an evaluation: its scalars as a table, then one table of its per-guidance rows (MaskGIT)
    or of its per-depth rows (a residual audio codec's first stages, ``eval.depths``)."""
    lines = markdown.table(["metric", "value"])
    for key, value in evaluation.items():
        if _is_scalar(value) and key != "seconds":
            lines.append(markdown.row([key, _cell(value)]))
        elif isinstance(value, dict):  # its scalars (the class judge: test accuracy, steps, ...), not file paths
            lines += [markdown.row([f"{key}.{k}", _cell(v)]) for k, v in value.items() if _is_scalar(v) and k != "path"]
    for section in ("guidance", "depths"):  # MaskGIT's per-guidance rows; a residual codec's rows per depth
        rows = [r for r in evaluation.get(section) or [] if isinstance(r, dict)]
        if rows:
            keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and k != "seconds"]
            lines += ["", *markdown.table(keys, ([_cell(r.get(k, "")) for k in keys] for r in rows))]
    return lines


def model_card(
    name: str,
    run_dir: str | Path,
    metadata: dict[str, Any],
    evaluation: dict[str, Any] | None,
    example: dict[str, Any] | None = None,
) -> str:
    """The model card (Markdown with the hub's YAML front matter) of a bundle exported from ``run_dir``: generated,
    never typed by hand. ``example``: :func:`example_settings` of the model, so that its code runs as printed."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    stage = get_stage(cfg.stage)
    step = metadata["step"]
    tokenizer_cfg = None
    if (run_dir / rundir.TOKENIZER).is_dir():  # a run built on a tokenizer it embeds (MaskGIT)
        tokenizer_cfg = read_run_config(run_dir / rundir.TOKENIZER)
    example = example or example_settings(size=getattr(cfg.data, "image_size", 28))
    tags = stage.card_tags or (stage.name,)
    lines = front_matter(cfg, tags, tokenizer_cfg.data.source if tokenizer_cfg is not None else None)
    lines += [f"# {name}", "", stage.card_intro(cfg, metadata), ""]
    if stage.usage:  # ref double-quoted, as ruff formats it
        lines += ["## Use", "", stage.usage.format(ref=json.dumps(name), **example), ""]
    # the data this model was trained and measured on (a MaskGIT's tokenizer_config only names a study's recipe)
    given = {k: v for k, v in metadata["config"].get("data", {}).items() if v is not None and k != "tokenizer_config"}
    if evaluation is not None and evaluation.get("reference_split"):  # an evaluation that records its own splits
        given = {k: v for k, v in given.items() if k != "eval_split"}
        given.update({k: evaluation[k] for k in ("eval_split", "reference_split") if evaluation.get(k)})
    elif evaluation is not None and evaluation.get("split") not in (None, given.get("eval_split")):
        # evaluated again on another split after training (a study's held-out evaluation of a val trial)
        given["eval_split"] = (
            f"{evaluation['split']} (the evaluation in `eval.json`; the run's config named {given.get('eval_split')})"
        )
        limit = given.get("eval_limit")
        if limit is not None and evaluation.get("num_samples") not in (None, limit):
            given["eval_limit"] = (
                f"{evaluation['num_samples']} evaluated (the evaluation in `eval.json`; the run's config named {limit})"
            )
    data = "\n".join(f"- `data.{k}`: {v}" for k, v in given.items())
    lines += ["## Data", "", data, ""]
    if stage.card_notes is not None:
        lines += stage.card_notes(run_dir)
    lines += ["## Training", "", f"fsq {metadata['fsq_version']}, run `{cfg.name}`, {step} steps. Command(s):", ""]
    lines += ["```bash", *(_commands(run_dir) or ["(not recorded)"]), "```", "", "Resolved config:", ""]
    lines += ["```yaml", dump_yaml(cfg).rstrip(), "```", ""]
    lines += ["## Measured", ""]
    if evaluation is None:
        lines += ["Not evaluated: the run holds no evaluation of this step (`fsq eval RUN`).", ""]
    else:
        lines += [
            f"fsq's evaluation of step {step} (`eval/{rundir.step_name(step)}.json` of the run, copied to "
            "`eval.json` here):",
            "",
            *_metrics(evaluation),
            "",
        ]
        planned = getattr(getattr(cfg, "eval", None), "fid_samples", None)
        used = evaluation.get("fid_samples")
        if used is not None and planned is not None and used != planned:  # evaluated again with another FID size
            lines += [
                f"FID here is over {used} images (the evaluation in `eval.json`); the resolved config above names "
                f"`eval.fid_samples: {planned}`, the run's own evaluation. FIDs over different sample counts do "
                "not compare (the estimate is biased upward for fewer samples).",
                "",
            ]
        if evaluation.get("anchors") and evaluation.get("signal") == "audio":  # beside Codec2 / Opus
            lines += ["The codec beside classical codecs, on the same held-out clips:", ""]
            lines += [audio_anchors_table(evaluation, name), ""]
        elif evaluation.get("anchors"):  # an image tokenizer measured beside classical codecs at its bits
            lines += ["Classical codecs at the tokenizer's bits, on the same held-out images:", ""]
            lines += [anchors_table(evaluation, name), ""]
    return "\n".join(lines)


def export_run(run_dir: str | Path, out_dir: str | Path, *, name: str | None = None) -> Path:
    """Write the bundle of ``run_dir``'s newest checkpoint to ``out_dir`` (refused when it exists and is not
    empty); ``name`` (default: ``out_dir``'s name) heads the card. Returns ``out_dir``."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg = read_run_config(run_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not empty; export into a new folder")
    name = name or out_dir.resolve().name
    tmp = out_dir.parent / f".{out_dir.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with storage.writing(out_dir, tmp, what="bundle", advice=f"Nothing was written to {out_dir}: free space and rerun"):
        bundle = get_stage(cfg.stage).exporter()(run_dir)
        evaluation = _evaluation(run_dir, bundle.metadata["step"])
        example = example_settings(**getattr(bundle, "card_example", {}))
        bundle.save_pretrained(tmp, card=model_card(name, run_dir, bundle.metadata, evaluation, example))
        if evaluation is not None:
            write_json_atomic(evaluation, tmp / "eval.json")
        strip_local_paths(tmp)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.replace(tmp, out_dir)
    return out_dir


def strip_local_paths(folder: Path, cwd: Path | None = None, home: Path | None = None) -> None:
    """Rewrite the exporting machine's folders out of a bundle's text files (cards, JSON): paths under the
    working directory become relative to it (``runs/x``), paths under the home directory start with ``~``.

    A bundle is shared; the absolute paths of the machine it was exported on (recorded by the run's config,
    metadata and evaluation) mean nothing elsewhere and reveal that machine's layout.
    """
    prefixes = [(f"{(cwd or Path.cwd()).resolve()}/", ""), (f"{(home or Path.home()).resolve()}/", "~/")]
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".json", ".md", ".yaml") or not path.is_file():
            continue
        text = original = path.read_text()
        for prefix, replacement in prefixes:
            text = text.replace(prefix, replacement)
        if text != original:
            path.write_text(text)


def _evaluation(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The run's evaluation of ``step`` (``None`` when it has none)."""
    path = rundir.eval_path(run_dir, step)
    return read_json(path, "an evaluation") if path.is_file() else None
