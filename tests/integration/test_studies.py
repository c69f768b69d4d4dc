"""Studies: a smoke-sized codebook-size study writes a complete report; a rerun reuses its runs; the report is
rebuilt from run dirs without torch; the levels study plans Fig. 10's comparison."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from fsq.data import SourceUnavailable, load_images
from fsq.studies.codebook import claims, plan, run_config, run_study, stage2_config

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
SMOKE = [
    "train.steps=4",
    "train.log_every=2",
    "train.checkpoint_every=2",
    "data.train_limit=256",
    "data.eval_limit=64",
    "model.filters=8",
    "model.num_groups=4",
    "train.threads=1",
]
SMOKE_STAGE2 = [  # Stage II overrides (the "maskgit." prefix routes them): a tiny MaskGIT, a few samples
    "maskgit.train.steps=4",
    "maskgit.train.batch_size=16",
    "maskgit.train.log_every=2",
    "maskgit.train.checkpoint_every=2",
    "maskgit.train.threads=1",
    "maskgit.data.train_limit=256",
    "maskgit.model.width=32",
    "maskgit.model.depth=1",
    "maskgit.model.heads=2",
    "maskgit.model.mlp_dim=64",
    "maskgit.eval.num_samples=20",
    "maskgit.eval.steps=4",
    "maskgit.eval.classifier_steps=20",
    "maskgit.eval.compression_samples=8",
    "maskgit.eval.speed_batch=4",
    "maskgit.eval.batch_size=16",
    "maskgit.eval.grid_per_class=2",
]
STAGE2_COLUMNS = ("class_accuracy", "judge_fd", "sampled_usage", "sampled_codes_used", "bits_per_token")


@pytest.fixture(autouse=True)
def _mnist():
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))


def test_codebook_size_study_report_rerun_and_torch_free_rebuild(tmp_path):
    messages: list[str] = []
    report = run_study("codebook-size", tmp_path, sizes=[16, 64], overrides=SMOKE + SMOKE_STAGE2, log=messages.append)
    assert report == tmp_path / "report.md"
    text = report.read_text()
    for needle in (
        "| FSQ | 15 | 5x3 |",
        "| VQ | 64 |",
        "| VQ (no entropy) | 16 |",
        "plots/usage.png",
        "What the paper claims",
        "held-out tokens",
        "judge FD",
        "sampled usage",
        "bits/token",
        "plots/fig3.png",
        "judge Frechet distance",
    ):
        assert needle in text, needle
    for name in ("results.json", "results.csv", "plots/usage.png", "plots/metrics.png", "plots/training_curves.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "plots" / "fig3.png").is_file()
    published = json.loads((tmp_path / "results.json").read_text())
    results = published["results"]
    study_runs = {r["name"]: r for r in published["study"]["runs"]}
    assert len(study_runs) == 12 and all({"name", "label", "run_dir"} <= set(r) for r in study_runs.values())
    assert study_runs["fsq_000016_maskgit"]["run_dir"] == "runs/fsq_000016_maskgit"
    assert (tmp_path / "runs" / "fsq_000016_maskgit" / "eval" / "step_000004.json").is_file()
    for row in results:  # Stage II columns exist and are finite
        for key in STAGE2_COLUMNS:
            assert isinstance(row[key], (int, float)) and math.isfinite(row[key]), (row["name"], key, row[key])
        assert row["fid"] is None and row["stage2_step"] == 4  # no Inception on the CPU preset
        assert 0 < row["bits_per_token"] < 2 * math.log2(row["codebook_size"]) + 8
    assert any("reproduced" in line for line in claims(results))
    assert published["study"]["timing"]["runs_trained"] == 12
    assert len(results) == 6 and {r["quantizer"] for r in results} == {"FSQ", "VQ", "VQ (no entropy)"}
    fsq = [r for r in results if r["quantizer"] == "FSQ"]
    vq = [r for r in results if r["quantizer"] == "VQ"]
    assert all(f["params_total"] < v["params_total"] for f, v in zip(fsq, vq))
    assert sum("training" in m for m in messages) == 12  # 6 tokenizers, 6 MaskGITs

    messages.clear()
    run_study("codebook-size", tmp_path, sizes=[16, 64], overrides=SMOKE + SMOKE_STAGE2, log=messages.append)
    assert sum("reused" in m for m in messages) == 12 and not any("training" in m for m in messages)

    (tmp_path / "report.md").unlink()
    code = "import sys; sys.modules['torch'] = None; from fsq.cli import main; sys.exit(main(['report', sys.argv[1]]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.md").read_text() == text


def test_interrupted_study_resumes_its_runs(tmp_path):
    overrides = SMOKE + SMOKE_STAGE2
    run_study("codebook-size", tmp_path, sizes=[16], overrides=overrides, quantizers=["FSQ"])
    run_dir, maskgit_dir = tmp_path / "runs" / "fsq_000016", tmp_path / "runs" / "fsq_000016_maskgit"
    for path in [*(run_dir / "eval").iterdir(), *(maskgit_dir / "eval").iterdir()]:  # killed before evaluation
        path.unlink()
    messages: list[str] = []
    run_study("codebook-size", tmp_path, sizes=[16], overrides=overrides, quantizers=["FSQ"], log=messages.append)
    assert sum("training" in m for m in messages) == 2
    assert (run_dir / "eval" / "step_000004.json").is_file()
    assert (maskgit_dir / "eval" / "step_000004.json").is_file()
    assert len(json.loads((run_dir / "meta.json").read_text())["runs"]) == 2
    assert len(json.loads((maskgit_dir / "meta.json").read_text())["runs"]) == 2  # resumed, not restarted


def test_levels_study_plan_and_report(tmp_path):
    runs = plan("levels")
    labels = {r["name"]: r["label"] for r in runs}
    assert labels["fsq_8x5x5x5"] == "FSQ, all L >= 5" and labels["fsq_4x4x4x4x4"] == "FSQ, min L = 4"
    assert labels["fsq_3x3x3x3x3x3"] == "FSQ, min L = 3"
    assert {r["target_size"] for r in runs} == {2**8, 2**10, 2**12, 2**14, 2**16}  # the paper's sizes
    wide = plan("levels", sizes=[2**16])
    assert [r["levels"] for r in wide] == [[8, 8, 8, 5, 5, 5], [4] * 8, [3] * 10]
    seeded = plan("levels", sizes=[2**8], seeds=[0, 2])  # seed 0 keeps the plain name, so its runs are reused
    names = ["fsq_8x6x5", "fsq_4x4x4x4", "fsq_3x3x3x3x3"]  # seed by seed: a study cut short has every set
    assert [r["name"] for r in seeded] == names + [f"{name}_s2" for name in names]
    assert [r["seed"] for r in seeded] == [0, 0, 0, 2, 2, 2]
    cfg = run_config(seeded[3], "mnist", "cpu", [])
    assert cfg.train.seed == 2 and run_config(seeded[0], "mnist", "cpu", []).train.seed == 0
    stage2 = stage2_config(tmp_path, cfg, "m", "cpu", [], seed=2)
    assert stage2.train.seed == 2 and stage2.eval.seed == 2
    with pytest.raises(ValueError, match="seeds must be distinct"):
        plan("levels", seeds=[1, 1])
    report = run_study("levels", tmp_path, level_sets=[[8, 5, 5, 5], [4, 4, 4, 4, 4]], overrides=SMOKE + SMOKE_STAGE2)
    text = report.read_text()
    assert "(Fig. 10) Level sets with every L_i >= 5" in text and (tmp_path / "plots" / "fig10.png").is_file()
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert all(r["judge_fd"] is not None and r["bits_per_token"] is not None for r in rows)  # Stage II ran


def test_study_jobs_train_the_same_runs_as_one_process(tmp_path):
    """``jobs=2`` trains the pairs in two worker processes; every number equals the single-process study's."""
    sets = [[5, 3], [4, 4]]
    overrides = SMOKE + SMOKE_STAGE2
    run_study("levels", tmp_path / "one", level_sets=sets, overrides=overrides)
    run_study("levels", tmp_path / "two", level_sets=sets, overrides=overrides, jobs=2)
    keys = ("name", "psnr", "codes_used", "class_accuracy", "judge_fd", "bits_per_token", "stage2_step")
    one, two = (
        [{k: r[k] for k in keys} for r in json.loads((tmp_path / d / "results.json").read_text())["results"]]
        for d in ("one", "two")
    )
    assert one == two and len(one) == 2
    timing = json.loads((tmp_path / "two" / "study.json").read_text())["timing"]
    assert timing["runs_trained"] == 4
    # the runs' own logged cost, whichever worker trained them: every tokenizer and MaskGIT counted once
    budget = json.loads((tmp_path / "two" / "results.json").read_text())["study"]["budget"]
    assert "Training time logged by the 4 evaluated runs (tokenizers and MaskGITs)" in budget
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_study("levels", tmp_path / "bad", level_sets=sets, overrides=overrides, jobs=0)


