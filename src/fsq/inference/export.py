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

from fsq import rundir, storage
from fsq.config import dump_yaml, read_run_config
from fsq.inference.sampling import run_metadata
from fsq.io import read_json, write_json_atomic
from fsq.models.autoencoder import Tokenizer
from fsq.stages import get_stage, tokenizer


@dataclass
class TokenizerBundle:
    """A tokenizer run's export: its newest EMA weights and their provenance (``Tokenizer.save_pretrained``)."""

    model: Tokenizer
    metadata: dict[str, Any]

    @classmethod
    def from_run(cls, run_dir: str | Path) -> TokenizerBundle:
        run = tokenizer.STAGE.load_run(Path(run_dir), True)  # refuses a run of another stage
        return cls(run.model("tokenizer", Tokenizer), run_metadata(run.cfg, run.step, run_dir))

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> None:
        self.model.save_pretrained(directory, metadata=self.metadata, card=card)


DATASET_IDS = {"mnist": "mnist", "fashion": "fashion_mnist"}  # the built-in sources' Hugging Face dataset ids
LICENSE = "apache-2.0"  # fsq's own (pyproject.toml); the weights are released under it


def example_settings(
    *, channels: int = 3, size: int = 28, num_classes: int = 0, shape: list[int] | None = None
) -> dict[str, Any]:
    """What a card's example (a stage's ``usage``) needs to run for this model: ``{channels}``, ``{size}`` of its
    images, ``{shape}`` of its signal's axes (default: two axes of ``size``) and ``{labels}`` it has
    (``{labels_meaning}`` says what they are)."""
    labels = list(range(min(3, num_classes)))
    return {
        "channels": channels,
        "size": size,
        "shape": ", ".join(str(n) for n in (shape or [size, size])),
        "labels": labels if labels else "None, 4",
        "labels_meaning": "one image per class label" if labels else "4 unconditional images",
    }


def bundle_example(bundle: Any, cfg: Any) -> dict[str, Any]:
    """:func:`example_settings` of an exported bundle: a tokenizer's channels and size, a MaskGIT's classes, a
    UViM model's image size (the config's image size where the bundle does not say)."""
    model = getattr(bundle, "model", None)
    spec = getattr(model, "spec", None)
    given = getattr(bundle, "image_size", None) or getattr(spec, "image_size", None)
    size = int(given or getattr(getattr(cfg, "data", None), "image_size", None) or 28)
    dims = int(getattr(spec, "dims", 2) or 2)
    return example_settings(
        channels=int(getattr(spec, "in_channels", 3)),
        size=size,
        num_classes=int(getattr(bundle, "num_classes", 0) or 0),
        shape=list(getattr(spec, "shape", None) or [size] * dims),
    )


def front_matter(cfg: Any, tokenizer_source: str | None = None) -> list[str]:
    """The hub's YAML front matter of a card: license, library name, tags and (for built-in data) datasets."""
    source = tokenizer_source or getattr(getattr(cfg, "data", None), "source", None)
    tags = ("fsq", "finite-scalar-quantization", cfg.stage, "pytorch")  # the stage's registered name
    lines = ["---", f"license: {LICENSE}", "library_name: fsq", "tags:", *(f"- {t}" for t in tags)]
    if source in DATASET_IDS:
        lines += ["datasets:", f"- {DATASET_IDS[source]}"]
    return [*lines, "---", ""]


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
    """Markdown lines of an evaluation: its scalars as a table, then one table of its per-guidance rows."""
    lines = ["| metric | value |", "|---|---|"]
    for key, value in evaluation.items():
        if _is_scalar(value) and key != "seconds":
            lines.append(f"| {key} | {_cell(value)} |")
        elif isinstance(value, dict):  # its scalars (the class judge: test accuracy, steps, ...), not file paths
            lines += [f"| {key}.{k} | {_cell(v)} |" for k, v in value.items() if _is_scalar(v) and k != "path"]
    rows = [r for r in evaluation.get("guidance", []) if isinstance(r, dict)]
    if rows:
        keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and k != "seconds"]
        lines += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return lines


def model_card(
    name: str,
    run_dir: str | Path,
    metadata: dict[str, Any],
    evaluation: dict[str, Any] | None,
    example: dict[str, Any] | None = None,
) -> str:
    """The model card (Markdown under the hub's YAML front matter) of a bundle exported from ``run_dir``:
    generated, never typed by hand. ``example``: :func:`example_settings` of the model, so that its stage's usage
    code runs as printed for it."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    stage = get_stage(cfg.stage)
    step = metadata["step"]
    embedded = run_dir / rundir.TOKENIZER  # a run that embeds its tokenizer (MaskGIT): the images it tokenized
    tokenizer_source = read_run_config(embedded).data.source if embedded.is_dir() else None
    example = example or example_settings(size=getattr(getattr(cfg, "data", None), "image_size", 28))
    lines = front_matter(cfg, tokenizer_source)
    lines += [f"# {name}", "", stage.card_intro(cfg, metadata), ""]
    if stage.usage:  # ref double-quoted, as ruff formats it
        lines += ["## Use", "", stage.usage.format(ref=json.dumps(name), **example), ""]
    # the data this model was trained and measured on (a MaskGIT's tokenizer_config only names a study's recipe)
    given = {k: v for k, v in metadata["config"].get("data", {}).items() if v is not None and k != "tokenizer_config"}
    if evaluation is not None:  # the splits the evaluation used, where it records them
        given.update({k: evaluation[k] for k in ("eval_split", "reference_split") if evaluation.get(k)})
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
        card = model_card(name, run_dir, bundle.metadata, evaluation, bundle_example(bundle, cfg))
        bundle.save_pretrained(tmp, card=card)
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
