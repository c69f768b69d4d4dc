"""Checkpoints: atomic folders, keep-last-k, safe loading (pickles, truncation and foreign configs refused)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from fsq import checkpoint as ckpt


def _save(run_dir, step, keep_last=2, config_hash="abc"):
    weights = {"model": {"w": torch.full((3,), float(step))}}
    torch_state = {"optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"lr": 0.1}]}}
    return ckpt.save_checkpoint(run_dir, step, weights, torch_state, {"config_hash": config_hash}, keep_last)


def test_save_load_and_keep_last(tmp_path):
    for step in (10, 20, 30):
        _save(tmp_path, step)
    dirs = ckpt.checkpoint_dirs(tmp_path)
    assert [d.name for d in dirs] == ["step_000020", "step_000030"]
    weights, torch_state, state = ckpt.load_checkpoint(dirs[-1], ["model"], "abc")
    assert torch.equal(weights["model"]["w"], torch.full((3,), 30.0))
    assert torch_state["param_groups"][0]["lr"] == 0.1 if "param_groups" in torch_state else True
    assert state["step"] == 30


def test_unfinished_temporary_folder_is_ignored(tmp_path):
    _save(tmp_path, 10)
    (tmp_path / "checkpoints" / ".step_000020.tmp").mkdir()
    assert ckpt.latest_checkpoint(tmp_path).name == "step_000010"


def test_other_config_refused(tmp_path):
    directory = _save(tmp_path, 5)
    with pytest.raises(ckpt.CheckpointError, match="different config"):
        ckpt.load_checkpoint(directory, ["model"], "zzz")


def test_pickle_instead_of_safetensors_refused(tmp_path):
    directory = _save(tmp_path, 5)
    with open(directory / "model.safetensors", "wb") as handle:
        pickle.dump({"w": [1, 2, 3]}, handle)
    with pytest.raises(ckpt.CheckpointError, match="not a valid safetensors file"):
        ckpt.load_checkpoint(directory, ["model"], "abc")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/fsq_pwned",))


def test_malicious_pickle_is_never_executed(tmp_path):
    directory = _save(tmp_path, 5)
    torch.save({"x": _Exploit()}, directory / "optimizer.pt")
    if os.path.exists("/tmp/fsq_pwned"):
        os.remove("/tmp/fsq_pwned")
    with pytest.raises(ckpt.CheckpointError, match="cannot be loaded safely"):
        ckpt.load_checkpoint(directory, ["model"], "abc")
    assert not os.path.exists("/tmp/fsq_pwned")


def test_truncated_files_refused(tmp_path):
    directory = _save(tmp_path, 5)
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match="truncated"):
        ckpt.load_checkpoint(directory, ["model"], "abc")
    directory = _save(tmp_path, 6)
    data = (directory / "optimizer.pt").read_bytes()
    (directory / "optimizer.pt").write_bytes(data[:20])
    with pytest.raises(ckpt.CheckpointError, match="cannot be loaded safely"):
        ckpt.load_checkpoint(directory, ["model"], "abc")
