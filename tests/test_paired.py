"""Paired comparisons over seeds (``fsq.studies.paired``): numbers read from the evaluation files, the verdict by
the studies' one-sided test, the paired differences by seed, and clear errors for a spec that does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsq.studies import paired
from fsq.studies.readme import render, update


def _spec(tmp_path: Path, a: list[float], b: list[float], seeds_b: list[int] | None = None) -> dict:
    seeds_a, seeds_b = [0, 1, 2][: len(a)], seeds_b or [0, 1, 2][: len(b)]
    methods = []
    for label, values, seeds in (("context", a, seeds_a), ("frames", b, seeds_b)):
        files: dict[str, list[str]] = {"test": [], "val": []}
        for split, shift in (("test", 0.0), ("val", -0.2)):
            for seed, value in zip(seeds, values):
                name = f"{label}_s{seed}_{split}.json"
                evaluation = {"psnr": value + shift, "ssim": 0.98, "bits_per_clip": 12653.2}
                (tmp_path / name).write_text(json.dumps(evaluation))
                files[split].append(name)
        methods.append({"label": label, "seeds": seeds, "files": files})
    return {
        "decide": {"key": "psnr", "label": "PSNR dB", "digits": 2},
        "columns": [
            {"key": "ssim", "label": "SSIM", "digits": 3},
            {"key": "bits_per_clip", "label": "bits", "digits": 0},
        ],
        "splits": ["test", "val"],
        "methods": methods,
    }


def test_a_clear_lead_is_yes_with_its_paired_differences(tmp_path):
    data = paired.load(_spec(tmp_path, [33.0, 33.2, 33.1], [32.0, 32.1, 32.05]), tmp_path)
    lines = paired.claims(data)
    assert len(lines) == 2 and "on `test`" in lines[0] and "on `val`" in lines[1]
    assert "33.10 ± 0.10 against 32.05 ± 0.05" in lines[0]
    assert "+1.00 / +1.10 / +1.05, better on 3 of 3: **yes**" in lines[0]
    assert "test: one-sided" in lines[0] and "3/3 seeds" in lines[0]
    table = paired.markdown_table(data)
    assert "| context | 0, 1, 2 | 33.10 ± 0.10 | 33.00 / 33.20 / 33.10 | 32.90 ± 0.10 |" in table
    assert "| 0.980 | 12,653 |" in table  # equal across seeds: the value alone


def test_a_lead_inside_the_seed_spread_is_not_resolved(tmp_path):
    # ahead on every seed, but the mean gap (0.3) is inside twice the standard error of the difference
    data = paired.load(_spec(tmp_path, [32.1, 33.0, 32.2], [32.0, 32.1, 32.05]), tmp_path)
    line = paired.claims(data)[0]
    assert "better on 3 of 3: **not resolved**" in line


def test_a_trailing_method_is_no_and_lower_is_better_flips_the_direction(tmp_path):
    spec = _spec(tmp_path, [31.0, 31.1, 31.05], [32.0, 32.1, 32.05])
    assert "better on 0 of 3: **no**" in paired.claims(paired.load(spec, tmp_path))[0]
    spec["decide"]["lower_is_better"] = True
    line = paired.claims(paired.load(spec, tmp_path))[0]
    assert "is lower than" in line and "better on 3 of 3: **yes**" in line


def test_single_seed_is_marked_and_unshared_seeds_are_not_paired(tmp_path):
    data = paired.load(_spec(tmp_path, [33.0], [32.0]), tmp_path)
    assert "**yes (single seed)**" in paired.claims(data)[0]
    data = paired.load(_spec(tmp_path, [33.0, 33.2], [32.0, 32.1], seeds_b=[1, 2]), tmp_path)
    assert "by seed (1) +1.20, better on 1 of 1" in paired.claims(data)[0]  # only seed 1 ran on both sides


def test_bad_specs_name_the_problem(tmp_path):
    spec = _spec(tmp_path, [33.0, 33.2], [32.0, 32.1])
    spec["methods"][1]["files"]["val"] = spec["methods"][1]["files"]["val"][:1]
    with pytest.raises(ValueError, match="'frames' needs one 'val' evaluation file per seed"):
        paired.load(spec, tmp_path)
    spec = _spec(tmp_path, [33.0, 33.2], [32.0, 32.1])
    (tmp_path / "frames_s1_test.json").write_text(json.dumps({"psnr": 32.0}))
    with pytest.raises(ValueError, match=r"frames_s1_test.json has no number for \['ssim', 'bits_per_clip'\]"):
        paired.load(spec, tmp_path)


def test_readme_blocks_render_from_the_files(tmp_path):
    spec = _spec(tmp_path, [33.0, 33.2, 33.1], [32.0, 32.1, 32.05])
    (tmp_path / "paired.json").write_text(json.dumps({"paired": spec}))
    doc = tmp_path / "README.md"
    doc.write_text("<!-- fsq:table paired.json -->\n<!-- /fsq -->\n<!-- fsq:claims paired.json -->\n<!-- /fsq -->\n")
    assert update(doc) == ["table paired.json", "claims paired.json"]
    text = doc.read_text()
    assert "| context | 0, 1, 2 |" in text and "- context is higher than frames" in text
    assert update(doc, check=True) == []
    (tmp_path / "context_s2_test.json").write_text(json.dumps({"psnr": 30.0, "ssim": 0.9, "bits_per_clip": 1.0}))
    assert update(doc, check=True) == ["table paired.json", "claims paired.json"]  # a changed file shows as stale
    with pytest.raises(ValueError, match="renders a table or claims"):
        render("budget", tmp_path / "paired.json")
