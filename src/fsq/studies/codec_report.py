"""The codec study's rows, bitrate-curve table and claims (torch-free): tokenizer runs beside Codec2 and Opus on
the same held-out clips.

Rows come from each run's newest evaluation (``eval/step_N.json``): one row per tokenizer run (its bits per
second, SI-SNR, mel and STFT distances, PESQ / STOI where measured, codes used) and one per classical anchor
(``anchors`` of the evaluation that ran them; their bits per second are measured from the encoded files). Runs are
joined over seeds (mean ``± std``). Anchors are deterministic: one value per clip set, no seeds.

Every claim states its test: the comparison, one- or two-sided, the margin, and the seeds it holds over. A
tokenizer "beats" an anchor in a metric when **every** seed is better than the anchor's value by more than the
margin (one-sided; the anchor's value is fixed on these clips), and it is compared with the anchor of the lowest
nominal bitrate at or above its own (equal or higher bitrate: the anchor is never handicapped).
"""

from __future__ import annotations

from typing import Any

from fsq.studies.common import fmt, over_seeds, pm

METRICS = ("si_snr_db", "mel_distance", "stft_distance", "pesq_wb", "stoi")
# metric -> (label, lower is better, margin of a claim)
CLAIM_METRICS: dict[str, tuple[str, bool, float]] = {
    "mel_distance": ("mel distance", True, 0.0),
    "stoi": ("STOI", False, 0.0),
    "pesq_wb": ("PESQ-wb", False, 0.0),
}
COHERENCE_MARGIN_DB = 0.0  # SI-SNR above 0 dB: the waveform is coherent, not only its spectrum


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
        "codebook_size": result.get("codebook_size"),
        "num_samples": result.get("num_samples"),
        "step": result.get("step"),
    }


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
                "codebook_size": None,
                "num_samples": result.get("num_samples"),
                "step": result.get("step"),
            }
        )
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tokenizer rows joined over seeds (per label and clip set) and the anchors, sorted by bits per second."""
    runs = over_seeds([r for r in rows if r["kind"] == "tokenizer"], ("label", "clips"), (*METRICS, "codes_used"))
    for joined in runs:
        joined["per_seed"] = {
            key: [r.get(key) for r in rows if r["kind"] == "tokenizer" and r["label"] == joined["label"]]
            for key in METRICS
        }
    anchors = [r for r in rows if r["kind"] == "anchor"]
    return sorted([*runs, *anchors], key=lambda r: (r["clips"], r.get("bits_per_second") or 0.0))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The bitrate curve: every tokenizer (mean ± std over seeds) and anchor, by bits per second."""
    header = "| codec | bits/s | seeds | SI-SNR (dB) | mel dist. | STFT dist. | PESQ-wb | STOI | codes used | clips |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for s in summarize(rows):
        seeds = ",".join(map(str, s.get("seeds", []))) if s["kind"] == "tokenizer" else "-"
        bits = fmt(s.get("bits_per_second"), 0)
        if s["kind"] == "anchor":
            bits += f" (file {fmt(s.get('file_bits_per_second'), 0)})"
        cells = [
            s["label"],
            bits,
            seeds,
            *(pm(s.get(k), s.get(f"{k}_std"), 3 if k in ("stoi", "stft_distance") else 2) for k in METRICS),
            fmt(s.get("codes_used"), 0) + (f" / {s['codebook_size']}" if s.get("codebook_size") else ""),
            s["clips"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _equal_rate_anchor(run: dict[str, Any], anchors: list[dict[str, Any]]) -> dict[str, Any] | None:
    bits = run.get("bits_per_second")
    if bits is None:
        return None
    eligible = [a for a in anchors if a["clips"] == run["clips"] and (a.get("nominal_bits_per_second") or 0) >= bits]
    return min(eligible, key=lambda a: a["nominal_bits_per_second"]) if eligible else None


def _better(value: float, anchor: float, lower: bool, margin: float) -> bool:
    return value < anchor - margin if lower else value > anchor + margin


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """The study's claims as measured, each with its test."""
    summary = summarize(rows)
    anchors = [s for s in summary if s["kind"] == "anchor"]
    out = []
    for run in (s for s in summary if s["kind"] == "tokenizer"):
        seeds = ",".join(map(str, run["seeds"]))
        values = [v for v in run["per_seed"]["si_snr_db"] if v is not None]
        if values:
            holds = all(v > COHERENCE_MARGIN_DB for v in values)
            out.append(
                f"{run['label']} ({fmt(run['bits_per_second'], 0)} bits/s) reconstructs a coherent waveform, SI-SNR "
                f"above 0 dB: {'yes' if holds else 'no'} (SI-SNR {pm(run['si_snr_db'], run.get('si_snr_db_std'), 2)} "
                f"dB; test: one-sided, every seed above {COHERENCE_MARGIN_DB:g} dB; seeds {seeds})"
            )
        anchor = _equal_rate_anchor(run, anchors)
        if anchor is None:
            out.append(
                f"{run['label']} ({fmt(run['bits_per_second'], 0)} bits/s): no anchor at or above its bitrate on "
                "these clips, so no equal-bitrate comparison"
            )
            continue
        for key, (label, lower, margin) in CLAIM_METRICS.items():
            mine = [v for v in run["per_seed"][key] if v is not None]
            theirs = anchor.get(key)
            if not mine or theirs is None:
                continue
            holds = all(_better(v, theirs, lower, margin) for v in mine)
            out.append(
                f"{run['label']} ({fmt(run['bits_per_second'], 0)} bits/s) beats {anchor['label']} "
                f"({fmt(anchor['nominal_bits_per_second'], 0)} bits/s nominal) in {label}: "
                f"{'yes' if holds else 'no'} ({pm(run[key], run.get(f'{key}_std'), 3)} vs {fmt(theirs, 3)}; test: "
                f"one-sided, every seed {'below' if lower else 'above'} the anchor's value by more than {margin:g}; "
                f"seeds {seeds})"
            )
    return out
