"""How every study decides a claim from means over seeds, and says which test it used (torch-free).

A claim compares two measured means (``a`` against ``b``, each a mean over its seeds with a sample standard
deviation). The standard error of their difference is ``sqrt(std_a^2 / n_a + std_b^2 / n_b)``; it is known when
both sides have two seeds or more. Two tests:

- **one-sided** (a direction: "a is lower than b"): **yes** when the difference lies on the claimed side by more
  than ``SE_MULTIPLE`` standard errors, **no** when it lies on the other side by as much, **not resolved** when it
  lies inside that band (a gap inside the run-to-run spread decides nothing);
- **two-sided with a margin** (parity: "a matches b within m"): **yes** when the whole band (difference plus or
  minus ``SE_MULTIPLE`` standard errors) lies inside ``[-m, m]``, **no** when it lies wholly outside, **not resolved**
  otherwise.

With a single seed on either side the spread is unknown: the verdict is the point comparison, marked
**single seed**. Every verdict carries the text of its test (:meth:`Verdict.test`), which claim lines print beside
the numbers they were decided on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SE_MULTIPLE = 2.0  # a difference counts when it lies more than twice its standard error from the bound
YES, NO, UNRESOLVED = "yes", "no", "not resolved"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the mean over ``seeds`` runs and their sample std (``None`` for one run)."""

    mean: float
    std: float | None
    seeds: int

    @classmethod
    def of(cls, row: dict, key: str) -> Side:
        """The side of an aggregated study row (``key``, ``<key>_std`` and ``seeds`` as :func:`over_seeds` gives)."""
        seeds = row.get("seeds")
        count = len(seeds) if isinstance(seeds, list) else 1
        return cls(float(row[key]), row.get(f"{key}_std"), count)


@dataclass(frozen=True)
class Verdict:
    """A decided claim: ``word`` (yes / no / not resolved), the difference, its standard error and the test run."""

    word: str
    difference: float
    standard_error: float | None
    seeds: tuple[int, int]
    kind: str  # "one-sided" or "two-sided"
    margin: float | None = None

    @property
    def single_seed(self) -> bool:
        return self.standard_error is None

    def bold(self) -> str:
        """The verdict as a report prints it: ``**yes**``, ``**not resolved**``, ``**yes (single seed)**``."""
        return f"**{self.word}{' (single seed)' if self.single_seed else ''}**"

    def test(self) -> str:
        """The test in words: its kind, margin, band and seeds."""
        seeds = "/".join(str(n) for n in self.seeds)
        margin = f", margin ±{self.margin:.3g}" if self.margin is not None else ""
        if self.single_seed:
            return f"test: {self.kind}{margin}, {seeds} seed(s): single seed, the run-to-run spread is not measured"
        return (
            f"test: {self.kind}{margin}, difference {self.difference:+.3g} ± {SE_MULTIPLE:g} x its standard error "
            f"{self.standard_error:.3g} over {seeds} seeds"
        )


def standard_error(a: Side, b: Side) -> float | None:
    """The standard error of ``a.mean - b.mean`` (``None`` unless both sides have two seeds or more)."""
    if a.std is None or b.std is None or a.seeds < 2 or b.seeds < 2:
        return None
    return math.sqrt(a.std**2 / a.seeds + b.std**2 / b.seeds)


def lower(a: Side, b: Side) -> Verdict:
    """One-sided: is ``a`` lower than ``b``?"""
    return _one_sided(b.mean - a.mean, a, b)


def higher(a: Side, b: Side) -> Verdict:
    """One-sided: is ``a`` higher than ``b``?"""
    return _one_sided(a.mean - b.mean, a, b)


def better(a: Side, b: Side, lower_is_better: bool) -> Verdict:
    """One-sided: is ``a`` better than ``b`` (lower or higher, as the metric says)?"""
    return lower(a, b) if lower_is_better else higher(a, b)


def _one_sided(margin_for: float, a: Side, b: Side) -> Verdict:
    """``margin_for`` is the difference signed so that positive means the claim holds."""
    return positive(margin_for, standard_error(a, b), (a.seeds, b.seeds), difference=a.mean - b.mean)


def positive(value: float, se: float | None, seeds: tuple[int, int], difference: float | None = None) -> Verdict:
    """One-sided: is ``value`` (a difference, or a difference of differences, with standard error ``se``) above 0?

    ``difference`` is what the verdict reports (``value`` unless given).
    """
    band = 0.0 if se is None else SE_MULTIPLE * se
    word = YES if value > band else NO if value < -band else UNRESOLVED
    if band == 0 and value == 0:  # a tie with no spread to hide in: the direction does not hold
        word = NO
    return Verdict(word, value if difference is None else difference, se, seeds, "one-sided")


def matches(a: Side, b: Side, margin: float) -> Verdict:
    """Two-sided with a margin: does ``a`` equal ``b`` within ``± margin``?"""
    if not margin > 0:
        raise ValueError(f"a parity margin must be positive, got {margin}")
    diff = a.mean - b.mean
    se = standard_error(a, b)
    band = 0.0 if se is None else SE_MULTIPLE * se
    if abs(diff) + band <= margin:
        word = YES
    elif abs(diff) - band > margin:
        word = NO
    else:
        word = UNRESOLVED
    return Verdict(word, diff, se, (a.seeds, b.seeds), "two-sided", margin)


def usage_cap(codebook_size: int, tokens: int) -> float:
    """The largest usage countable from ``tokens`` tokens: each token shows one code, so at most
    ``min(K, tokens) / K`` of a codebook of ``K`` codes can be seen used."""
    if codebook_size <= 0 or tokens < 0:
        raise ValueError(f"usage_cap needs a positive codebook size and a token count, got {codebook_size}, {tokens}")
    return min(codebook_size, tokens) / codebook_size
