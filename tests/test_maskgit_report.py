"""The MaskGIT report from hand-made evaluation JSONs: rows, table, claims (also with CFG rows lacking FID)."""

from __future__ import annotations

import json

from fsq.studies.maskgit import claims, markdown_table, maskgit_rows
from fsq.studies.maskgit import write_report as write_maskgit_report


def _eval(quantizer: str, fid: float, acc0: float, acc1: float, usage: float, bits: float) -> dict:
    return {
        "step": 10,
        "quantizer": quantizer,
        "codebook_size": 1000,
        "sampling": {"steps": 12},
        "classifier": {"test_accuracy": 0.99},
        "compression": {"bits_per_token": bits, "uniform_bits_per_token": 9.97},
        "speed": [{"steps": 12, "images_per_second": 30.0}],
        "guidance": [
            {
                "guidance": 0.0,
                "class_accuracy": acc0,
                "fid": fid,
                "precision": 0.5,
                "recall": 0.4,
                "fid_samples": 50,
                "codes_used": int(usage * 1000),
                "usage": usage,
                "num_samples": 100,
            },
            {"guidance": 1.0, "class_accuracy": acc1, "codes_used": 10, "usage": 0.01, "num_samples": 100},
        ],
    }


def test_rows_table_and_claims():
    evals = [_eval("fsq", 10.0, 0.9, 0.99, 0.9, 5.0), _eval("vq", 10.5, 0.95, 1.0, 0.6, 3.0)]
    rows = maskgit_rows(evals, ["a", "b"])
    assert [(r["quantizer"], r["guidance"]) for r in rows] == [("FSQ", 0.0), ("FSQ", 1.0), ("VQ", 0.0), ("VQ", 1.0)]
    assert rows[1]["fid"] is None and rows[0]["images_per_second"] == 30.0
    table = markdown_table(rows)
    assert "| FSQ | 1000 | 0.00 | 90.0% | 10.0 |" in table
    text = "\n".join(claims(rows))
    assert "10.0 (FSQ) vs 10.5 (VQ), -4.8% -> **yes**" in text
    assert "90.0% (FSQ) vs 60.0% (VQ) -> **yes**" in text
    assert "5.00 vs 3.00 bits/token -> **yes**" in text
    assert "FSQ: guidance raises class fidelity: 90.0% without, 99.0% at CFG 1 -> **yes**" in text


def test_write_report(tmp_path):
    runs = []
    for name, result in (("f", _eval("fsq", 30.0, 0.8, 0.9, 0.9, 5.0)), ("v", _eval("vq", 20.0, 0.9, 1.0, 0.5, 3.0))):
        (tmp_path / name / "eval").mkdir(parents=True)
        (tmp_path / name / "eval" / "step_000010.json").write_text(json.dumps(result))
        runs.append({"name": name, "run_dir": str(tmp_path / name)})
    (tmp_path / "study.json").write_text(json.dumps({"kind": "maskgit", "title": "T", "runs": runs}))
    report = write_maskgit_report(tmp_path).read_text()
    assert "+50.0% -> **no**" in report  # FSQ's FID 30 vs VQ's 20 is not within 10%
    assert json.loads((tmp_path / "results.json").read_text())["results"][0]["quantizer"] == "FSQ"
