"""``fsq study video --preset quick``: every run trains (three video tokenizers and the per-frame tokenizer, each at
two learning rates, and, on Moving MNIST, a class-conditional video MaskGIT per quantizer on its tokenizer at the
rate chosen on val), every tokenizer is also evaluated on val (the per-frame one on the val clips), the MaskGIT
samples are judged frame by frame, the report holds the table, the trials and the claims, and ``fsq report``
rebuilds it from the run dirs alone. The quick preset runs the Moving MNIST configs at 16 px."""

from __future__ import annotations

import json
import math

import pytest

from fsq.cli import main

pytestmark = pytest.mark.integration


def test_quick_video_study_runs_judges_and_reports(tmp_path):
    out = tmp_path / "study"
    assert main(["study", "video", "--preset", "quick", "--out", str(out)]) == 0  # Moving MNIST by default
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["results"]] == ["FSQ", "naive", "VQ", "LFQ", "per-frame FSQ"]
    rows = {r["method"]: r for r in results["results"]}
    study = results["study"]
    from fsq.studies.tuning import LR_FACTORS, choose_rates
    from fsq.studies.video_claims import trials

    found = trials(out, study)
    n = 4 * len(LR_FACTORS)  # FSQ, VQ, LFQ and per-frame FSQ, each at every trial rate
    assert f"Training time logged by the {n} tokenizer runs" in study["budget"]  # the runs' own cost, in the report
    assert len(found) == n and all(t["val_psnr"] is not None and t["psnr"] is not None for t in found)
    chosen = choose_rates(found)
    assert set(chosen) == {"FSQ", "VQ", "LFQ", "per-frame FSQ"}
    for method in ("FSQ", "VQ", "LFQ"):  # the row and its Stage II come from the run at the rate chosen on val
        run = next(r for r in study["runs"] if r["name"] == rows[method]["name"])
        assert run["lr"] == chosen[method]
        stage2 = next(r for r in study["runs"] if r["role"] == "stage2" and r["label"] == method)
        assert stage2["tokenizer"] == run["run_dir"]
        config = (out / stage2["run_dir"] / "config.yaml").read_text()
        assert f"tokenizer: {out / run['run_dir']}" in config
    # fsq_moving_mnist_t2 at 16 px: 9 frames -> 5 latent frames (causal x2 in time) of 8x8 (x2 in space) = 320 tokens
    assert rows["FSQ"]["bits_per_clip"] == pytest.approx(320 * math.log2(1000))
    assert rows["per-frame FSQ"]["bits_per_clip"] <= rows["FSQ"]["bits_per_clip"]
    assert all(len(r["psnr_per_frame"]) == 9 and r["temporal_l1"] is not None for r in rows.values())
    assert rows["FSQ"]["code_cap"] == min(1000, 2 * 320)  # 2 held-out clips of 320 tokens: 640 countable codes
    for method in ("FSQ", "VQ", "LFQ"):  # Stage II: judged samples beside each video tokenizer
        assert 0 <= rows[method]["sample_agreement"] <= 1 and 0 <= rows[method]["real_agreement"] <= 1
        assert math.isfinite(rows[method]["judge_fd"])
    judged = json.loads((out / "runs/maskgit_fsq_s0/eval/step_000002_judged.json").read_text())
    assert judged["num_samples"] == judged["num_real"] == 10 and len(judged["agreement_per_frame"]) == 9
    report = (out / "report.md").read_text()
    assert "| per-frame FSQ |" in report and "(single seed)**" in report and "Stage II" in report
    assert "## Learning-rate trials" in report and report.count("| yes |") == 4
    assert "not finished" not in report
    assert (out / "plots" / "frames.png").is_file()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.md").read_text() == report


def test_quick_video_study_with_two_jobs_trains_every_run_once(tmp_path, capfd):
    """``--jobs 2``: two worker processes share Stage I, then the MaskGIT runs on the tokenizers chosen on val;
    every run is trained once and evaluated, and the workers' shares of time (one per worker and phase) count every
    run once."""
    out = tmp_path / "study"
    assert main(["study", "video", "--preset", "quick", "--out", str(out), "--jobs", "2"]) == 0
    printed = capfd.readouterr().out
    study = json.loads((out / "study.json").read_text())
    assert printed.count("(from scratch)") == len(study["runs"]) == study["timing"]["runs_trained"]
    assert study["timing"].get("calls", 1) <= 4  # two phases (Stage I, Stage II) x two workers
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["results"]] == ["FSQ", "naive", "VQ", "LFQ", "per-frame FSQ"]
    assert all(r.get("sample_agreement") is not None for r in results["results"][2:4])  # Stage II judged
    assert "not finished" not in (out / "report.md").read_text()
    one = tmp_path / "one"  # one process: the same numbers (every run is deterministic on the CPU)
    assert main(["study", "video", "--preset", "quick", "--out", str(one)]) == 0
    single = json.loads((one / "results.json").read_text())
    assert single["results"] == results["results"]
