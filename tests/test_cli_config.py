"""``fsq config`` shows the resolved config of every shipped config file, of every stage, and refuses mixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fsq.cli import main
from fsq.config import SCHEMAS

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def test_every_shipped_config_records_its_stage():
    assert len(CONFIGS) >= 17
    for path in CONFIGS:
        assert yaml.safe_load(path.read_text())["stage"] in SCHEMAS, path


@pytest.mark.parametrize("path", CONFIGS, ids=[f"{p.parent.name}/{p.stem}" for p in CONFIGS])
def test_fsq_config_shows_any_stage(path, capsys):
    assert main(["config", str(path), "train.seed=3"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["stage"] == yaml.safe_load(path.read_text())["stage"] and shown["train"]["seed"] == 3


def test_a_config_of_another_stage_is_refused(capsys):
    tokenizer, maskgit = ROOT / "configs/tokenizer/fsq_mnist.yaml", ROOT / "configs/maskgit/fsq_mnist.yaml"
    assert main(["config", str(tokenizer), str(maskgit)]) == 2
    assert "is a 'maskgit' config, not a 'tokenizer' one" in capsys.readouterr().err
    assert main(["config", "--stage", "uvim", str(tokenizer)]) == 2
    assert main(["config", "--stage", "uvim", "task.name=segmentation"]) == 2
    assert "task.name: 'segmentation' is not one of ['depth', 'colorization', 'panoptic']" in capsys.readouterr().err


def test_no_file_cites_documents_outside_the_repository():
    """Docstrings and comments cite papers, public code and files in the repository, never outside notes."""
    outside = ("reference/", "DESIGN.md", "recipes.md", "style-anchors", "/work/")
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), ROOT / "README.md"]:
        if path == Path(__file__):
            continue
        text = path.read_text()
        assert not [s for s in outside if s in text], path
