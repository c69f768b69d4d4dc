"""Defaults that fit the machine (issue 24, items 3 and 8): torch.compile only where it pays, loader workers
bounded by the cores, a flat image folder named with the keys to set, the user's OMP_NUM_THREADS kept."""

from __future__ import annotations

import os

import pytest
import torch
from PIL import Image

from fsq.api import load
from fsq.config import ConfigError
from fsq.data.loader import usable_workers
from fsq.stages.tokenizer import open_split
from fsq.training.loop import compiles
from fsq.training.state import setup_process


def test_compile_auto_compiles_on_cuda_only_and_the_folder_config_uses_it():
    assert not compiles("auto", torch.device("cpu")) and compiles("auto", torch.device("cuda"))
    assert compiles(True, torch.device("cpu")) and not compiles(False, torch.device("cuda"))
    cfg = load("fsq_folder_256", stage="tokenizer", overrides=["data.source=/tmp"])
    assert cfg.train.compile == "auto" and load("fsq_mnist", stage="tokenizer").train.compile is False


def test_loader_workers_are_bounded_by_the_cores(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert usable_workers(0) == 0 and usable_workers(1) == 1
    assert usable_workers(cores + 6) == cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(cores * 4))  # more ranks than cores: one worker each
    assert usable_workers(8) == 1


def test_a_flat_folder_names_the_keys_to_set(tmp_path):
    for i in range(3):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / f"{i}.png")
    cfg = load("fsq_folder_256", stage="tokenizer", overrides=[f"data.source={tmp_path}"])
    with pytest.raises(ConfigError) as error:
        open_split(cfg, cfg.data.train_split, None)
    assert "data.train_split=all data.eval_split=all" in str(error.value) and "sub-folders: none" in str(error.value)
    flat = load("fsq_folder_256", stage="tokenizer", overrides=[f"data.source={tmp_path}", "data.train_split=all"])
    assert len(open_split(flat, "all", None)) == 3


@pytest.mark.parametrize("omp", [None, "1"])
def test_train_threads_does_not_override_the_users_omp_num_threads(omp, monkeypatch):
    before = torch.get_num_threads()
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    torch.set_num_threads(1)
    try:
        setup_process(load("fsq_mnist", stage="tokenizer", overrides=["train.threads=2", "train.device=cpu"]))
        assert torch.get_num_threads() == (2 if omp is None else 1)
    finally:
        torch.set_num_threads(before)
