"""End to end on streamed sources (small generated data): an image folder, WebDataset shards and a local Hugging
Face dataset each train, evaluate and export tokens; a run killed mid-epoch resumes (2 workers) to the same
weights as an uninterrupted run; 2-process gloo DDP over a folder matches one process at the same global batch,
also with gradient accumulation; two local torchrun "nodes" (c10d rendezvous) match one 2-process run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from streaming_sources import make_folder, make_hf_saved, make_shards  # noqa: E402

from fsq import app  # noqa: E402
from fsq.checkpoint import load_safetensors  # noqa: E402
from fsq.config import TokenizerExperiment, load_config  # noqa: E402
from fsq.rundir import read_metrics  # noqa: E402
from fsq.stages.tokens import export_tokens, load_tokens  # noqa: E402

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"
COMMON = ["data.image_size=16", "data.channels=3", "train.threads=1", "eval.fid_samples=0", "data.eval_limit=null"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("streamed")
    folder = make_folder(root / "images")
    out = {"folder": str(folder), "wds": f"wds:{make_shards(folder, root / 'shards', per_shard=10)}/{{split}}-*.tar"}
    try:
        import datasets  # noqa: F401

        out["hf"] = f"hf:{make_hf_saved(folder, root / 'hf')}"
    except ImportError:
        pass
    return out


def _cfg(source: str, *overrides: str) -> TokenizerExperiment:
    return load_config(TokenizerExperiment, [SMOKE], [f"data.source={source}", *COMMON, *overrides])


def _weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_safetensors(run_dir / "checkpoints" / f"step_{step:06d}" / "model.safetensors")


@pytest.mark.parametrize("kind", ["folder", "wds", "hf"])
def test_streamed_source_trains_evaluates_and_exports_tokens(kind, sources, tmp_path):
    if kind not in sources:
        pytest.skip("the `datasets` package is not installed")
    run = tmp_path / "run"
    result = app.train(_cfg(sources[kind]), run)
    assert result["eval"]["num_samples"] == 8 and result["eval"]["tokens"] == 8 * 16  # test split: 8 images
    assert [r["step"] for r in read_metrics(run)] == [2, 4]
    manifest = export_tokens(run, "test", tmp_path / "tokens", shard_size=5, batch_size=3)
    tokens, labels, _ = load_tokens(tmp_path / "tokens")
    assert manifest["num_images"] == 8 and [s["count"] for s in manifest["shards"]] == [5, 3]
    assert tokens.shape == (8, 4, 4) and sorted(labels.tolist()) == [0] * 4 + [1] * 4


def test_kill_mid_epoch_then_resume_equals_uninterrupted_with_two_workers(sources, tmp_path):
    cfg = _cfg(sources["folder"], "train.steps=6", "train.eval_at_end=false", "data.workers=2")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    app.train(cfg, straight)

    def kill_at_step_3(phase: str, step: int) -> None:
        if step == 3:  # 24 images, batch 16: step 3 is the middle of the 2nd epoch; step 2's checkpoint is on disk
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        app.train(cfg, resumed, hooks=[kill_at_step_3])
    assert (resumed / "checkpoints" / "step_000002").is_dir()
    app.train(cfg, resumed)
    a, b = _weights(straight, 6), _weights(resumed, 6)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_process_gloo_matches_one_process_on_a_folder(sources, tmp_path, run_fsq):
    common = [str(SMOKE), f"data.source={sources['folder']}", *COMMON, "train.steps=4", "data.workers=1"]
    single, double = tmp_path / "single", tmp_path / "double"
    run = run_fsq(["train", "tokenizer", *common, "--run-dir", str(single)])
    assert run.returncode == 0, run.stderr[-3000:]
    run = run_fsq(["train", "tokenizer", *common, "--run-dir", str(double)], nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = _weights(single, 4), _weights(double, 4)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_two_process_gloo_with_accumulation_matches_one_process(sources, tmp_path, run_fsq):
    """Global batch 16: one process in one pass == 2 ranks x 2 accumulated micro-batches of 4 (DDP no_sync)."""
    common = [str(SMOKE), f"data.source={sources['folder']}", *COMMON, "train.steps=4", "train.eval_at_end=false"]
    single, double = tmp_path / "single", tmp_path / "double"
    run = run_fsq(["train", "tokenizer", *common, "--run-dir", str(single)])
    assert run.returncode == 0, run.stderr[-3000:]
    run = run_fsq(["train", "tokenizer", *common, "train.accumulate=2", "--run-dir", str(double)], nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = _weights(single, 4), _weights(double, 4)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    for ra, rb in zip(read_metrics(single), read_metrics(double)):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-4)


def test_two_local_nodes_match_one_two_process_run(sources, tmp_path, run_fsq):
    """Multi-node torchrun as the README gives it: two launches (``--nnodes 2``, node ranks 0 and 1, one gloo
    process each, a c10d rendezvous on localhost) train as one 2-process ``--standalone`` run. That each rank reads
    only its share is the loader's (tests/data/test_streaming_data.py: disjoint ranks); here ranks come from
    torchrun's node ranks instead of local ranks."""
    import os
    import socket
    import subprocess

    common = [str(SMOKE), f"data.source={sources['folder']}", *COMMON, "train.steps=4", "train.eval_at_end=false"]
    standalone, nodes = tmp_path / "standalone", tmp_path / "nodes"
    run = run_fsq(["train", "tokenizer", *common, "--run-dir", str(standalone)], nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    launches = [
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
        + ["--node-rank", str(rank), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]
        + ["--rdzv-id", "fsq-test", "--rdzv-conf", f"is_host={int(rank == 0)}", "--local-addr", "127.0.0.1"]
        + ["-m", "fsq", "train", "tokenizer", *common, "--run-dir", str(nodes)]
        for rank in (0, 1)
    ]
    processes = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in launches
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    assert json.loads((nodes / "meta.json").read_text())["runs"][-1]["world_size"] == 2
    a, b = _weights(standalone, 4), _weights(nodes, 4)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
