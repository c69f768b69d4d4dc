"""Choosing FSQ levels for a target codebook size (paper Table 1 and App. A.4.1).

``levels_for_codebook_size(n)`` returns the paper's recommendation where the paper gives one, and otherwise the
level list chosen by one documented rule:

1. Candidates are non-increasing level lists with every ``L_i`` in ``[min_level, max_level]`` (default 5..8,
   the paper's heuristic "use L_i >= 5"; Fig. 10 shows L_i < 5 is subpar).
2. The candidate whose product is closest to ``n`` in log scale wins; ties go to fewer channels, then to the
   lexicographically larger list.
3. When ``n`` is below ``min_level`` (no candidate can come close), the single channel ``[n]`` is returned.

The paper's table (main text Table 1, extended in App. A.4.1; the appendix's ``2^12 -> [7,5,5,5]`` is a typo for
``[7,5,5,5,5]``, which Table 1 and the UViM experiments use)::

    2^4 [5,3]  2^6 [8,8]  2^8 [8,6,5]  2^9 [8,8,8]  2^10 [8,5,5,5]  2^11 [8,8,6,5]
    2^12 [7,5,5,5,5]  2^14 [8,8,8,6,5]  2^16 [8,8,8,5,5,5]
"""

from __future__ import annotations

import math
from functools import lru_cache

PAPER_LEVELS: dict[int, tuple[int, ...]] = {
    2**4: (5, 3),
    2**6: (8, 8),
    2**8: (8, 6, 5),
    2**9: (8, 8, 8),
    2**10: (8, 5, 5, 5),
    2**11: (8, 8, 6, 5),
    2**12: (7, 5, 5, 5, 5),
    2**14: (8, 8, 8, 6, 5),
    2**16: (8, 8, 8, 5, 5, 5),
}


def levels_for_codebook_size(
    n: int, *, min_level: int = 5, max_level: int = 8, use_paper_table: bool = True
) -> list[int]:
    """FSQ levels whose product approximates the codebook size ``n`` (see the module docstring for the rule).

    Args:
        n: target codebook size, an integer in ``[2, 2**62]``.
        min_level: smallest level allowed in searched candidates (default 5).
        max_level: largest level allowed in searched candidates (default 8).
        use_paper_table: return the paper's recommendation when ``n`` is in its table (default).

    Returns:
        The levels, largest first, e.g. ``levels_for_codebook_size(1024) == [8, 5, 5, 5]``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 2**62:
        raise ValueError(f"codebook size must be an integer in [2, 2**62], got {n!r}")
    if not 2 <= min_level <= max_level:
        raise ValueError(f"need 2 <= min_level <= max_level, got min_level={min_level}, max_level={max_level}")
    if use_paper_table and n in PAPER_LEVELS:
        return list(PAPER_LEVELS[n])
    if n < min_level:
        return [n]
    return list(_search(n, min_level, max_level))


@lru_cache(maxsize=256)
def _search(n: int, min_level: int, max_level: int) -> tuple[int, ...]:
    target = math.log2(n)
    best_key, best = None, None
    max_channels = math.ceil(target / math.log2(min_level)) + 1
    for channels in range(1, max_channels + 1):
        for candidate in _non_increasing(channels, min_level, max_level):
            distance = abs(sum(math.log2(level) for level in candidate) - target)
            key = (round(distance, 12), channels, tuple(-level for level in candidate))
            if best_key is None or key < best_key:
                best_key, best = key, candidate
    assert best is not None  # min_level <= max_level: channels=1 always yields a candidate
    return best


def _non_increasing(length: int, low: int, high: int):
    """All non-increasing tuples of ``length`` integers in ``[low, high]``."""
    if length == 0:
        yield ()
        return
    for first in range(high, low - 1, -1):
        for rest in _non_increasing(length - 1, low, first):
            yield (first, *rest)
