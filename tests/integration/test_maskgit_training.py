"""End to end, Stage II: MaskGIT trains on a smoke tokenizer's tokens, evaluates, samples, resumes exactly,
matches one process under 2-process gloo DDP, and the FSQ-vs-VQ study writes one report with both rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fsq import app
from fsq.checkpoint import load_safetensors
from fsq.config import MaskGITExperiment, TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, load_images
from fsq.rundir import read_metrics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"
SMOKE_MASKGIT = ROOT / "configs" / "presets" / "smoke_maskgit.yaml"


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    root = tmp_path_factory.mktemp("tokenizers")
    runs = {}
    for kind in ("fsq", "vq"):
        cfg = load_config(
            TokenizerExperiment,
            [ROOT / f"configs/tokenizer/{kind}_mnist.yaml", SMOKE],
            ["train.threads=1", "data.train_limit=512"],
        )
        app.train(cfg, root / kind)
        runs[kind] = root / kind
    return runs


def _cfg(tokenizer: Path, *overrides: str) -> MaskGITExperiment:
    return load_config(
        MaskGITExperiment,
        [ROOT / "configs/maskgit/fsq_mnist.yaml", SMOKE_MASKGIT],
        [f"data.tokenizer={tokenizer}", "train.threads=1", *overrides],
    )


def test_train_evaluate_and_sample(tokenizers, tmp_path):
    run = tmp_path / "run"
    result = app.train(_cfg(tokenizers["fsq"]), run)
    for name in (
        "config.yaml",
        "meta.json",
        "metrics.jsonl",
        "checkpoints/step_000004/ema.safetensors",
        "tokens/train/manifest.json",
        "eval/step_000004.json",
        "eval/step_000004_samples_g0.png",
        "eval/step_000004_samples_g1.png",
    ):
        assert (run / name).exists(), name
    assert [r["step"] for r in read_metrics(run)] == [2, 4]
    evaluation = result["eval"]
    assert evaluation["codebook_size"] == 1000 and evaluation["num_classes"] == 10
    assert [g["guidance"] for g in evaluation["guidance"]] == [0.0, 1.0]
    for g in evaluation["guidance"]:
        assert 0 <= g["class_accuracy"] <= 1 and len(g["per_class_accuracy"]) == 10
        assert 0 < g["codes_used"] <= 20 * 49
    assert 0 < evaluation["compression"]["bits_per_token"]
    assert evaluation["compression"]["uniform_bits_per_token"] == pytest.approx(np.log2(1000))
    assert [s["steps"] for s in evaluation["speed"]] == [1, 2] and evaluation["speed"][0]["images_per_second"] > 0
    assert 0 < evaluation["classifier"]["test_accuracy"] <= 1
    assert evaluation["reference_split"] == "train" and evaluation["eval_split"] == "test"  # the defaults
    for g in evaluation["guidance"]:
        assert 0 <= g["judge_precision"] <= 1 and 0 <= g["judge_recall"] <= 1 and g["judge_fd"] >= 0
    usage = evaluation["tokenizer_usage"]  # the tokenizer's codes on as many held-out images as samples
    assert usage["images"] == 20 and usage["split"] == "test" and 0 < usage["codes_used"] <= 20 * 49

    from fsq.cli import main

    out = tmp_path / "samples"
    assert main(["sample", str(run), "--classes", "3", "7", "--num", "5", "--steps", "3", "--out", str(out)]) == 0
    data = np.load(out / "samples.npz")
    assert data["images"].shape == (10, 1, 28, 28) and data["images"].dtype == np.uint8
    assert data["tokens"].shape == (10, 7, 7) and data["tokens"].max() < 1000
    assert data["labels"].tolist() == [3] * 5 + [7] * 5
    assert (out / "class_3.png").is_file() and (out / "class_7.png").is_file()
    again = tmp_path / "again"
    assert main(["sample", str(run), "--classes", "3", "7", "--num", "5", "--steps", "3", "--out", str(again)]) == 0
    assert np.array_equal(np.load(again / "samples.npz")["tokens"], data["tokens"])  # seeded
    assert main(["sample", str(run), "--classes", "12", "--out", str(again)]) == 2  # no such class
    assert main(["eval", str(run)]) == 0


def test_reuse_extends_an_evaluation_with_the_weights_it_lacks(tokenizers, tmp_path):
    from fsq.evaluation.maskgit import evaluate_maskgit

    def rows(result):  # each weight's row without its timing
        return {g["guidance"]: {k: v for k, v in g.items() if k != "seconds"} for g in result["guidance"]}

    run = tmp_path / "run"
    first = app.train(_cfg(tokenizers["fsq"]), run)["eval"]  # guidance 0 and 1
    wider = evaluate_maskgit(run, cfg=_cfg(tokenizers["fsq"], "eval.guidance=[0.0,0.5,1.0,2.0]"), reuse=True)
    assert [g["guidance"] for g in wider["guidance"]] == [0.0, 0.5, 1.0, 2.0]
    kept = {g["guidance"]: g for g in wider["guidance"] if g["guidance"] in (0.0, 1.0)}
    assert kept == {g["guidance"]: g for g in first["guidance"]}  # kept as measured (their timings too), not redone
    assert wider["compression"] == first["compression"] and wider["tokenizer_usage"] == first["tokenizer_usage"]
    assert json.loads((run / "eval/step_000004.json").read_text())["guidance"] == wider["guidance"]
    assert (run / "eval/step_000004_samples_g0.5.png").is_file()
    # a weight sampled alone comes out as it does beside others (what makes extending sound)
    alone = evaluate_maskgit(
        run, cfg=_cfg(tokenizers["fsq"], "eval.guidance=[0.5]", "eval.fid_guidance=null"), suffix="_alone"
    )
    assert rows(alone)[0.5] == rows(wider)[0.5]
    # another protocol (fewer samples) is redone whole, nothing of the old evaluation kept
    other = evaluate_maskgit(
        run, cfg=_cfg(tokenizers["fsq"], "eval.guidance=[0.0,1.0]", "eval.num_samples=10"), reuse=True
    )
    assert [g["guidance"] for g in other["guidance"]] == [0.0, 1.0]
    assert {g["num_samples"] for g in other["guidance"]} == {10} and other["tokenizer_usage"]["images"] == 10
    # a file written before the protocol was recorded is rebuilt from its fields and the run's seed
    path = run / "eval/step_000004.json"
    legacy = {k: v for k, v in first.items() if k != "protocol"}
    path.write_text(json.dumps(legacy))
    again = evaluate_maskgit(run, cfg=_cfg(tokenizers["fsq"], "eval.guidance=[0.0,1.0,2.0]"), reuse=True)
    assert {w: rows(again)[w] for w in (0.0, 1.0)} == rows(first) and rows(again)[2.0] == rows(wider)[2.0]
    for setting in ("eval.seed=7", "eval.batch_size=8"):  # another seed or batch: other random draws
        path.write_text(json.dumps(legacy))
        redone = evaluate_maskgit(run, cfg=_cfg(tokenizers["fsq"], "eval.guidance=[0.0]", setting), reuse=True)
        assert rows(redone)[0.0] != rows(first)[0.0], setting


def test_missing_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train it first"):
        app.train(_cfg(tmp_path / "nothing"), tmp_path / "run")


def test_stop_and_resume_equals_uninterrupted(tokenizers, tmp_path):
    cfg = _cfg(tokenizers["fsq"], "train.steps=6", "train.eval_at_end=false")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    app.train(cfg, straight)

    def crash_at_step_5(phase: str, step: int) -> None:
        if step == 4:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        app.train(cfg, resumed, hooks=[crash_at_step_5])
    app.train(cfg, resumed)
    for name in ("model", "ema"):
        a = load_safetensors(straight / "checkpoints/step_000006" / f"{name}.safetensors")
        b = load_safetensors(resumed / "checkpoints/step_000006" / f"{name}.safetensors")
        for key in a:
            assert np.array_equal(a[key].numpy(), b[key].numpy()), (name, key)


def test_two_process_gloo_matches_one_process(tokenizers, tmp_path, run_fsq):
    common = [
        str(ROOT / "configs/maskgit/fsq_mnist.yaml"),
        str(SMOKE_MASKGIT),
        f"data.tokenizer={tokenizers['fsq']}",
        "train.threads=1",
        "model.dropout=0.0",
        "train.eval_at_end=false",
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    one = run_fsq(["train", "maskgit", *common, "--run-dir", str(single)])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_fsq(["train", "maskgit", *common, "--run-dir", str(double)], nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_safetensors(single / "checkpoints/step_000004/model.safetensors")
    b = load_safetensors(double / "checkpoints/step_000004/model.safetensors")
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
    for ra, rb in zip(read_metrics(single), read_metrics(double)):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-4)


def rundir_has_eval(run_dir: Path) -> bool:
    from fsq import rundir

    return bool(rundir.eval_files(run_dir)) if run_dir.is_dir() else False


def test_study_writes_both_rows_at_two_budgets_on_val_and_test(tokenizers, tmp_path):
    from fsq.cli import main

    configs = []
    for kind in ("fsq", "vq"):
        path = tmp_path / f"{kind}.yaml"
        path.write_text(
            (ROOT / f"configs/maskgit/{kind}_mnist.yaml")
            .read_text()
            .replace(f"tokenizer: runs/{kind}_mnist", f"tokenizer: {tokenizers[kind]}")
        )
        configs.append(str(path))
    study = tmp_path / "study"
    overlay = str(SMOKE_MASKGIT)
    # the overlay is a config file too: merge it into each config via a per-run override list
    args = [
        "study",
        "maskgit",
        "--out",
        str(study),
        configs[0],
        configs[1],
        "train.threads=1",
        "train.steps=2",
        "eval.num_samples=20",
        "eval.fid_samples=0",
        "eval.speed_batch=4",
        "eval.speed_steps=[1]",
        "eval.compression_samples=8",
        "eval.classifier_steps=20",
        "model.width=32",
        "model.depth=1",
        "model.heads=2",
        "model.mlp_dim=64",
        "model.preset=null",
        "data.train_limit=256",
        "train.batch_size=16",
        "train.progress=false",
        "eval.steps=3",
        "eval.grid_per_class=2",
        "eval.guidance=[0.0,1.0]",
        "study.budgets=[1,2]",
        "study.seeds=[0]",
    ]
    assert overlay  # (kept explicit: the study takes configs and key=value overrides)
    from fsq.rundir import RunDirLock

    busy = study / "runs/maskgit_fsq_mnist_x1_s0"
    with RunDirLock(busy, "training"):  # another call of the study training this run: skipped, the rest trained
        assert main(args) == 0
    assert not rundir_has_eval(busy) and rundir_has_eval(study / "runs/maskgit_vq_mnist_x2_s0")
    assert "not finished" in (study / "report.md").read_text()
    assert main(args) == 0  # the next call trains the run skipped
    assert rundir_has_eval(busy)
    report = (study / "report.md").read_text()
    assert "| FSQ | 1x (2 steps) | 32 | 0" in report and "| VQ | 2x (4 steps) | 64 | 0" in report
    results = json.loads((study / "results.json").read_text())["results"]
    assert {(r["quantizer"], r["budget"], r["guidance"]) for r in results} == {
        (q, b, g) for q in ("FSQ", "VQ") for b in (1, 2) for g in (0.0, 1.0)
    }
    assert {(r["report_split"], r["tune_split"], r["reference_split"]) for r in results} == {("test", "val", "test")}
    assert all(r["val_judge_fd"] is not None and r["judge_fd"] != r["val_judge_fd"] for r in results)
    assert (study / "runs/maskgit_fsq_mnist_x2_s0/eval/step_000004_val.json").is_file()
    assert len(list((study / "samples").glob("*.png"))) == 4  # largest budget, first seed, CFG 0 and 1
    assert (study / "plots/guidance.png").is_file() and (study / "plots/budget.png").is_file()
    assert main(["report", str(study)]) == 0
    assert main(args) == 0  # a rerun reuses the finished runs
    before = json.loads((study / "results.json").read_text())
    val_eval = study / "runs/maskgit_vq_mnist_x2_s0/eval/step_000004_val.json"
    val_before = json.loads(val_eval.read_text())["guidance"]
    checkpoint = study / "runs/maskgit_fsq_mnist_x1_s0/checkpoints/step_000002/ema.safetensors"
    trained_at = checkpoint.stat().st_mtime_ns
    wider = [a if a != "eval.guidance=[0.0,1.0]" else "eval.guidance=[0.0,0.5,1.0]" for a in args]
    assert main(wider) == 0  # one more weight: evaluated on both splits, nothing retrained
    after = json.loads((study / "results.json").read_text())
    assert checkpoint.stat().st_mtime_ns == trained_at
    val_after = json.loads(val_eval.read_text())["guidance"]
    assert [val_after[0], val_after[2]] == val_before  # the weights measured before: kept, timings too
    assert {(r["quantizer"], r["budget"], r["guidance"]) for r in after["results"]} == {
        (q, b, g) for q in ("FSQ", "VQ") for b in (1, 2) for g in (0.0, 0.5, 1.0)
    }
    old_rows = {(r["name"], r["guidance"]): r for r in before["results"]}
    for r in after["results"]:
        if r["guidance"] != 0.5:
            assert r == old_rows[(r["name"], r["guidance"])]
        else:
            assert r["val_judge_fd"] is not None and r["judge_fd"] is not None
    timing = after["study"]["timing"]  # the call that skipped a run, the one that trained it, this one: summed
    assert timing["calls"] == 3 and timing["runs_trained"] == before["study"]["timing"]["runs_trained"]
    assert timing["wall_seconds"] > before["study"]["timing"]["wall_seconds"]
