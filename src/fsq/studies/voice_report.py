"""The report of a voice-conditioned MaskGIT's evaluation (its ``eval/step_N.json``): the voice judge's credibility
first, then the samples, and claims that say their test.

``markdown_table(evaluation)``: one row per thing judged, in the order a reader must weigh them: the real held-out
clips (the judge's accuracy on voices it knows, on sentences it never heard), the tokenizer's reconstructions of them
(what the codec leaves of the voice: the ceiling a sampler of its tokens can reach), then the samples at each
guidance weight; each with its clip count, voice accuracy and chance. ``claims(evaluation)``: per guidance weight,
whether the samples name their voice more often than chance, by an exact one-sided binomial test at ``ALPHA``
(single run: the sampler's seed-to-seed spread is not measured), and their accuracy as a share of the ceiling.
Torch-free.
"""

from __future__ import annotations

import math
from typing import Any

from fsq import markdown

ALPHA = 0.01


def binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p), exact."""
    if not 0 <= successes <= trials or not 0.0 <= p <= 1.0:
        raise ValueError(f"need 0 <= successes <= trials and p in [0, 1], got {successes}, {trials}, {p}")
    return min(1.0, sum(math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(successes, trials + 1)))


def _judge_line(judge: dict[str, Any]) -> str:
    trained = judge.get("trained_on", "clips")
    what = "the training clips" if trained == "clips" else "the tokenizer's reconstructions of the training clips"
    return (
        f"The judge: a 1-D conv net on log-mels, trained {judge['steps']} steps on {what} ({judge['num_train']:,} "
        f"clips of {len(judge['voices'])} voices), judging crops of {judge['length']:,} samples at "
        f"{judge['rate']:g} Hz."
    )


def markdown_table(evaluation: dict[str, Any]) -> str:
    """The judged rows of a voice-conditioned MaskGIT's evaluation (see the module docstring), with a line on the
    judge."""
    judge = evaluation["voice_judge"]
    chance = f"{judge['chance']:.1%}"
    n = judge["num_heldout"]
    rows = [
        ["real held-out clips", n, f"{judge['heldout_accuracy']:.1%}", chance],
        ["the tokenizer's reconstructions of them", n, f"{judge['reconstructed_accuracy']:.1%}", chance],
    ]
    for row in evaluation["guidance"]:
        accuracy = f"{row['voice_accuracy']:.1%}"
        rows.append([f"samples, guidance {row['guidance']:g}", row["num_samples"], accuracy, chance])
    head = ["judged", "clips", "voice accuracy", "chance"]
    return "\n".join(markdown.table(head, rows)) + "\n\n" + _judge_line(judge)


def claims(evaluation: dict[str, Any]) -> list[str]:
    """Per guidance weight: are the samples' voices above chance (exact one-sided binomial test at ``ALPHA``, one
    run), and their accuracy as a share of the reconstruction ceiling."""
    judge = evaluation["voice_judge"]
    chance, ceiling = judge["chance"], judge["reconstructed_accuracy"]
    lines = []
    for row in evaluation["guidance"]:
        n = int(row["num_samples"])
        k = round(row["voice_accuracy"] * n)
        p = binomial_tail(k, n, chance)
        verdict = "yes" if p < ALPHA else "no"
        share = f"{row['voice_accuracy'] / ceiling:.0%} of the reconstructions' {ceiling:.1%}" if ceiling > 0 else "-"
        lines.append(
            f"Samples at guidance {row['guidance']:g} speak the voice they were conditioned on more often than chance: "
            f"{k}/{n} = {row['voice_accuracy']:.1%} vs {chance:.1%} (test: exact one-sided binomial against chance, "
            f"p = {p:.2g}, yes when p < {ALPHA:g}; one run, the seed spread is not measured) -> **{verdict}**; {share}."
        )
    return lines
