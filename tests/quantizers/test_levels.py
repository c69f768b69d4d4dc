"""levels_for_codebook_size: the paper's table exactly, and the documented rule elsewhere."""

from __future__ import annotations

import itertools
import math

import pytest

from fsq.quantizers.levels import PAPER_LEVELS, levels_for_codebook_size


@pytest.mark.parametrize(
    ("size", "levels"),
    [
        (2**8, [8, 6, 5]),
        (2**10, [8, 5, 5, 5]),
        (2**12, [7, 5, 5, 5, 5]),
        (2**14, [8, 8, 8, 6, 5]),
        (2**16, [8, 8, 8, 5, 5, 5]),
        (2**4, [5, 3]),
        (2**6, [8, 8]),
        (2**9, [8, 8, 8]),
        (2**11, [8, 8, 6, 5]),
    ],
)
def test_paper_table(size, levels):
    assert levels_for_codebook_size(size) == levels


@pytest.mark.parametrize("size", [100, 300, 2**13, 2**15, 5000, 2**20, 2**30, 2**62])
def test_rule_levels_at_least_five_and_product_close(size):
    levels = levels_for_codebook_size(size)
    assert all(5 <= level <= 8 for level in levels)
    assert levels == sorted(levels, reverse=True)
    tolerance = 0.2 if size >= 1000 else 0.5  # few products exist below 1000 (e.g. 100: 64 or 125)
    assert abs(math.log2(math.prod(levels)) - math.log2(size)) < tolerance


def test_rule_picks_the_closest_product():
    # brute force over all lists of 1..4 levels in [5, 8]: nothing is closer to 300 than the chosen one
    chosen = math.prod(levels_for_codebook_size(300))
    best = min(
        abs(math.log2(math.prod(c) / 300)) for n in range(1, 5) for c in itertools.product(range(5, 9), repeat=n)
    )
    assert abs(math.log2(chosen / 300)) == pytest.approx(best)


def test_exact_powers_found_when_possible_and_table_can_be_bypassed():
    assert levels_for_codebook_size(2**15) == [8, 8, 8, 8, 8]
    assert levels_for_codebook_size(2**12, use_paper_table=False) == [8, 8, 8, 8]
    assert set(PAPER_LEVELS) == {2**k for k in (4, 6, 8, 9, 10, 11, 12, 14, 16)}


def test_small_and_invalid_sizes():
    assert levels_for_codebook_size(3) == [3]
    for bad in (1, 0, 2**63, 2.5, True):
        with pytest.raises(ValueError, match="codebook size"):
            levels_for_codebook_size(bad)
    with pytest.raises(ValueError, match="min_level"):
        levels_for_codebook_size(100, min_level=9, max_level=8)
