"""Overrides as users type them (issue 24, items 4 and 5): anywhere on the command line, lists as ``8,5,5,5``;
smoke presets write to their own run dir and name the tokenizer they build on."""

from __future__ import annotations

import pytest

from fsq.api import default_run_dir, load
from fsq.cli import main
from fsq.config import ConfigError, TokenizerExperiment, load_config


def test_overrides_after_an_option_are_applied(tmp_path, capsys):
    run = tmp_path / "run"
    # train.steps=0 is out of range: the error proves the override after --run-dir reached the config
    assert main(["train", "tokenizer", "fsq_mnist", "smoke", "--run-dir", str(run), "train.steps=0"]) == 2
    assert "train.steps: 0 is outside" in capsys.readouterr().err and not run.exists()
    assert main(["config", "--stage", "tokenizer", "fsq_mnist", "smoke", "train.seed=5"]) == 0
    assert main(["config", "fsq_mnist", "--stage", "tokenizer", "train.seed=7", "quantizer.levels=7,5,5"]) == 0
    out = capsys.readouterr().out
    assert "seed: 7" in out and "- 7\n  - 5\n  - 5\n" in out


def test_an_unknown_option_is_still_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "tokenizer", "fsq_mnist", "--run-dri", "x"])
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    "typed, levels",
    [
        ("quantizer.levels=8,5,5,5", [8, 5, 5, 5]),
        ("quantizer.levels=[8,5,5,5]", [8, 5, 5, 5]),
        ("quantizer.levels=7, 5,5", [7, 5, 5]),
    ],
)
def test_list_values_with_or_without_brackets(typed, levels):
    assert load_config(TokenizerExperiment, [], [typed]).quantizer.levels == levels


def test_comma_lists_are_typed_and_strings_keep_their_commas():
    from fsq.config import MaskGITExperiment

    cfg = load_config(MaskGITExperiment, [], ["eval.guidance=0,0.5,1", "data.tokenizer=runs/a,b"])
    assert cfg.eval.guidance == [0.0, 0.5, 1.0] and cfg.data.tokenizer == "runs/a,b"
    with pytest.raises(ConfigError, match=r"quantizer.levels\[1\]"):
        load_config(TokenizerExperiment, [], ["quantizer.levels=8,x,5"])


def test_smoke_presets_have_their_own_run_dirs_and_name_their_tokenizer():
    smoke = load("fsq_mnist", "smoke", stage="tokenizer")
    real = load("fsq_mnist", stage="tokenizer")
    assert str(default_run_dir(smoke)) == "runs/fsq_mnist_smoke" and str(default_run_dir(real)) == "runs/fsq_mnist"
    maskgit = load("fsq_mnist", "smoke_maskgit", stage="maskgit")
    assert maskgit.name == "maskgit_fsq_mnist_smoke" and maskgit.data.tokenizer == "runs/fsq_mnist_smoke"
    assert load("fsq_mnist", stage="maskgit").data.tokenizer == "runs/fsq_mnist"  # the real one builds on the real
    given = load("fsq_mnist", "smoke_maskgit", stage="maskgit", overrides=["data.tokenizer=/tmp/tok"])
    assert given.data.tokenizer == "/tmp/tok"  # an override replaces the preset's link
    assert load("depth_fsq", "smoke_uvim", stage="uvim").name == "uvim_depth_fsq_smoke"


def test_previous_without_a_value_before_it_keeps_the_default(tmp_path):
    from fsq.config import MaskGITExperiment

    preset = tmp_path / "p.yaml"
    preset.write_text('stage: maskgit\nname: "{previous}_smoke"\ndata:\n  tokenizer: "{previous}_smoke"\n')
    cfg = load_config(MaskGITExperiment, [preset])
    assert cfg.data.tokenizer == "" and cfg.name == "maskgit_smoke"  # no tokenizer before it: none invented
    preset.write_text('stage: maskgit\ntrain:\n  steps: "{previous}0"\n')
    with pytest.raises(ConfigError, match="stands for a string"):
        load_config(MaskGITExperiment, [preset])


def test_a_failed_start_leaves_no_folders_behind(tmp_path, capsys):
    run = tmp_path / "runs" / "x"
    code = main(["train", "tokenizer", "fsq_mnist", "smoke", "--run-dir", str(run), f"data.source={tmp_path}/nope"])
    assert code == 2 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # the runs/ folder it made is gone with the run dir


def test_the_smoke_maskgit_names_the_smoke_tokenizer_it_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "maskgit", "fsq_mnist", "smoke_maskgit"]) == 2
    err = capsys.readouterr().err
    assert "data.tokenizer=runs/fsq_mnist_smoke holds no trained tokenizer" in err
    assert "fsq_mnist.yaml smoke --run-dir runs/fsq_mnist_smoke" in err and not any(tmp_path.iterdir())


def test_overrides_typed_after_a_list_option_are_moved_after_the_options():
    from fsq.cli import overrides_last

    typed = ["study", "video", "--seeds", "0", "1", "train.threads=1", "--tasks", "tokenizers", "x.y=2", "--out", "d"]
    assert overrides_last(typed) == [
        "study",
        "video",
        "--seeds",
        "0",
        "1",
        "--tasks",
        "tokenizers",
        "--out",
        "d",
        "train.threads=1",
        "x.y=2",
    ]
    # elsewhere nothing moves: a value of a one-value option, overrides before the options, files with no "="
    same = ["study", "maskgit", "a=1", "cfg.yaml", "--out", "runs/x=1", "--levels", "8,5,5,5"]
    assert overrides_last(same) == same


def test_a_study_takes_overrides_after_seeds_and_tasks(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import fsq.studies

    seen = {}
    report = tmp_path / "report.md"
    report.write_text("# report\n")

    def run(kind, out, overrides, options):
        seen.update(kind=kind, overrides=overrides, seeds=options["seeds"], tasks=options["tasks"])
        return report

    monkeypatch.setitem(fsq.studies.KINDS, "video", SimpleNamespace(run=run))
    argv = ["study", "video", "--tasks", "tokenizers", "train.threads=1", "--seeds", "0", "frames.train.threads=1"]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 0
    assert seen == {
        "kind": "video",
        "overrides": ["train.threads=1", "frames.train.threads=1"],
        "seeds": [0],
        "tasks": ["tokenizers"],
    }
