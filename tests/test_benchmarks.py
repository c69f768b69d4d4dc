"""Benchmark scripts run tiny: the GPU table on CPU under Triton's interpreter (``--gpu-table --dry-run``) and the
data benchmark (``benchmarks/data.py --quick``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fsq.studies.bench_tables import markdown_table

ROOT = Path(__file__).parents[1]


def test_gpu_table_dry_run(tmp_path):
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("the dry run needs Triton's interpreter (CPU-only machines; tests/conftest.py sets it)")
    out = tmp_path / "fsq_gpu.json"
    script = ROOT / "benchmarks" / "quantizers.py"
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(script), "--gpu-table", "--dry-run", "--out", str(out)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "floor ms" in run.stdout
    results = json.loads(out.read_text())["results"]
    host = json.loads(out.read_text())["benchmark"]["host_us_per_call"]
    assert len(host) == 9 and all(v > 0 for v in host.values()) and "FSQ step, deferred check" in host
    names = {r["quantizer"] for r in results}
    assert {"fused", "eager", "floor"} <= names
    assert all(r["median_ms"] > 0 for r in results if "median_ms" in r)
    assert {(r["N"], r["d"]) for r in results} == {(256, 3), (256, 4)}
    table = markdown_table(json.loads(out.read_text()))  # what the README block renders
    assert "| 3 | 2^8 |" in table and "| 4 | 2^8 |" in table and "cpu (dry run" in table


@pytest.mark.integration
def test_data_benchmark_quick_run(tmp_path):
    """``benchmarks/data.py --quick``: loader cells for each source and worker count, the model step, a table."""
    out = tmp_path / "data.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "data.py"), "--quick", "--threads", "1", "--out", str(out)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| 32 | PNG folder |" in run.stdout and "| 32 | WebDataset shard |" in run.stdout
    rows = json.loads(out.read_text())["results"]
    cells = {(r["source"], r["workers"]) for r in rows if r["what"] == "loader"}
    assert cells == {(s, w) for s in ("folder", "wds") for w in (0, 1, 2)}
    assert all(r["images_per_s"] > 0 for r in rows) and [r["what"] for r in rows].count("model") == 1


def test_lazy_r1_benchmark_quick_run(tmp_path):
    """``benchmarks/lazy_r1.py --quick``: both settings timed side by side, a table and the JSON."""
    out = tmp_path / "lazy_r1.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "lazy_r1.py"), "--quick", "--out", str(out)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| discriminator step | r1_every=1 s | r1_every=16 s | speedup |" in run.stdout
    result = json.loads(out.read_text())
    assert len(result["samples"]["1"]) == len(result["samples"]["16"]) == 2
    assert all(v > 0 for v in result["seconds_per_step"].values()) and result["speedup"] > 0


def test_training_curve_puts_an_earlier_curves_phases_first(tmp_path):
    """``benchmarks/training_curve.py --after``: a fine-tune appended to a curve published earlier (whose run dirs are
    gone): the earlier phases first, the totals over all, the load averages joined."""
    import importlib.util

    from fsq.cli import main

    run = tmp_path / "tune"
    small = ["train.steps=4", "train.batch_size=4", "train.threads=1", "train.checkpoint_every=2", "train.log_every=1"]
    tiny = ["data.train_limit=32", "data.eval_limit=4", "model.filters=8", "model.num_groups=4"]
    assert main(["train", "tokenizer", "fsq_tones_1d", *small, *tiny, "--run-dir", str(run)]) == 0
    spec = importlib.util.spec_from_file_location("training_curve", ROOT / "benchmarks" / "training_curve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    earlier_load = {"samples": 2, "mean": 3.0, "min": 2.0, "max": 4.0}
    earlier = {"phases": [{"run": "old", "steps": 10, "wall_s_from_step_times": 5.0, "threads": 2, "rows": []}]}
    loads = tmp_path / "load.txt"
    loads.write_text(" 10:00:00 up 1 day,  load average: 1.00, 1.0, 1.0\n 10:01:00 up, load average: 3.00, 2, 2\n")
    data = module.curve([run], loads, {**earlier, "load_average_1min": earlier_load})
    assert [p["run"] for p in data["phases"]] == ["old", "tune"]
    assert data["steps"] == 14 and data["threads"] == [1, 2]
    assert data["wall_s_from_step_times"] == pytest.approx(5.0 + data["phases"][1]["wall_s_from_step_times"])
    assert data["load_average_1min"] == {"samples": 4, "mean": 2.5, "min": 1.0, "max": 4.0}
    assert data["phases"][1]["load_average_1min"]["mean"] == 2.0
    assert module.curve([run])["phases"][0]["run"] == "tune"  # without --after: the runs alone


def test_benchmarks_record_repository_paths_relative_to_its_root():
    """A published benchmark result names no folder of the machine that measured it: paths inside the repository
    are recorded relative to its root; others, and every other argument, as given."""
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import side_by_side
    finally:
        sys.path.pop(0)
    args = argparse.Namespace(
        out=ROOT / "benchmarks" / "results" / "x.json",
        config=str(ROOT / "configs" / "a.yaml"),
        cell=1,
        elsewhere="/etc/hosts",
        given="runs/x",
        repeats=3,
    )
    recorded = side_by_side.recorded_args(args, leave_out=("cell",))
    assert recorded == {
        "out": "benchmarks/results/x.json",
        "config": "configs/a.yaml",
        "elsewhere": "/etc/hosts",
        "given": "runs/x",
        "repeats": 3,
    }
    for result in (ROOT / "benchmarks" / "results").glob("*.json"):  # the published ones: no checkout's folder
        text = result.read_text()
        assert str(ROOT.resolve()) not in text, result.name
        assert not re.search(r'"/[^"]*/(benchmarks|configs)/[^"]*"', text), result.name
