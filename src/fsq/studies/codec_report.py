"""The codec study's rows, bitrate-curve table and claims (torch-free): tokenizer runs beside Codec2 and Opus on
the same held-out clips.

Rows come from each run's newest evaluation (``eval/step_N.json``): one row per tokenizer run (its bits per
second, SI-SNR, mel and STFT distances, PESQ / STOI where measured, codes used), one per depth a residual run was
also scored at (``eval.depths``: its first ``k`` stages decoded, ``k / stages`` of its bits), one for its decoded
unquantized latent (``eval.unquantized``: the ceiling its depths approach, no bits, listed last), and one per classical
anchor (``anchors`` of the evaluation that ran them; their bits per second are measured from the encoded files).
Runs are joined over seeds (mean ``± std``). Anchors are deterministic: one value per clip set, no seeds.

Every claim states its test (:mod:`fsq.studies.verdicts`, as every study): one-sided, the difference of the
tokenizer's mean over seeds from the anchor's value decided against twice its standard error (the seeds' spread;
the anchor is deterministic, one value on these clips), a single seed marked as such; and the seeds. A tokenizer is
compared with the anchor of the lowest measured bitrate (codec frames or packets) at or above its own (equal or
higher bitrate: the anchor is never handicapped).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from fsq import markdown
from fsq.studies.common import fmt, over_seeds, pm
from fsq.studies.verdicts import Side, Verdict, better, positive

METRICS = ("si_snr_db", "mel_distance", "stft_distance", "pesq_wb", "stoi")
# metric -> (label, lower is better)
CLAIM_METRICS: dict[str, tuple[str, bool]] = {
    "mel_distance": ("mel distance", True),
    "stoi": ("STOI", False),
    "pesq_wb": ("PESQ-wb", False),
}
COHERENCE_DB = 0.0  # SI-SNR above 0 dB: the waveform is coherent, not only its spectrum
EQUAL_RATE = 0.01  # two tokenizers spend equal bits when their bits/s differ by at most this share


def run_row(run: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """A tokenizer run's row from its evaluation (the same keys as an anchor's row, for one CSV)."""
    return {
        "kind": "tokenizer",
        "name": run["name"],
        "label": run["label"],
        "seed": run.get("seed", 0),
        "clips": run.get("clips", "-"),
        "bits_per_second": result.get("bits_per_second"),
        "file_bits_per_second": None,
        "nominal_bits_per_second": None,
        **{key: result.get(key) for key in METRICS},
        "codes_used": result.get("codes_used"),
        "codes_used_per_stage": result.get("codes_used_per_stage"),  # a residual run: each codebook's (stage's)
        "codebook_size": result.get("codebook_size"),
        "num_samples": result.get("num_samples"),
        "step": result.get("step"),
        "depth": result.get("depth"),  # a residual run decoded from its first stages only (None: all of them)
        "quantizer": result.get("quantizer"),  # the family (fsq, residual_fsq, residual_vq, ...)
    }


def depth_rows(run: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """A residual tokenizer's rows decoded from its first ``k`` stages only (``depths`` of an evaluation with
    ``eval.depths``): one per depth, named ``NAME@depthK`` and labelled ``LABEL, depth K``."""
    rows = []
    for entry in result.get("depths") or []:
        k = entry["depth"]
        own = {**run, "name": f"{run['name']}@depth{k}", "label": f"{run['label']}, depth {k}"}
        stages = result.get("codes_used_per_stage")
        # each codebook's count for the first k; the union over all stages is the full run's, not this depth's
        counts = {"codes_used_per_stage": stages[:k], "codes_used": None} if stages else {}
        rows.append(run_row(own, {**result, **entry, **counts}))
    return rows


def unquantized_rows(run: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """A residual tokenizer's decoded unquantized latent (``unquantized`` of an evaluation with
    ``eval.unquantized``): one row of kind ``ceiling``, named ``NAME@unquantized``, no bits (it is not a code), the
    ceiling every depth of that run approaches; none otherwise."""
    entry = result.get("unquantized")
    if not entry:
        return []
    own = {**run, "name": f"{run['name']}@unquantized", "label": f"{run['label']}, unquantized"}
    blank = {"bits_per_second": None, "codes_used": None, "codes_used_per_stage": None, "codebook_size": None}
    return [{**run_row(own, {**result, **entry, **blank}), "kind": "ceiling"}]


def anchor_rows(run: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """The anchors' rows of an evaluation that ran them (none otherwise)."""
    rows = []
    for name, values in (result.get("anchors") or {}).items():
        rows.append(
            {
                "kind": "anchor",
                "name": name,
                "label": name,
                "seed": None,
                "clips": run.get("clips", "-"),
                "bits_per_second": values.get("bits_per_second"),
                "file_bits_per_second": values.get("file_bits_per_second"),
                "nominal_bits_per_second": values.get("nominal_bits_per_second"),
                **{key: values.get(key) for key in METRICS},
                "codes_used": None,
                "codes_used_per_stage": None,
                "codebook_size": None,
                "num_samples": result.get("num_samples"),
                "step": result.get("step"),
                "depth": None,
                "quantizer": None,
            }
        )
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tokenizer (and ceiling) rows joined over seeds (per label and clip set) and the anchors, sorted by bits per
    second; the ceilings (unquantized latents, no bits) after every code of their clip set."""
    own = [r for r in rows if r["kind"] in ("tokenizer", "ceiling")]
    runs = over_seeds(own, ("label", "clips"), (*METRICS, "codes_used"))
    for joined in runs:
        joined["per_seed"] = {key: [r.get(key) for r in own if r["label"] == joined["label"]] for key in METRICS}
    anchors = [r for r in rows if r["kind"] == "anchor"]
    ceiling = lambda r: r["kind"] == "ceiling"  # noqa: E731
    return sorted(
        [*runs, *anchors], key=lambda r: (r["clips"], ceiling(r), r.get("bits_per_second") or 0.0, r["label"])
    )


def _codes_used(s: dict[str, Any]) -> str:
    """``used / K``, and for a residual run the codes each codebook (stage) used, of its first seed."""
    stages = s.get("codes_used_per_stage")
    per_codebook = f"per codebook: {', '.join(map(str, stages))}" if stages else ""
    if s.get("codes_used") is None and stages:  # a depth of a residual run: its codebooks' counts only
        return per_codebook + (f" (of {s['codebook_size']} each)" if s.get("codebook_size") else "")
    text = fmt(s.get("codes_used"), 0) + (f" / {s['codebook_size']}" if s.get("codebook_size") else "")
    return text + (f" ({per_codebook})" if stages else "")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The bitrate curve: every tokenizer (mean ± std over seeds) and anchor, by bits per second."""
    lines = markdown.table(
        ["codec", "bits/s", "seeds", "SI-SNR (dB)", "mel dist.", "STFT dist.", "PESQ-wb", "STOI", "codes used", "clips"]
    )
    for s in summarize(rows):
        seeds = ",".join(map(str, s.get("seeds", []))) if s["kind"] != "anchor" else "-"
        bits = "unquantized" if s["kind"] == "ceiling" else fmt(s.get("bits_per_second"), 0)
        if s["kind"] == "anchor":
            bits += f" (file {fmt(s.get('file_bits_per_second'), 0)})"
        cells = [
            s["label"],
            bits,
            seeds,
            *(pm(s.get(k), s.get(f"{k}_std"), 3 if k in ("stoi", "stft_distance") else 2) for k in METRICS),
            _codes_used(s),
            s["clips"],
        ]
        lines.append(markdown.row(cells))
    return "\n".join(lines)