def test_a_levels_study_skips_a_pair_another_call_is_training(tmp_path):
    """Two calls into one folder: a tokenizer whose run dir another process holds is skipped with its MaskGIT
    (a line says so), the other pair trains; the next call trains the pair skipped."""
    from fsq.rundir import RunDirLock

    sets = [[5, 3], [4, 4]]
    lines: list[str] = []
    with RunDirLock(tmp_path / "runs" / "fsq_5x3", "training"):  # another call training the first tokenizer
        run_study("levels", tmp_path, level_sets=sets, overrides=SMOKE + SMOKE_STAGE2, log=lines.append)
    assert any(line.startswith("    skipped: ") for line in lines)
    assert not (tmp_path / "runs" / "fsq_5x3_maskgit").exists() and (tmp_path / "runs" / "fsq_4x4_maskgit").is_dir()
    assert json.loads((tmp_path / "study.json").read_text())["timing"]["runs_trained"] == 2  # one pair
    run_study("levels", tmp_path, level_sets=sets, overrides=SMOKE + SMOKE_STAGE2, log=lambda *_: None)
    assert (tmp_path / "runs" / "fsq_5x3_maskgit").is_dir()
    assert len(json.loads((tmp_path / "results.json").read_text())["results"]) == 2


def test_bad_study_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown study"):
        plan("sizes")
    with pytest.raises(ValueError, match="unknown preset"):
        run_study("codebook-size", tmp_path, preset="tpu")
