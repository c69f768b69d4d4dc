"""The voice-conditioned MaskGIT report (:mod:`fsq.studies.voice_report`): the exact binomial tail, the table's rows in
the order a reader weighs them, claims whose verdict follows from the numbers beside them, and the README block."""

from __future__ import annotations

import json
import math

import pytest

from fsq.studies import readme
from fsq.studies.voice_report import binomial_tail, claims, markdown_table


def _evaluation(samples: list[tuple[float, float]]) -> dict:
    judge = {
        "heldout_accuracy": 0.339,
        "reconstructed_accuracy": 0.70,
        "num_heldout": 280,
        "num_train": 1400,
        "voices": list(range(28)),
        "chance": 1 / 28,
        "trained_on": "reconstructions",
        "steps": 400,
        "length": 8000,
        "rate": 16000.0,
    }
    rows = [{"guidance": g, "num_samples": 112, "voice_accuracy": a} for g, a in samples]
    return {"signal": "audio", "voice_judge": judge, "guidance": rows}


def test_binomial_tail_is_exact():
    assert binomial_tail(0, 10, 0.3) == pytest.approx(1.0)
    assert binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    assert binomial_tail(2, 3, 0.5) == pytest.approx(0.5)  # P(2) + P(3) = 3/8 + 1/8
    expected = sum(math.comb(112, k) * (1 / 28) ** k * (27 / 28) ** (112 - k) for k in range(9, 113))
    assert binomial_tail(9, 112, 1 / 28) == pytest.approx(expected)
    with pytest.raises(ValueError, match="need 0 <= successes <= trials"):
        binomial_tail(5, 4, 0.5)


def test_table_rows_judge_first_then_samples():
    lines = markdown_table(_evaluation([(0.0, 0.25), (1.0, 0.4)])).splitlines()
    assert lines[0] == "| judged | clips | voice accuracy | chance |"
    assert lines[2] == "| real held-out clips | 280 | 33.9% | 3.6% |"
    assert lines[3] == "| the tokenizer's reconstructions of them | 280 | 70.0% | 3.6% |"
    assert lines[4] == "| samples, guidance 0 | 112 | 25.0% | 3.6% |"
    assert lines[5] == "| samples, guidance 1 | 112 | 40.0% | 3.6% |"
    assert "reconstructions of the training clips (1,400 clips of 28 voices)" in lines[-1]


def test_claims_follow_the_test():
    # 4/112 is what chance gives (expected 4): no; 28/112 is far beyond it: yes
    at_chance, above = claims(_evaluation([(0.0, 4 / 112), (1.0, 28 / 112)]))
    assert "4/112 = 3.6% vs 3.6%" in at_chance and at_chance.endswith("**no**; 5% of the reconstructions' 70.0%.")
    assert "exact one-sided binomial" in above and "one run" in above and "**yes**" in above
    # a trivial sampler that always says one voice: 4 of 112 right (one voice in 28, 4 samples each): no
    assert "**no**" in claims(_evaluation([(0.0, 4 / 112)]))[0]


def test_the_readme_block_renders_an_evaluation_file(tmp_path):
    path = tmp_path / "voices.json"
    path.write_text(json.dumps(_evaluation([(0.0, 0.25)])))
    assert readme.render("table", path).startswith("| judged | clips |")
    assert readme.render("claims", path).startswith("- Samples at guidance 0 speak")
    with pytest.raises(ValueError, match="renders a table or claims"):
        readme.render("budget", path)
