"""The tests every study's claims use: one-sided directions and two-sided parity against the seeds' spread."""

from __future__ import annotations

import math

import pytest

from fsq.studies import verdicts
from fsq.studies.verdicts import Side


def test_standard_error_of_a_difference_needs_two_seeds_on_both_sides():
    a, b = Side(1.0, 0.3, 3), Side(0.5, 0.4, 4)
    assert verdicts.standard_error(a, b) == pytest.approx(math.sqrt(0.09 / 3 + 0.16 / 4))
    assert verdicts.standard_error(Side(1.0, None, 1), b) is None


@pytest.mark.parametrize(
    ("a", "b", "word"),
    [
        (Side(1.0, 0.1, 3), Side(2.0, 0.1, 3), "yes"),  # 1.0 below, band 2 x 0.082
        (Side(2.0, 0.1, 3), Side(1.0, 0.1, 3), "no"),
        (Side(1.9, 0.1, 3), Side(2.0, 0.1, 3), "not resolved"),  # 0.1 inside the band 0.163
    ],
)
def test_one_sided(a, b, word):
    verdict = verdicts.lower(a, b)
    assert verdict.word == word and verdict.kind == "one-sided" and not verdict.single_seed
    assert verdict.bold() == f"**{word}**"
    assert verdicts.higher(b, a).word == word  # the same claim read the other way


def test_a_single_seed_is_a_point_comparison_marked_as_such():
    verdict = verdicts.lower(Side(1.9, None, 1), Side(2.0, 0.1, 3))
    assert verdict.word == "yes" and verdict.single_seed and verdict.bold() == "**yes (single seed)**"
    assert "single seed, the run-to-run spread is not measured" in verdict.test()
    assert verdicts.lower(Side(2.0, None, 1), Side(2.0, None, 1)).word == "no"  # a tie does not hold a direction


@pytest.mark.parametrize(
    ("a", "b", "word"),
    [
        (Side(1.02, 0.01, 3), Side(1.0, 0.01, 3), "yes"),  # 0.02 + 2 x 0.0082 = 0.036 <= 0.05
        (Side(1.2, 0.01, 3), Side(1.0, 0.01, 3), "no"),  # 0.2 - 0.016 > 0.05
        (Side(0.8, 0.01, 3), Side(1.0, 0.01, 3), "no"),  # two-sided: better by more than the margin is no match
        (Side(1.04, 0.05, 3), Side(1.0, 0.05, 3), "not resolved"),  # the band straddles the margin
    ],
)
def test_parity_is_two_sided(a, b, word):
    verdict = verdicts.matches(a, b, margin=0.05)
    assert verdict.word == word and verdict.kind == "two-sided"
    assert "margin ±0.05" in verdict.test() and "over 3/3 seeds" in verdict.test()


def test_parity_needs_a_positive_margin():
    with pytest.raises(ValueError, match="margin must be positive"):
        verdicts.matches(Side(1.0, None, 1), Side(1.0, None, 1), margin=0.0)


def test_positive_of_a_difference_of_differences():
    assert verdicts.positive(0.3, 0.1, (3, 3)).word == "yes"
    assert verdicts.positive(0.15, 0.1, (3, 3)).word == "not resolved"
    assert verdicts.positive(-0.3, None, (1, 1)).bold() == "**no (single seed)**"
    assert verdicts.positive(0.0, 0.0, (2, 2)).word == "no"  # a tie with no spread does not hold a direction


def test_side_of_an_aggregated_row():
    side = Side.of({"psnr": 20.0, "psnr_std": 0.5, "seeds": [0, 1, 2]}, "psnr")
    assert side == Side(20.0, 0.5, 3)
    assert Side.of({"psnr": 20.0}, "psnr") == Side(20.0, None, 1)


def test_usage_cap():
    assert verdicts.usage_cap(65536, 48000) == pytest.approx(48000 / 65536)
    assert verdicts.usage_cap(1024, 48000) == 1.0
    with pytest.raises(ValueError):
        verdicts.usage_cap(0, 10)
