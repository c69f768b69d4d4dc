"""A study's records (torch-free): what a long study publishes without its weights, and carries to a new folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fsq import rundir
from fsq.studies.records import MANIFEST, export_records, missing_records


def _study(tmp_path):
    """A study folder: one finished run (evaluation, weights, tensorboard), one still training, one outside."""
    study = tmp_path / "study"
    runs = [
        {"name": "a", "label": "A", "run_dir": "runs/a"},
        {"name": "b", "label": "B", "run_dir": "runs/b"},
        {"name": "tok", "label": "tokenizer", "run_dir": "../tok"},
    ]
    plan = {"kind": "uvim", "title": "t", "description": "", "overrides": [], "runs": runs}
    study.mkdir()
    (study / "study.json").write_text(json.dumps(plan))
    (study / "report.md").write_text("# t\n")
    (study / "plots").mkdir()
    (study / "plots" / "curve.png").write_bytes(b"png")
    for name in ("a", "b"):
        run = study / "runs" / name
        (run / "oracle" / rundir.CHECKPOINTS / "step_000010").mkdir(parents=True)
        (run / "oracle" / rundir.CHECKPOINTS / "step_000010" / "state.json").write_text("{}")
        (run / "oracle" / rundir.CHECKPOINTS / "step_000010" / "model.safetensors").write_bytes(b"w")
        (run / "oracle" / "tb").mkdir()
        (run / "oracle" / "tb" / "events.out.tfevents.1").write_bytes(b"e")
        (run / "oracle" / rundir.METRICS).write_text('{"step": 1}\n')
        (run / rundir.CONFIG).write_text("name: x\n")
    stale = study / "runs" / "old_plan" / "eval"  # a run of an earlier plan: not in study.json
    stale.mkdir(parents=True)
    (stale / "step_000005.json").write_text("{}")
    rundir.eval_path(study / "runs" / "a", 20).parent.mkdir()
    rundir.eval_path(study / "runs" / "a", 20).write_text("{}")
    rundir.eval_path(study / "runs" / "a", 20, "_predictions.png").write_bytes(b"png")
    return study


def test_records_hold_the_finished_runs_without_weights(tmp_path):
    study = _study(tmp_path)
    dest = tmp_path / "records"
    done = export_records(study, dest)
    assert done == {"runs": ["a"], "unfinished": ["b"], "outside": ["tok"], "too_large": []}
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [
        "plots/curve.png",
        "records.json",
        "report.md",
        "runs/a/config.yaml",
        "runs/a/eval/step_000020.json",
        "runs/a/eval/step_000020_predictions.png",
        "runs/a/oracle/metrics.jsonl",
        "study.json",
    ]
    assert rundir.has_eval(dest / "runs" / "a", 20)  # what a rerun of the study checks to reuse the run


def test_records_replace_an_earlier_export_and_nothing_else(tmp_path):
    study = _study(tmp_path)
    dest = tmp_path / "records"
    export_records(study, dest)
    (dest / "stale.md").write_text("from an older export")
    export_records(study, dest)
    assert not (dest / "stale.md").exists() and (dest / "study.json").is_file()
    assert not (tmp_path / "records.partial").exists() and not (tmp_path / "records.old").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="neither empty nor an earlier export"):
        export_records(study, other)
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="cannot go inside it"):
        export_records(study, study / "records")


def test_a_file_too_large_to_be_a_record_is_listed(tmp_path, monkeypatch):
    import fsq.studies.records as records

    study = _study(tmp_path)
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 2)
    done = export_records(study, tmp_path / "records")
    # every file over 2 bytes: all but the evaluation's "{}"
    assert sorted(done["too_large"]) == sorted(
        ["plots/curve.png", "report.md", "runs/a/config.yaml", "runs/a/eval/step_000020_predictions.png",
         "runs/a/oracle/metrics.jsonl", "study.json"]
    )  # fmt: skip


def test_the_manifest_tells_what_a_checkout_of_the_records_lacks(tmp_path):
    study = _study(tmp_path)
    dest = tmp_path / "records"
    export_records(study, dest)
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest["runs"] == ["a"] and "runs/a/oracle/metrics.jsonl" in manifest["files"]
    assert MANIFEST not in manifest["files"] and missing_records(dest) == []
    (dest / "plots" / "curve.png").unlink()
    (dest / "runs" / "a" / "oracle" / rundir.METRICS).unlink()
    assert missing_records(dest) == ["plots/curve.png", "runs/a/oracle/metrics.jsonl"]
    shutil.rmtree(dest / "runs")  # what a version control that ignores folders named runs/ did to a checkout
    assert "runs/a (no evaluation)" in missing_records(dest)


PUBLISHED = sorted((Path(__file__).resolve().parents[1] / "docs" / "results").glob(f"*/{MANIFEST}"))


@pytest.mark.parametrize("manifest", PUBLISHED, ids=[p.parent.name for p in PUBLISHED])
def test_the_published_records_are_whole_in_this_checkout(manifest):
    """Every file a committed export lists is in the checkout (CI runs on a fresh clone: a file git ignored or that
    was never added fails here), and every exported run has its evaluation."""
    assert missing_records(manifest.parent) == []


def test_git_does_not_ignore_records():
    """The records' run folders are named runs/, as the repository's scratch folder is: only the top-level one is
    ignored."""
    root = Path(__file__).resolve().parents[1]
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    probe = "docs/results/any_study/runs/any_run/eval/step_000001.json"
    ignored = subprocess.run([git, "check-ignore", "-q", probe], cwd=root, check=False).returncode == 0
    assert not ignored, f"git ignores {probe}: the published records would not be committed"
    assert subprocess.run([git, "check-ignore", "-q", "runs/x"], cwd=root, check=False).returncode == 0
