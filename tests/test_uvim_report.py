"""The UViM study's report half (torch-free): seeds grouped into mean ± std, and claims that compare each
difference with the run-to-run spread."""

from __future__ import annotations

import math

import pytest

from fsq.studies.uvim import claims, group, markdown_table


def _row(task, variant, seed, prediction, usage=0.5, splits=None, oracle=None, metric="RMSE (m)"):
    return {
        "name": f"{task}_{variant}_s{seed}",
        "task": task,
        "variant": variant,
        "seed": seed,
        "metric": metric,
        "prediction": prediction,
        "oracle": prediction / 2 if oracle is None else oracle,
        "baseline": 0.7,
        "codebook_size": 4096,
        "usage": usage,
        "predicted_usage": 0.01,
        "splits": splits,
        "code_accuracy": 0.5,
        "seconds": 60.0,
    }


def _depth(fsq, vq, nosplit):
    return [
        *[_row("depth", "FSQ", s, p) for s, p in enumerate(fsq)],
        *[_row("depth", "VQ", s, p, usage=0.6, splits=4000) for s, p in enumerate(vq)],
        *[_row("depth", "VQ, no splitting", s, p, usage=0.01, splits=0) for s, p in enumerate(nosplit)],
    ]


def test_group_gives_mean_and_sample_std_per_variant():
    groups = group(_depth([0.5, 0.6, 0.7], [0.4, 0.4, 0.4], [0.9]))
    assert [(g["variant"], g["seeds"]) for g in groups] == [
        ("FSQ", [0, 1, 2]),
        ("VQ", [0, 1, 2]),
        ("VQ, no splitting", [0]),
    ]
    assert math.isclose(groups[0]["prediction"], 0.6) and math.isclose(groups[0]["prediction_std"], 0.1)
    assert groups[1]["prediction_std"] == 0 and groups[2]["prediction_std"] is None  # one seed: no spread
    table = markdown_table(_depth([0.5, 0.6, 0.7], [0.4, 0.4, 0.4], [0.9]))
    assert "| depth | FSQ | RMSE (m) | 3 | 0.600 ± 0.100 | 0.300 ± 0.050 | 0.700 | 4096 | 50.00 ± 0.00% |" in table
    assert table.splitlines()[2].endswith("| 1.0 |")  # 60 s per run
    assert "| depth | VQ, no splitting | RMSE (m) | 1 | 0.900 | 0.450 |" in table


def test_a_difference_inside_the_spread_is_not_claimed():
    # no splitting is worse by 0.05 on average, but the seeds spread by 0.1: the claim is not decided
    lines = claims(_depth([0.5, 0.5, 0.5], [0.4, 0.5, 0.6], [0.45, 0.55, 0.65]))
    line = next(x for x in lines if "without splitting predicts worse" in x)
    assert "not larger than twice its standard error" in line and "**within the run-to-run spread**" in line
    # the same mean difference with tight seeds is decided
    lines = claims(_depth([0.5, 0.5, 0.5], [0.499, 0.5, 0.501], [0.549, 0.55, 0.551]))
    line = next(x for x in lines if "without splitting predicts worse" in x)
    assert "is larger than twice" in line and line.endswith("**yes**.")


@pytest.mark.parametrize(("splits", "verdict"), [(4000, "yes"), (0, "no")])
def test_splitting_and_usage_claims(splits, verdict):
    rows = _depth([0.5], [0.4], [0.45])
    rows[1]["splits"] = splits
    lines = claims(rows)
    assert next(x for x in lines if "splitting acts" in x).endswith(f"**{verdict}**.")
    usage = next(x for x in lines if "uses fewer codes" in x)
    assert "1.00% vs 60.00%" in usage and usage.endswith("**yes**.")
    assert "one seed: the run-to-run spread is not measured" in next(x for x in lines if "predicts worse" in x)


def test_fsq_vs_vq_reports_the_direction_and_the_oracle():
    lines = claims(_depth([0.44, 0.44], [0.4, 0.4], [0.45, 0.45]))
    line = next(x for x in lines if "FSQ within 10% of VQ" in x)
    assert "FSQ 10.0% worse" in line and line.endswith("**yes**.")
    assert any(x.startswith("depth: Stage I alone") and "FSQ worse by 0.020" in x for x in lines)


def test_a_collapsed_language_model_is_named():
    rows = _depth([0.5], [0.4], [0.45])  # predicted usage 1% vs the oracle's 50-60%
    rows[0]["predicted_usage"] = 0.4
    lines = [x for x in claims(rows) if "not a paper claim" in x]
    assert len(lines) == 2 and "collapsed" not in lines[0] and "80% of what the oracle uses" in lines[0]
    assert "2% of what the oracle uses" in lines[1] and "Stage II collapsed" in lines[1]
