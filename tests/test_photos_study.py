"""The photos study: its quick preset trains the four quantizers and reports them beside the anchors; the report
(torch-free) decides each claim by the shared verdicts from the seed means and spreads it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsq import rundir
from fsq.studies import KINDS, photos
from fsq.studies.common import write_study


def _fake_study(tmp_path: Path, fsq_psnr: list[float], naive_psnr: list[float]) -> Path:
    """A study folder whose FSQ runs' evaluations hold the given PSNRs (and the naive anchor's), one per seed."""
    runs = []
    for seed, (ours, naive) in enumerate(zip(fsq_psnr, naive_psnr, strict=True)):
        entry = {"name": f"photos_fsq_s{seed}", "label": "FSQ", "seed": seed, "run_dir": f"runs/photos_fsq_s{seed}"}
        runs.append(entry)
        anchor = {"psnr": naive, "ssim": 0.5, "bits_per_image": 2560, "payload_bits_per_image": 2560, "num_samples": 4}
        e = {
            "step": 10,
            "psnr": ours,
            "ssim": 0.6,
            "codes_used": 900,
            "num_samples": 4,
            "anchors": {"tokenizer": {"bits_per_image": 2551.5}, "naive": anchor},
        }
        (tmp_path / entry["run_dir"] / rundir.EVAL).mkdir(parents=True)
        rundir.eval_path(tmp_path / entry["run_dir"], 10).write_text(json.dumps(e))
    study = {"kind": "photos", "title": "t", "description": "d", "overrides": [], "runs": runs}
    write_study(tmp_path, study)
    return tmp_path


@pytest.mark.parametrize(
    ("fsq_psnr", "naive_psnr", "word"),
    [
        ([26.0, 26.2, 26.1], [24.0, 24.1, 24.05], "**yes**"),  # 2.05 dB ahead, spread ~0.1: beats naive + 1 dB
        ([24.5, 24.6, 24.55], [24.0, 24.1, 24.05], "**no**"),  # 0.5 dB ahead: below naive + 1 dB, outside the band
        ([25.0, 26.5, 24.0], [24.0, 24.1, 24.05], "**not resolved**"),  # the gap hides in the seed spread
        ([27.0], [24.0], "**yes (single seed)**"),
    ],
)
def test_claims_follow_the_numbers_beside_them(tmp_path, fsq_psnr, naive_psnr, word):
    report = photos.write_report(_fake_study(tmp_path, fsq_psnr, naive_psnr)).read_text()
    line = next(x for x in report.splitlines() if x.startswith("- FSQ beats the naive codec by >= 1 dB"))
    assert word in line and "test: one-sided" in line, line
    assert f"naive {sum(naive_psnr) / len(naive_psnr):.2f} dB" in line
    assert "Runs not finished" not in report


def test_bad_plans_are_errors():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        photos.plan("huge", [0], [])
    with pytest.raises(ValueError, match="seeds must be distinct"):
        photos.plan("quick", [0, 0], [])
    with pytest.raises(ValueError, match="sets optim.lr itself"):
        photos.plan("quick", [0], ["optim.lr=0.01"])


def test_every_quantizer_gets_the_same_number_of_trials():
    runs = photos.plan("quick", [0, 1], [])
    base = runs[0][1].optim.lr / photos.TRIALS["FSQ"][0][0]  # the first run: FSQ's first trial
    counts = {len(t) for t in photos.TRIALS.values()}
    assert len(counts) == 1 and len(runs) == 2 * len(photos.QUANTIZERS) * counts.pop()
    for label, trials in photos.TRIALS.items():
        mine = [(e, c) for e, c in runs if e["label"] == label and e["seed"] == 1]
        assert [e["lr"] for e, _ in mine] == [c.optim.lr for _, c in mine] == [f * base for f, _ in trials]
        for (entry, cfg), (_, settings) in zip(mine, trials, strict=True):
            assert cfg.quantizer.kind == photos.QUANTIZERS[label]["kind"]
            for key, value in settings.items():  # VQ's extra trials change its quantizer, and name it
                assert getattr(cfg.quantizer, key) == value and f"{key}={value}" in entry["setting"]
                assert f"_{key}{value}_s1" in entry["name"]
            assert bool(settings) == ("setting" in entry)
    vq = {e["name"]: c.quantizer for e, c in runs if e["label"] == "VQ" and e["seed"] == 0}
    assert sorted(q.dim for q in vq.values()) == [8, 32, 32, 32]
    assert sorted(q.recipe for q in vq.values()).count("maskgit_noentropy") == 1
    assert len(set(vq)) == 4  # every trial has its own run dir
    anchored = {e["label"] for e, c in runs if c.eval.image_anchors}
    assert anchored == {"FSQ"}


def test_the_rate_is_chosen_on_val_not_on_the_held_out_crops(tmp_path):
    runs = []
    # FSQ: lr 0.001 is better on val, lr 0.002 better on the held-out crops; VQ's second trial has no val number yet
    for label, lr, val, held in [
        ("FSQ", 0.001, 25.0, 24.0),
        ("FSQ", 0.002, 24.0, 26.0),
        ("VQ", 0.001, 23.0, 23.0),
        ("VQ", 0.002, None, 23.5),
    ]:
        entry = {"name": f"{label}{lr}", "label": label, "seed": 0, "lr": lr, "run_dir": f"runs/{label}{lr}"}
        runs.append(entry)
        run_dir = tmp_path / entry["run_dir"]
        (run_dir / rundir.EVAL).mkdir(parents=True)
        rundir.eval_path(run_dir, 10).write_text(json.dumps({"step": 10, "psnr": held, "ssim": 0.5, "codes_used": 9}))
        if val is not None:
            rundir.eval_path(run_dir, 10, "_val.json").write_text(json.dumps({"step": 10, "psnr": val}))
    write_study(tmp_path, {"kind": "photos", "title": "t", "description": "d", "overrides": [], "runs": runs})
    report = photos.write_report(tmp_path).read_text()
    data = json.loads((tmp_path / "results.json").read_text())
    assert [(r["method"], r["psnr"]) for r in data["results"]] == [("FSQ", 24.0)]  # the val choice, not the best
    assert len(data["study"]["trials"]) == 4
    assert "| FSQ | 0.001 | 1 | 25.00 | 24.00 | yes |" in report and "| VQ | 0.001 | 1 | 23.00 | 23.00 | - |" in report
    assert "Runs not finished yet (rerun the study to resume them): VQ0.002" in report


@pytest.mark.parametrize(
    ("large", "small", "word"),
    [
        ([24.0, 24.2, 24.1], [22.0, 22.1, 22.05], "**yes**"),
        ([22.0, 22.1, 22.05], [24.0, 24.2, 24.1], "**no**"),
        ([23.0, 25.0, 21.0], [22.9, 23.0, 23.1], "**not resolved**"),
    ],
)
def test_the_sweep_claim_follows_the_seed_means_and_spread(large, small, word):
    from fsq.studies.common import over_seeds

    rows = [
        {
            "codebook_size": k,
            "seed": seed,
            "psnr": v,
            **dict.fromkeys(photos.SWEEP_NUMERIC[:1] + photos.SWEEP_NUMERIC[2:]),
        }
        for k, values in ((240, small), (64000, large))
        for seed, v in enumerate(values)
    ]
    groups = over_seeds(rows, ("codebook_size",), photos.SWEEP_NUMERIC)
    (line,) = photos.sweep_claims(groups)  # no rFID measured: no rFID line
    assert line.startswith("FSQ at 64000 codes beats FSQ at 240 codes in PSNR: " + word), line
    assert "test: one-sided" in line


def test_a_trial_with_another_setting_can_be_chosen(tmp_path):
    runs = []
    for name, lr, setting, val, held in [
        ("a", 0.001, "", 22.0, 22.0),
        ("b", 0.001, "dim=8", 23.0, 21.0),  # best on val: chosen, though worse on the held-out crops
        ("c", 0.002, "", 22.5, 24.0),
    ]:
        entry = {"name": name, "label": "VQ", "seed": 0, "lr": lr, "run_dir": f"runs/{name}"}
        runs.append({**entry, "setting": setting} if setting else entry)
        run_dir = tmp_path / entry["run_dir"]
        (run_dir / rundir.EVAL).mkdir(parents=True)
        rundir.eval_path(run_dir, 10).write_text(json.dumps({"step": 10, "psnr": held, "ssim": 0.5, "codes_used": 9}))
        rundir.eval_path(run_dir, 10, "_val.json").write_text(json.dumps({"step": 10, "psnr": val}))
    write_study(tmp_path, {"kind": "photos", "title": "t", "description": "d", "overrides": [], "runs": runs})
    report = photos.write_report(tmp_path).read_text()
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [(r["method"], r["psnr"]) for r in results] == [("VQ", 21.0)]
    assert "| VQ | 0.001 | dim=8 | 1 | 23.00 | 21.00 | yes |" in report
    assert "| VQ | 0.001 | - | 1 | 22.00 | 22.00 |  |" in report


def test_quick_study_runs_every_quantizer_beside_the_anchors(tmp_path):
    assert KINDS["photos"] is photos
    report = photos.run_photos_study(tmp_path, preset="quick", seeds=[0], log=lambda *_: None).read_text()
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    methods = [r["method"] for r in results]
    assert methods == ["FSQ", "naive codec", "JPEG", "JPEG (payload)", "WebP", "VQ", "LFQ", "BSQ"]
    trials = json.loads((tmp_path / "results.json").read_text())["study"]["trials"]
    assert len(trials) == 16 and all(t["val_psnr"] is not None and t["psnr"] is not None for t in trials)
    assert "## Tuning trials" in report
    # the codebook-size sweep: FSQ at 2^8 ... 2^16 codes (and the chosen trial's 1000), at FSQ's chosen rate
    study = json.loads((tmp_path / "study.json").read_text())
    from fsq.studies.tuning import choose_rates

    assert {r["rate"] for r in study["runs"] if r.get("role") == "sweep"} == {choose_rates(trials)["FSQ"]}
    sweep = json.loads((tmp_path / "results.json").read_text())["study"]["codebook_sweep"]
    assert [r["codebook_size"] for r in sweep] == [240, 1000, 4375, 15360, 64000]
    assert all(r["naive_psnr"] is not None and r["bits_per_image"] for r in sweep)  # anchors at each K's own bits
    assert sweep[0]["bits_per_image"] < sweep[-1]["bits_per_image"]
    assert "## Codebook size (FSQ)" in report and "- FSQ at 64000 codes beats FSQ at 240 codes in PSNR: **" in report
    by = {r["method"]: r for r in results}
    assert by["naive codec"]["bits_per_image"] == 160 and by["FSQ"]["num_samples"] == 8  # 4 x 4 tokens, 10 bits
    assert by["VQ"]["bits_per_image"] == pytest.approx(160.0)
    # every tokenizer's perceptual distance (eval.perceptual), none for the codecs
    assert all(by[label]["perceptual"] > 0 for label in photos.QUANTIZERS) and by["WebP"]["perceptual"] is None
    assert "| perceptual distance |" in report
    for label in photos.QUANTIZERS:
        assert f"- {label} beats the naive codec by >= 1 dB PSNR: **" in report
    assert "(single seed)" in report and "Runs not finished" not in report


def test_quick_study_with_two_jobs_trains_every_run_once_and_reports_as_one_process(tmp_path, capfd):
    """``--jobs 2``: two worker processes share the trials, then the sweep at the rate the trials chose; every run
    is trained once and evaluated on val, and the report is the one a single process writes (same runs, same
    numbers: each run is deterministic on the CPU); the workers' shares of time count every run once."""
    one, two = tmp_path / "one", tmp_path / "two"
    photos.run_photos_study(one, preset="quick", seeds=[0], log=lambda *_: None)
    capfd.readouterr()
    photos.run_photos_study(two, preset="quick", seeds=[0], log=print, jobs=2)
    printed = capfd.readouterr().out
    study = json.loads((two / "study.json").read_text())
    assert printed.count("(from scratch)") == len(study["runs"]) == 20  # each run trained once (none resumed)
    assert study["timing"]["runs_trained"] == 20 and study["timing"].get("calls", 1) <= 4  # a share per worker/phase
    strip = lambda path: {k: v for k, v in json.loads(path.read_text()).items() if k != "study"}  # noqa: E731
    assert strip(two / "results.json") == strip(one / "results.json")
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        photos.run_photos_study(tmp_path / "three", preset="quick", seeds=[0], jobs=0)
