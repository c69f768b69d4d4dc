"""The codec study: its claims on hand-made rows (each states its test; equal-bitrate anchor choice), its report
without torch, and a smoke run that trains a tiny 1-D tokenizer on tones and measures it beside Codec2 and Opus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fsq.studies.codec_report import claims, markdown_table

ROOT = Path(__file__).parents[1]
TINY_TONES = [  # fsq_tones_1d trained for two steps: a run the study can measure in seconds
    "train.steps=2",
    "train.batch_size=8",
    "train.threads=1",
    "train.checkpoint_every=2",
    "train.log_every=1",
    "data.train_limit=64",
    "data.eval_limit=4",
    "model.filters=8",
    "model.num_groups=4",
]


def _tok(label: str, seed: int, bits: float, **metrics: float) -> dict:
    return {
        "kind": "tokenizer",
        "name": f"{label}_s{seed}",
        "label": label,
        "seed": seed,
        "clips": "c",
        "bits_per_second": bits,
        "codes_used": 10,
        "codebook_size": 16,
        **metrics,
    }


def _anchor(name: str, nominal: float, **metrics: float) -> dict:
    bits = 800.0 if name == "codec2-700C" else nominal  # 700C's 28-bit frames fill 4 bytes
    return {
        "kind": "anchor",
        "name": name,
        "label": name,
        "seed": None,
        "clips": "c",
        "bits_per_second": bits,
        "file_bits_per_second": bits + 100,
        "nominal_bits_per_second": nominal,
        **metrics,
    }


def test_claims_state_their_test_and_pick_the_equal_bitrate_anchor():
    rows = [
        _tok("FSQ a", 0, 1000.0, mel_distance=1.0, stoi=0.8, si_snr_db=2.0),
        _tok("FSQ a", 1, 1000.0, mel_distance=1.1, stoi=0.7, si_snr_db=-1.0),
        _anchor("codec2-700C", 700, mel_distance=0.5, stoi=0.9),  # 800 bits/s, below 1000: never the comparison
        _anchor("codec2-1200", 1200, mel_distance=1.05, stoi=0.6),
        _anchor("codec2-2400", 2400, mel_distance=0.9, stoi=0.95),
    ]
    lines = claims(rows)
    # SI-SNR 2 and -1 dB: mean 0.5, standard error 1.5: inside twice its standard error of 0 dB
    coherent = next(line for line in lines if "coherent" in line)
    assert "**not resolved**" in coherent and "test: one-sided" in coherent and "seeds 0,1" in coherent
    mel = next(line for line in lines if "mel distance" in line)
    assert "beats codec2-1200" in mel and "**not resolved**" in mel  # mean 1.05 = the anchor's 1.05
    assert "test: one-sided" in mel and "2/1 seeds" in mel and "deterministic" in mel
    stoi = next(line for line in lines if "STOI" in line)  # mean 0.75, standard error 0.05, vs 0.6: 0.15 > 0.1
    assert "beats codec2-1200" in stoi and "**yes**" in stoi
    assert not any("PESQ" in line for line in lines)  # not measured: no claim
    table = markdown_table(rows)
    assert table.index("codec2-700C") < table.index("FSQ a") < table.index("codec2-1200")  # sorted by bits/s
    assert "0,1" in table and "0.750 ± 0.071" in table  # STOI mean ± std over the two seeds


def test_a_run_above_every_anchor_says_so_and_one_seed_is_marked():
    lines = claims([_tok("FSQ big", 0, 9000.0, mel_distance=1.0), _anchor("opus-6k", 6000, mel_distance=1.0)])
    assert any("no anchor at or above its bitrate" in line for line in lines)
    # 750 bits/s: above 700C's name but below the 800 bits/s it spends, so 700C is the equal-rate anchor
    lines = claims([_tok("FSQ", 0, 750.0, stoi=0.5), _anchor("codec2-700C", 700, stoi=0.6)])
    assert "beats codec2-700C (800 bits/s)" in lines[0] and "**no (single seed)**" in lines[0]
    lines = claims([_tok("FSQ", 0, 900.0, stoi=0.7, si_snr_db=3.0), _anchor("codec2-1200", 1200, stoi=0.6)])
    assert "**yes (single seed)**" in lines[0] and "**yes (single seed)**" in lines[1]


def test_a_residual_run_has_a_row_per_depth_compared_at_its_own_bitrate():
    from fsq.studies.codec_report import depth_rows, run_row

    run = {"name": "speech", "label": "FSQ speech", "seed": 0, "clips": "c"}
    result = {
        "bits_per_second": 3720.0,
        "mel_distance": 5.0,
        "stoi": 0.9,
        "codes_used": 100,
        "codebook_size": 390625,
        "depths": [{"depth": 1, "bits_per_second": 1860.0, "mel_distance": 7.0, "stoi": 0.8}],
    }
    rows = [run_row(run, result), *depth_rows(run, result)]
    assert [r["name"] for r in rows] == ["speech", "speech@depth1"]
    assert rows[1]["label"] == "FSQ speech, depth 1" and rows[1]["bits_per_second"] == 1860.0
    assert rows[1]["mel_distance"] == 7.0 and rows[1]["depth"] == 1
    anchors = [
        _anchor("codec2-2400", 2400, mel_distance=7.5, stoi=0.85),
        _anchor("opus-6k", 6000, mel_distance=4.0, stoi=0.95),
        {**_anchor("silence", 0, mel_distance=30.0, stoi=0.1), "bits_per_second": 0.0},
    ]
    lines = claims(rows + anchors)
    depth1 = [line for line in lines if line.startswith("FSQ speech, depth 1 ")]
    assert any(
        "beats codec2-2400" in line and "mel distance" in line and "**yes (single seed)**" in line for line in depth1
    )
    assert any("beats codec2-2400" in line and "STOI" in line and "**no (single seed)**" in line for line in depth1)
    full = [line for line in lines if line.startswith("FSQ speech (")]
    assert full and all("opus-6k" in line for line in full)  # 3720 bits/s: Opus is the anchor at or above it
    assert not any("beats silence" in line for line in lines)  # 0 bits/s: never the equal-bitrate anchor
    assert "| silence | 0 (file 100) |" in markdown_table(rows + anchors)


def test_an_unquantized_row_is_a_ceiling_listed_last_without_bits_or_claims():
    """A residual run evaluated with ``eval.unquantized`` has a ``ceiling`` row (joined over seeds like a run),
    printed after every code of its clips with ``unquantized`` for its bits; no claim compares it with an anchor
    or a quantizer."""
    from fsq.studies.codec_report import run_row, unquantized_rows

    rows = []
    for seed, (mel, ceiling_mel) in enumerate([(6.0, 5.5), (6.2, 5.7)]):
        run = {"name": f"rfsq_s{seed}", "label": "RFSQ", "seed": seed, "clips": "c"}
        result = {
            "bits_per_second": 3720.0,
            "mel_distance": mel,
            "codes_used": 100,
            "codebook_size": 625,
            "quantizer": "residual_fsq",
            "unquantized": {"mel_distance": ceiling_mel, "stoi": 0.8, "snr_db": 4.0},
        }
        rows += [run_row(run, result), *unquantized_rows(run, result)]
        assert unquantized_rows(run, {**result, "unquantized": None}) == []
    ceiling = rows[1]
    assert ceiling["kind"] == "ceiling" and ceiling["name"] == "rfsq_s0@unquantized"
    assert ceiling["label"] == "RFSQ, unquantized" and ceiling["bits_per_second"] is None
    assert ceiling["mel_distance"] == 5.5 and ceiling["codes_used"] is None
    rows.append(_anchor("opus-6k", 6000, mel_distance=4.0))
    table = markdown_table(rows)
    assert table.index("| RFSQ |") < table.index("opus-6k") < table.index("| RFSQ, unquantized | unquantized | 0,1 |")
    assert "5.60 ± 0.14" in table  # the ceiling's mel distance over the two seeds
    lines = claims(rows)
    assert lines and not any("unquantized" in line for line in lines)


def test_fsq_against_vq_at_equal_bitrate_per_depth_with_the_seeds_of_both():
    """Residual FSQ and RVQ rows at equal bitrate (each depth of one model, within 1%) are compared one-sided in
    each claim metric; rows at other rates, or of the same family, are not paired."""

    def tok(label: str, seed: int, bits: float, quantizer: str, **metrics: float) -> dict:
        return {**_tok(label, seed, bits, **metrics), "quantizer": quantizer}

    rows = [
        tok("RFSQ, depth 1", 0, 929.0, "residual_fsq", mel_distance=7.0, stoi=0.70),
        tok("RFSQ, depth 1", 1, 929.0, "residual_fsq", mel_distance=7.2, stoi=0.72),
        tok("RVQ, depth 1", 0, 929.0, "residual_vq", mel_distance=8.0, stoi=0.71),
        tok("RVQ, depth 1", 1, 929.0, "residual_vq", mel_distance=8.2, stoi=0.69),
        tok("RVQ, depth 2", 0, 1858.0, "residual_vq", mel_distance=6.0, stoi=0.80),  # no FSQ row at 1858
        tok("FSQ single", 0, 933.0, "fsq", mel_distance=7.5),  # within 1% of 929: paired with RVQ too
        tok("RFSQ other", 0, 929.0, "residual_fsq", mel_distance=1.0),  # same family as RFSQ: never paired with it
    ]
    lines = [line for line in claims(rows) if "at equal bitrate" in line]
    mel = next(line for line in lines if line.startswith("RFSQ, depth 1 beats RVQ, depth 1") and "mel" in line)
    # difference 1.0, standard error sqrt(0.02 / 2 + 0.02 / 2) = 0.141: outside twice it
    assert "**yes**" in mel and "2/2 seeds" in mel and "7.100 ± 0.141 vs 8.100 ± 0.141" in mel
    stoi = next(line for line in lines if line.startswith("RFSQ, depth 1 beats RVQ, depth 1") and "STOI" in line)
    assert "**not resolved**" in stoi  # 0.71 vs 0.70, inside the spread
    single = next(line for line in lines if line.startswith("FSQ single beats RVQ, depth 1"))
    assert "**yes (single seed)**" in single and "(933 vs 929 bits/s)" in single
    assert not any("RVQ, depth 2" in line for line in lines)
    assert not any(line.startswith("RFSQ other beats RFSQ") for line in lines)
    assert len(lines) == 2 + 1 + 1  # RFSQ: mel and STOI; FSQ single: mel; RFSQ other: mel (vs RVQ depth 1)


def test_the_report_of_a_residual_run_beside_silence(tmp_path):
    """write_report without torch: a run's full-depth and depth-1 rows, the anchors of its evaluation, and the
    note that silence is the trivial baseline."""
    from fsq.studies.codec import write_report
    from fsq.studies.common import write_study

    run_dir = tmp_path / "runs" / "speech"
    (run_dir / "eval").mkdir(parents=True)
    silence = {"codec": "none", "mode": "silence", "nominal_bits_per_second": 0.0, "bits_per_second": 0.0}
    result = {
        "step": 10,
        "bits_per_second": 3720.0,
        "si_snr_db": 3.0,
        "mel_distance": 6.0,
        "stoi": 0.8,
        "depths": [{"depth": 1, "bits_per_second": 1860.0, "si_snr_db": 1.0, "mel_distance": 7.0, "stoi": 0.7}],
        "anchors": {
            "codec2-2400": {"codec": "codec2", "mode": "2400", "bits_per_second": 2400.0, "mel_distance": 7.5},
            "silence": {**silence, "si_snr_db": 0.0, "mel_distance": 25.0, "stoi": 0.0},
        },
    }
    (run_dir / "eval" / "step_000010.json").write_text(json.dumps(result))
    run = {"name": "speech", "label": "speech", "seed": 0, "run_dir": "runs/speech", "given": True, "clips": "c"}
    study = {"kind": "codec", "title": "t", "description": "d", "overrides": [], "anchors": ["codec2-2400", "silence"]}
    write_study(tmp_path, {**study, "runs": [run]})
    report = write_report(tmp_path).read_text()
    assert (
        "| speech, depth 1 | 1860 | 0 | 1.00 | 7.00 |" in report
        and "| silence | 0 (file -) | - | 0.00 | 25.00 |" in report
    )
    assert "`silence` is the trivial baseline" in report
    assert "speech, depth 1 (1860 bits/s) beats codec2-2400 (2400 bits/s) in mel distance" in report
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["name"] for r in rows] == ["speech", "speech@depth1", "codec2-2400", "silence"]


def test_the_report_imports_no_torch():
    code = "import sys; sys.modules['torch'] = None\nimport fsq.studies.codec, fsq.studies.codec_report\n"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.integration
def test_codec_study_smoke_on_tones(tmp_path):
    from fsq.anchors.audio import anchor, missing
    from fsq.cli import main

    names = ["codec2-700C", "opus-6k"]
    for name in names:
        if missing(anchor(name)):
            pytest.skip(missing(anchor(name)))
    small = [*TINY_TONES, f"study.anchors=[{','.join(names)}]"]
    out = tmp_path / "study"
    assert main(["study", "codec", *small, "--out", str(out), "--levels", "4,4", "--seeds", "0"]) == 0
    report = (out / "report.md").read_text()
    assert "FSQ 4x4" in report and "codec2-700C" in report and "opus-6k" in report
    assert "test: one-sided" in report and "seeds 0" in report
    rows = json.loads((out / "results.json").read_text())["results"]
    fsq = next(r for r in rows if r["kind"] == "tokenizer")
    assert fsq["bits_per_second"] == pytest.approx(1000 * 4.0)  # 8 kHz, 8 samples a token, 16 codes: 4 bits
    assert {r["name"] for r in rows if r["kind"] == "anchor"} == set(names)
    # the same run, given as trained elsewhere: measured again into another study, anchors included
    again = tmp_path / "again"
    run_dir = out / "runs" / "fsq_4-4_s0"
    assert main(["study", "codec", f"study.anchors=[{names[0]}]", "--out", str(again), "--runs", str(run_dir)]) == 0
    rows = json.loads((again / "results.json").read_text())["results"]
    assert [r["name"] for r in rows] == ["fsq_4-4_s0", "codec2-700C"]
    # recorded relative to the new study's folder (no absolute path of this machine in a published study)
    assert json.loads((again / "study.json").read_text())["runs"][0]["run_dir"] == "../study/runs/fsq_4-4_s0"


def test_a_residual_runs_codes_are_counted_per_codebook_and_a_depth_shows_its_own():
    from fsq.studies.codec_report import depth_rows, run_row

    run = {"name": "r", "label": "RFSQ", "seed": 0, "clips": "c"}
    result = {
        "bits_per_second": 2000.0,
        "codes_used": 600,
        "codebook_size": 625,
        "codes_used_per_stage": [372, 624],
        "depths": [{"depth": 1, "bits_per_second": 1000.0}],
    }
    table = markdown_table([run_row(run, result), *depth_rows(run, result)])
    assert "| 600 / 625 (per codebook: 372, 624) |" in table  # the union over stages, then each codebook's
    assert "| per codebook: 372 (of 625 each) |" in table  # depth 1: its one codebook, not the union of both


@pytest.mark.integration
def test_a_residual_run_given_to_the_study_is_scored_unquantized_too(tmp_path):
    """A residual run trained elsewhere (here without ``eval.unquantized``) is evaluated again by the study with it:
    its report has the ceiling row after its codes, and its evaluation holds the unquantized scores."""
    from fsq.anchors.audio import anchor, missing
    from fsq.cli import main

    if missing(anchor("codec2-700C")):
        pytest.skip(missing(anchor("codec2-700C")))
    run_dir = tmp_path / "rfsq"
    small = [*TINY_TONES, "quantizer.kind=residual_fsq", "quantizer.levels=[4,4]", "quantizer.num_stages=2"]
    assert main(["train", "tokenizer", "fsq_tones_1d", *small, "--run-dir", str(run_dir)]) == 0
    out = tmp_path / "study"
    assert main(["study", "codec", "study.anchors=[codec2-700C]", "--out", str(out), "--runs", str(run_dir)]) == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [r["name"] for r in rows] == ["rfsq", "rfsq@unquantized", "codec2-700C"]
    ceiling = rows[1]
    assert ceiling["kind"] == "ceiling" and ceiling["bits_per_second"] is None and ceiling["mel_distance"] > 0
    report = (out / "report.md").read_text()
    assert "| rfsq, unquantized | unquantized |" in report and "infinitely many stages" in report
    evaluation = json.loads(sorted((run_dir / "eval").glob("step_*.json"))[-1].read_text())
    assert evaluation["unquantized"]["mel_distance"] == pytest.approx(ceiling["mel_distance"])
    # its bundle's card shows the same table (an audio evaluation with anchors: this export once raised KeyError)
    assert main(["export", str(run_dir), str(tmp_path / "bundle")]) == 0
    card = (tmp_path / "bundle" / "README.md").read_text()
    assert "beside classical codecs, on the same held-out clips" in card
    assert "| `bundle`, unquantized | unquantized |" in card and "| codec2-700C | 800 (file " in card
    # `fsq eval` takes eval.* overrides (and only those): the same ceiling again (its
    # evaluation rewritten, without the anchors now), or a clear refusal
    assert main(["eval", str(run_dir), "eval.unquantized=true"]) == 0
    again = json.loads(sorted((run_dir / "eval").glob("step_*.json"))[-1].read_text())
    assert again["unquantized"]["mel_distance"] == pytest.approx(ceiling["mel_distance"])
    assert main(["eval", str(run_dir), "train.steps=9"]) == 2
