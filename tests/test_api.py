"""The Python API (``fsq.train``, ``fsq.evaluate``): the README's section runs as printed, and it validates as
the CLI does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fsq
from fsq.config import ConfigError
from fsq.data import SourceUnavailable, load_images

ROOT = Path(__file__).parents[1]


def _readme_block() -> str:
    section = re.search(r"## Python API\n(.*?)\n## ", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


@pytest.mark.integration
def test_the_readme_python_api_section_runs(tmp_path, monkeypatch, capsys):
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    scope: dict = {}
    exec(compile(_readme_block(), "README.md", "exec"), scope)
    assert scope["result"]["step"] == 8 and scope["numbers"]["step"] == 8
    assert (tmp_path / "runs/api/eval/step_000008.json").is_file()
    assert (tmp_path / "runs/api_cfg/checkpoints/step_000006").is_dir()
    out = capsys.readouterr().out
    assert "runs/api" in out and "trainable parameters" in out  # the start banner


def test_train_validates_as_the_cli_does(tmp_path):
    with pytest.raises(ConfigError, match="train.steps: 0 is outside"):
        fsq.train("fsq_mnist", "smoke", stage="tokenizer", overrides=["train.steps=0"], run_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown key"):
        fsq.train("fsq_mnist", stage="tokenizer", overrides=["train.stepz=3"], run_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="several|candidates|stage"):
        fsq.train("fsq_mnist", run_dir=tmp_path / "c")  # a name shipped for two stages needs the stage
    from fsq.api import load

    cfg = load("fsq_mnist", stage="tokenizer")
    with pytest.raises(ConfigError, match="not a 'maskgit' one"):
        fsq.train(cfg, stage="maskgit", run_dir=tmp_path / "d")
    assert not any(tmp_path.iterdir())  # nothing was written


def test_evaluate_refuses_a_bundle_with_the_reason():
    with pytest.raises(ConfigError, match="is a bundle"):
        fsq.evaluate("mnist-fsq")
    assert {"train", "evaluate"} <= set(fsq.__all__)
