"""``fsq study video --preset quick``: every run trains, the per-frame tokenizer is evaluated on the video clips,
the report holds the table and claims, and ``fsq report`` rebuilds it from the run dirs alone."""

from __future__ import annotations

import json

import pytest

from fsq.cli import main

pytestmark = pytest.mark.integration


def test_quick_video_study_runs_and_reports(tmp_path):
    out = tmp_path / "study"
    assert main(["study", "video", "--preset", "quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    methods = [r["method"] for r in results["results"]]
    assert methods == ["FSQ", "naive", "VQ", "LFQ", "per-frame FSQ"]
    rows = {r["method"]: r for r in results["results"]}
    assert rows["FSQ"]["bits_per_clip"] == pytest.approx(48 * 9.965784, abs=1e-3)
    assert rows["per-frame FSQ"]["bits_per_clip"] <= rows["FSQ"]["bits_per_clip"]
    assert all(len(r["psnr_per_frame"]) == 9 and r["temporal_l1"] is not None for r in rows.values())
    assert rows["FSQ"]["code_cap"] == min(1000, 2 * 48)  # 2 held-out clips of 48 tokens: 96 countable codes
    report = (out / "report.md").read_text()
    assert "| per-frame FSQ |" in report and "(single seed: not a test)" in report
    assert (out / "plots" / "frames.png").is_file()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.md").read_text() == report
