"""Paired comparisons over seeds, read from the runs' own evaluation files, for README blocks (torch-free).

A results file with a top-level ``paired`` section names, per method and split, one evaluation JSON per seed
(paths relative to the results file)::

    {"paired": {
        "decide": {"key": "psnr", "label": "PSNR dB", "digits": 2, "lower_is_better": false},
        "columns": [{"key": "ssim", "label": "SSIM", "digits": 3}],
        "splits": ["test", "val"],
        "methods": [
            {"label": "video, time x1", "seeds": [0, 1, 2], "files": {"test": ["v_s0.json", ...], "val": [...]}},
            {"label": "per-frame", "seeds": [0, 1, 2], "files": {...}}]}}

The table gives each method's mean ± std over its seeds of the deciding metric per split (with the per-seed
values) and of the other columns on the first split. The claims compare the first method with each other one on
the deciding metric, per split, by the studies' one-sided test (:func:`fsq.studies.verdicts.better`), with the
differences of seeds run by both (paired by seed) beside it. No number is typed: every one is read from the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsq import markdown
from fsq.io import read_json
from fsq.studies.common import mean_std, pm
from fsq.studies.verdicts import Side, better

__all__ = ["claims", "load", "markdown_table"]


def load(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """``spec`` (a ``paired`` section) with each method's ``values``: split -> metric key -> per-seed values read
    from its files (relative to ``base``). Refuses a method without files for a split, a file count that is not
    its seed count, and a file without a metric the spec names."""
    keys = [spec["decide"]["key"], *(c["key"] for c in spec.get("columns", []))]
    methods = []
    for method in spec["methods"]:
        seeds = list(method["seeds"])
        values: dict[str, dict[str, list[float]]] = {}
        for split in spec["splits"]:
            files = method["files"].get(split)
            if not files or len(files) != len(seeds):
                raise ValueError(
                    f"paired comparison: {method['label']!r} needs one {split!r} evaluation file per seed {seeds}, "
                    f"got {files!r}"
                )
            evaluations = [read_json(base / f, f"an evaluation of {method['label']!r}") for f in files]
            for f, e in zip(files, evaluations):
                missing = [k for k in keys if not isinstance(e.get(k), (int, float))]
                if missing:
                    raise ValueError(f"paired comparison: {base / f} has no number for {missing}")
            values[split] = {k: [float(e[k]) for e in evaluations] for k in keys}
        methods.append({**method, "seeds": seeds, "values": values})
    return {**spec, "methods": methods}


def _side(values: list[float]) -> Side:
    mean, std = mean_std(values)
    assert mean is not None
    return Side(mean, std, len(values))


def markdown_table(data: dict[str, Any]) -> str:
    """One row per method: seeds, the deciding metric per split (mean ± std, then each seed's value) and the other
    columns on the first split."""
    decide, columns, splits = data["decide"], data.get("columns", []), data["splits"]
    digits = int(decide.get("digits", 2))
    head = ["method", "seeds"]
    for split in splits:
        head += [f"{decide['label']} `{split}`", "per seed"]
    head += [f"{c['label']} `{splits[0]}`" for c in columns]
    rows = []
    for m in data["methods"]:
        cells: list[object] = [m["label"], ", ".join(str(s) for s in m["seeds"])]
        for split in splits:
            values = m["values"][split][decide["key"]]
            cells += [pm(*mean_std(values), digits), " / ".join(f"{v:.{digits}f}" for v in values)]
        for c in columns:
            mean, std = mean_std(m["values"][splits[0]][c["key"]])
            d = int(c.get("digits", 2))
            cells.append(f"{mean:,.{d}f}" if std is None or std < 0.5 * 10**-d else pm(mean, std, d))
        rows.append(cells)
    return "\n".join(markdown.table(head, rows))


def claims(data: dict[str, Any]) -> list[str]:
    """The first method against each other one on the deciding metric, per split: the means, the paired
    differences by seed, and the one-sided verdict with its test."""
    decide, splits = data["decide"], data["splits"]
    key, digits, lower = decide["key"], int(decide.get("digits", 2)), bool(decide.get("lower_is_better", False))
    first, *others = data["methods"]
    word = "lower" if lower else "higher"
    out = []
    for other in others:
        shared = [s for s in first["seeds"] if s in other["seeds"]]
        for split in splits:
            a, b = first["values"][split][key], other["values"][split][key]
            side_a, side_b = _side(a), _side(b)
            verdict = better(side_a, side_b, lower_is_better=lower)
            diffs = [a[first["seeds"].index(s)] - b[other["seeds"].index(s)] for s in shared]
            ahead = sum(1 for d in diffs if (d < 0 if lower else d > 0))
            paired = " / ".join(f"{d:+.{digits}f}" for d in diffs)
            out.append(
                f"{first['label']} is {word} than {other['label']} in {decide['label']} on `{split}`: "
                f"{pm(side_a.mean, side_a.std, digits)} against {pm(side_b.mean, side_b.std, digits)}; "
                f"by seed ({', '.join(map(str, shared))}) "
                f"{paired}, better on {ahead} of {len(diffs)}: {verdict.bold()} ({verdict.test()})"
            )
    return out
