"""README tables and claims generated from studies' ``results.json`` files, so the README and the code never disagree.

A block in a Markdown file::

    <!-- fsq:table docs/results/demo.json -->
    ... (generated) ...
    <!-- /fsq -->

is replaced by the table (``fsq:table``), the claims checked against the measurements (``fsq:claims``) or the
budget and measured time (``fsq:budget``: the study's ``budget`` and ``timing``) that the study's own report
writes, rebuilt from the results file named (relative to the Markdown file). ``fsq:card`` names a shipped
bundle's ``eval.json``: the tokenizer's numbers as its model card shows them. Benchmark results (a top-level
``benchmark``: ``benchmarks/results/data*.json``) render as tables by :mod:`fsq.studies.bench_tables`.
A voice-conditioned MaskGIT's evaluation file (``voice_judge``) renders as :mod:`fsq.studies.voice_report`'s table
and claims; a ``paired`` comparison over seeds as :mod:`fsq.studies.paired`'s. ``fsq readme`` rewrites the
blocks; ``fsq readme --check`` fails when one is stale. Torch-free.
"""

from __future__ import annotations

import re
from pathlib import Path

from fsq import markdown
from fsq.anchors.report import anchors_table
from fsq.io import read_json, write_text_atomic
from fsq.studies.common import timing_line

BLOCK = re.compile(r"(<!-- fsq:(table|claims|budget|card|trials) (\S+) -->\n)(.*?)(<!-- /fsq -->)", re.S)


def render(what: str, results_path: Path) -> str:
    """The Markdown of one block: ``table``, ``claims``, ``budget`` or ``trials`` (a study's tuning trials, where it
    has them) of the study whose ``results.json`` is given."""
    from fsq.studies import KINDS

    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path} does not exist (publish a study's results.json there first)")
    data = read_json(results_path, "a study's results")
    if what == "card":  # a shipped bundle's eval.json: the numbers its model card shows
        return card_table(data, results_path.parent.name)
    if "voice_judge" in data:  # a voice-conditioned MaskGIT's evaluation: the judge, then the samples
        from fsq.studies import voice_report

        if what not in ("table", "claims"):
            raise ValueError(f"{results_path}: a voice-conditioned MaskGIT's evaluation renders a table or claims")
        return (
            voice_report.markdown_table(data)
            if what == "table"
            else "\n".join(f"- {line}" for line in voice_report.claims(data))
        )
    if "paired" in data:  # a paired comparison over seeds, read from the evaluation files it names
        from fsq.studies import paired

        if what not in ("table", "claims"):
            raise ValueError(f"{results_path}: a paired comparison renders a table or claims, not {what}")
        loaded = paired.load(data["paired"], results_path.parent)
        return (
            paired.markdown_table(loaded)
            if what == "table"
            else "\n".join(f"- {line}" for line in paired.claims(loaded))
        )
    if "benchmark" in data:  # benchmarks/data*.py results: tables only
        from fsq.studies.bench_tables import markdown_table

        if what != "table":
            raise ValueError(f"{results_path}: benchmark results render as a table, not {what}")
        return markdown_table(data)
    kind, rows = data["study"]["kind"], data["results"]
    module = KINDS[kind]
    if what == "budget":
        timing = data["study"].get("timing")
        return data["study"].get("budget", "") + (f"\n{timing_line(timing)}" if timing else "")
    if what == "table":
        return module.markdown_table(rows)
    if what == "trials":
        if not hasattr(module, "trials_markdown"):
            raise ValueError(f"{results_path}: the {kind} study has no tuning trials to show")
        return module.trials_markdown(data["study"])
    claims = module.level_claims(rows) if kind == "levels" else module.claims(rows)
    return "\n".join(f"- {line}" for line in claims)


def update(markdown: str | Path, check: bool = False) -> list[str]:
    """Regenerate every block of ``markdown``; returns the results files of the blocks that were stale.

    With ``check`` nothing is written.
    """
    path = Path(markdown)
    text = path.read_text()
    stale: list[str] = []

    def replace(match: re.Match[str]) -> str:
        opening, what, source, body, closing = match.groups()
        fresh = render(what, path.parent / source) + "\n"
        if fresh != body:
            stale.append(f"{what} {source}")
        return opening + fresh + closing

    new = BLOCK.sub(replace, text)
    if stale and not check:
        write_text_atomic(new, path)
    return stale


def card_table(evaluation: dict, model: str) -> str:
    """A tokenizer bundle's evaluation (its ``eval.json``) as one Markdown table row under its header (video
    tokenizers: :func:`video_card_table`)."""
    e = evaluation
    if e.get("signal") == "video":
        return video_card_table(e, model)
    fid = f"{e['rfid']:.1f} ({e['fid_samples']} samples)" if e.get("rfid") is not None else "-"
    cells = [
        f"`{model}` ({e['quantizer'].upper()} {e.get('levels') or e['codebook_size']})",
        f"{e['source']} `{e['split']}` ({e['num_samples']:,} images), step {e['step']}",
        f"{e['psnr']:.2f}",
        f"{e['ssim']:.3f}",
        f"{e['codes_used']} / {e['codebook_size']} ({e['usage']:.1%})",
        f"{e['perplexity']:.0f}",
        fid,
        f"{e['parameters']['total']:,}",
    ]
    head = ["model", "evaluated on", "PSNR dB", "SSIM", "codes used", "perplexity", "rFID", "parameters"]
    if e.get("perceptual") is not None:  # eval.perceptual: after SSIM
        cells.insert(4, f"{e['perceptual']:.3f}")
        head.insert(4, f"perceptual distance ({e.get('perceptual_network', 'EfficientNet-Lite0')}, not LPIPS)")
    return "\n".join(markdown.table(head, [cells])) + ("\n\n" + anchors_table(e, model) if e.get("anchors") else "")


def video_card_table(evaluation: dict, model: str) -> str:
    """A video tokenizer bundle's evaluation: per-frame PSNR and SSIM, temporal PSNR (of frame differences), and the
    naive codec's PSNR at the same bits per clip on the same clips."""
    e = evaluation
    naive = e.get("naive") or {}
    cells = [
        f"`{model}` ({e['quantizer'].upper()} {e.get('levels') or e['codebook_size']})",
        f"{e['source']} `{e['split']}` ({e['num_samples']:,} clips), step {e['step']}",
        f"{e['bits_per_clip']:,.0f}",
        f"{e['psnr']:.2f}",
        f"{e['ssim']:.3f}",
        f"{e['temporal_psnr']:.2f}",
        f"{naive['psnr']:.2f}" if "psnr" in naive else "-",
        f"{e['codes_used']} / {e['codebook_size']} ({e['usage']:.1%})",
        f"{e['parameters']['total']:,}",
    ]
    head = [
        "model",
        "evaluated on",
        "bits per clip",
        "PSNR dB (per frame)",
        "SSIM",
        "temporal PSNR dB",
        "naive codec PSNR dB (equal bits)",
        "codes used",
        "parameters",
    ]
    return "\n".join(markdown.table(head, [cells]))