def _equal_rate_anchor(run: dict[str, Any], anchors: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The anchor of the lowest measured bitrate at or above the run's, on the same clips (Codec2 700C spends
    800 bits/s: its 28-bit frames fill 4 bytes)."""
    bits = run.get("bits_per_second")
    if bits is None:
        return None
    eligible = [a for a in anchors if a["clips"] == run["clips"] and (a.get("bits_per_second") or 0) >= bits]
    return min(eligible, key=lambda a: a["bits_per_second"]) if eligible else None


def _against_fixed(run: dict[str, Any], key: str, fixed: float, lower_is_better: bool) -> Verdict:
    """One-sided: is the run's mean over seeds better than ``fixed`` (a deterministic value: an anchor on these
    clips, or a threshold)? Its standard error is the seeds' alone (``std / sqrt(n)``; none for one seed)."""
    values = [v for v in run["per_seed"][key] if v is not None]
    mean = sum(values) / len(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    value = fixed - mean if lower_is_better else mean - fixed
    return positive(value, se, (len(values), 1), difference=mean - fixed)


def grid_codebook(kind: str | None) -> bool | None:
    """Whether the quantizer family ``kind`` has an implicit grid codebook (its codes a product of per-channel
    levels: FSQ, residual FSQ, LFQ, ...; the registry's ``level_digits``) rather than a learned one (VQ, RVQ); None
    for a kind the registry does not know."""
    from fsq.quantizers import registry

    if kind is None or kind not in registry.kinds():
        return None
    return registry.family(kind).level_digits is not None


def equal_rate_pairs(summary: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(grid-codebook row, learned-codebook row) for each two tokenizer rows of the same clips at equal bitrate
    (within :data:`EQUAL_RATE`): a single or residual FSQ codec, or a depth of one, against a VQ or RVQ one
    (:func:`grid_codebook`)."""
    tokenizers = [s for s in summary if s["kind"] == "tokenizer"]
    fsq = [s for s in tokenizers if grid_codebook(s.get("quantizer")) is True]
    vq = [s for s in tokenizers if grid_codebook(s.get("quantizer")) is False]
    return [
        (a, b)
        for a in fsq
        for b in vq
        if a["clips"] == b["clips"]
        and a.get("bits_per_second")
        and b.get("bits_per_second")
        and abs(a["bits_per_second"] - b["bits_per_second"]) <= EQUAL_RATE * b["bits_per_second"]
    ]


def _quantizer_claims(summary: list[dict[str, Any]]) -> list[str]:
    """FSQ against VQ at equal bitrate, in each claim metric: one-sided, the seeds of both sides."""
    out = []
    for a, b in equal_rate_pairs(summary):
        for key, (label, lower_is_better) in CLAIM_METRICS.items():
            if a.get(key) is None or b.get(key) is None:
                continue
            v = better(Side.of(a, key), Side.of(b, key), lower_is_better)
            out.append(
                f"{a['label']} beats {b['label']} at equal bitrate ({fmt(a['bits_per_second'], 0)} vs "
                f"{fmt(b['bits_per_second'], 0)} bits/s) in {label} ({'lower' if lower_is_better else 'higher'} is "
                f"better): {v.bold()} ({pm(a[key], a.get(f'{key}_std'), 3)} vs {pm(b[key], b.get(f'{key}_std'), 3)}; "
                f"{v.test()})"
            )
    return out


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """The study's claims as measured, each with its test (:mod:`fsq.studies.verdicts`: one-sided, decided
    against twice the standard error of the seeds' mean; an anchor or a threshold is one fixed value): each
    tokenizer's coherence and its comparison with the anchor at or above its bitrate, then FSQ against VQ at equal
    bitrate (:func:`equal_rate_pairs`)."""
    summary = summarize(rows)
    anchors = [s for s in summary if s["kind"] == "anchor"]
    out = []
    for run in (s for s in summary if s["kind"] == "tokenizer"):
        seeds = ",".join(map(str, run["seeds"]))
        bits = fmt(run["bits_per_second"], 0)
        if any(v is not None for v in run["per_seed"]["si_snr_db"]):
            v = _against_fixed(run, "si_snr_db", COHERENCE_DB, lower_is_better=False)
            out.append(
                f"{run['label']} ({bits} bits/s) reconstructs a coherent waveform, SI-SNR above "
                f"{COHERENCE_DB:g} dB: {v.bold()} (SI-SNR {pm(run['si_snr_db'], run.get('si_snr_db_std'), 2)} dB; "
                f"{v.test()}; seeds {seeds})"
            )
        anchor = _equal_rate_anchor(run, anchors)
        if anchor is None:
            out.append(
                f"{run['label']} ({bits} bits/s): no anchor at or above its bitrate on these clips, so no "
                "equal-bitrate comparison"
            )
            continue
        for key, (label, lower_is_better) in CLAIM_METRICS.items():
            theirs = anchor.get(key)
            if theirs is None or not any(v is not None for v in run["per_seed"][key]):
                continue
            v = _against_fixed(run, key, theirs, lower_is_better)
            out.append(
                f"{run['label']} ({bits} bits/s) beats {anchor['label']} "
                f"({fmt(anchor['bits_per_second'], 0)} bits/s) in {label} "
                f"({'lower' if lower_is_better else 'higher'} is better): {v.bold()} "
                f"({pm(run[key], run.get(f'{key}_std'), 3)} vs {fmt(theirs, 3)}; {v.test()}; the anchor is one "
                f"deterministic value on the same clips; seeds {seeds})"
            )
    return out + _quantizer_claims(summary)
