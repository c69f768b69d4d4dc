"""Progress and logging a user expects (issue 24, item 10): a start banner, bars with an ETA for training,
evaluation and token export (the smoke presets keep them), what a re-run of a finished run found, and
TensorBoard image grids during training at the log cadence."""

from __future__ import annotations

import pytest

from fsq import app
from fsq.api import load
from fsq.data import SourceUnavailable, load_images
from fsq.progress import progress


@pytest.fixture
def mnist():
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))


def test_progress_is_a_plain_iterable_when_off_or_not_rank_0(monkeypatch, capsys):
    assert list(progress(range(3), total=3, desc="x", enabled=False)) == [0, 1, 2]
    monkeypatch.setenv("RANK", "1")
    assert list(progress(range(3), total=3, desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert list(progress(range(3), total=3, desc="counting")) == [0, 1, 2]
    assert "counting" in capsys.readouterr().err
    assert list(progress(range(3), total=3, desc="auto", enabled=None)) == [0, 1, 2]  # not a terminal: no bar
    assert "auto" not in capsys.readouterr().err


@pytest.mark.integration
def test_banner_bars_rerun_note_and_training_images(mnist, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from fsq.stages.tokens import export_tokens

    cfg = load("fsq_mnist", "smoke", stage="tokenizer", overrides=["train.threads=1", "train.steps=4"])
    assert cfg.train.progress  # the smoke preset does not hide the bar
    run = tmp_path / "run"
    app.train(cfg, run)
    captured = capsys.readouterr()
    assert f"run dir {run}" in captured.out and "source=mnist" in captured.out
    assert "trainable parameters on cpu" in captured.out and "4 x batch 16 (from scratch)" in captured.out
    assert "fsq_mnist_smoke train" in captured.err and "fsq_mnist_smoke eval test" in captured.err

    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0}).Reload()
    steps = [e.step for e in events.Images("train/reconstructions")]
    assert steps == [2, 4]  # log_every 2: a grid at every log, not only at the end

    app.train(cfg, run)  # finished: says what it found, trains and evaluates nothing
    out = capsys.readouterr().out
    assert "already trained (checkpoint of step 4 of 4)" in out and "holds the evaluation of step 4" in out

    export_tokens(run, "test", tmp_path / "tokens", limit=64, batch_size=16)
    assert "tokenizing" not in capsys.readouterr().err  # by default a bar only on a terminal (logs stay clean)
    export_tokens(run, "test", tmp_path / "tokens2", limit=64, batch_size=16, show_progress=True)
    assert "tokenizing test" in capsys.readouterr().err
