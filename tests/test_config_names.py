"""Configs by name (``fsq train tokenizer fsq_mnist smoke``), ``fsq configs list|copy``, ``fsq config --schema``
and the install hint for a missing optional dependency."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsq.cli import main
from fsq.config import (
    SCHEMAS,
    ConfigError,
    config_path,
    configs_root,
    flatten,
    resolve_config,
    resolve_configs,
    to_dict,
)
from fsq.config.names import copy_config, shipped_configs
from fsq.config.schema_doc import describe
from fsq.extras import install_hint

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"


def test_the_checkout_serves_its_configs_folder():
    assert configs_root() == CONFIGS.resolve()


def test_names_resolve_stage_folder_first_then_presets():
    assert resolve_configs(["fsq_mnist", "smoke"], "tokenizer") == [
        CONFIGS.resolve() / "tokenizer/fsq_mnist.yaml",
        CONFIGS.resolve() / "presets/smoke.yaml",
    ]
    assert resolve_config("fsq_mnist", "maskgit") == CONFIGS.resolve() / "maskgit/fsq_mnist.yaml"
    assert resolve_config("fsq_mnist.yaml", "maskgit") == CONFIGS.resolve() / "maskgit/fsq_mnist.yaml"
    # without a stage, the first file's stage resolves the names after it
    assert resolve_configs(["depth_fsq", "smoke_uvim"])[1] == CONFIGS.resolve() / "presets/smoke_uvim.yaml"


def test_paths_keep_working_from_any_directory(tmp_path, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text("stage: tokenizer\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_config("mine.yaml") == Path("mine.yaml")
    assert resolve_config(mine) == mine
    shipped = CONFIGS.resolve() / "uvim/depth_fsq.yaml"
    assert config_path("configs/uvim/depth_fsq.yaml") == shipped == resolve_config("uvim/depth_fsq.yaml")
    assert resolve_config("uvim/depth_fsq") == shipped  # the suffix may be left out, as with names


def test_ambiguous_and_unknown_names_list_the_candidates():
    with pytest.raises(ConfigError, match=r"ambiguous: maskgit/fsq_mnist.yaml, tokenizer/fsq_mnist.yaml"):
        resolve_config("fsq_mnist")
    with pytest.raises(
        ConfigError,
        match=r"valid names: \['fsq_blobs_3d', 'fsq_mnist', 'fsq_moving_mnist', 'fsq_moving_mnist_predict', "
        r"'fsq_speech_voices', 'fsq_tones_1d', 'smoke_maskgit', 'vq_mnist'\]",
    ):
        resolve_config("nope", "maskgit")
    with pytest.raises(ConfigError, match="config file not found: configs/tokenizer/nope.yaml"):
        resolve_config("configs/tokenizer/nope.yaml")


def test_train_and_config_take_names(capsys):
    assert main(["config", "--stage", "tokenizer", "fsq_mnist", "smoke", "train.seed=5"]) == 0
    shown = capsys.readouterr().out
    assert "name: fsq_mnist" in shown and "seed: 5" in shown
    assert main(["config", "fsq_mnist"]) == 2
    assert "ambiguous" in (err := capsys.readouterr().err) and "`fsq config --stage STAGE fsq_mnist`" in err
    assert main(["train", "maskgit", "smoke"]) == 2  # the tokenizer preset is refused by the MaskGIT schema
    assert "is a 'tokenizer' config, not a 'maskgit' one" in capsys.readouterr().err


def test_configs_list_shows_every_shipped_file(capsys):
    assert main(["configs", "list"]) == 0
    out = capsys.readouterr().out
    entries = shipped_configs()
    assert len(entries) == len(list(CONFIGS.rglob("*.yaml"))) >= 17
    for entry in entries:
        assert entry.relative in out and entry.stage in SCHEMAS and entry.summary
    assert "An overlay: shrinks any tokenizer config" in out
    assert main(["configs", "list", "--stage", "uvim"]) == 0
    assert "tokenizer/" not in capsys.readouterr().out


def test_a_summary_is_a_whole_block_never_a_wrapped_fragment(tmp_path):
    from fsq.config.names import _summary

    wrapped = tmp_path / "wrapped.yaml"
    wrapped.write_text(
        "# Command: fsq train tokenizer wrapped\n"
        "# Expected: a 1-D codec of synthetic speech (espeak-ng\n"
        "# voices, 16 kHz), hop 160.\n"
        "# Measured (shared CPU): 10 min.\n"
        "stage: tokenizer\n"
    )
    assert _summary(wrapped) == "A 1-D codec of synthetic speech (espeak-ng voices, 16 kHz), hop 160."
    measured = tmp_path / "measured.yaml"
    measured.write_text(
        "# Command: fsq train tokenizer measured\n"
        "# Expected: not run here; a smoke run\n"
        "# took 3 s.\n"
        "# The starting point for your own\n"
        "# images at 256 px.\n"
        "stage: tokenizer\n"
    )
    assert _summary(measured) == "The starting point for your own images at 256 px."
    only = tmp_path / "only.yaml"
    only.write_text("# Command: fsq x\n# Expected: 2-core CPU, 4 min\n# (eval 40 s).\nstage: tokenizer\n")
    assert _summary(only) == "2-core CPU, 4 min (eval 40 s)."


def test_configs_copy_never_overwrites(tmp_path, capsys):
    assert main(["configs", "copy", "--stage", "tokenizer", "fsq_mnist", str(tmp_path)]) == 0
    copied = tmp_path / "fsq_mnist.yaml"
    assert copied.read_text() == (CONFIGS / "tokenizer/fsq_mnist.yaml").read_text()
    assert main(["configs", "copy", "smoke", str(copied)]) == 2 and "exists already" in capsys.readouterr().err
    assert copy_config("smoke", f"{tmp_path}/new/") == tmp_path / "new" / "smoke.yaml"


@pytest.mark.parametrize("stage", sorted(SCHEMAS))
def test_schema_lists_every_key_with_default_and_meaning(stage, capsys):
    rows = {row.key: row for row in describe(SCHEMAS[stage])}
    assert main(["config", "--schema", stage]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in rows)
    assert rows["stage"].default == f'"{stage}"'
    assert rows["train.batch_size"].meaning == "global, over all ranks"
    assert rows["train.batch_size"].type == "int >= 1"
    assert rows["optim.grad_clip"].type == "float > 0 | None" and rows["optim.grad_clip"].default == "null"
    assert "one of: cpu-tiny" in rows["model.preset"].meaning
    assert list(rows) == list(flatten(to_dict(SCHEMAS[stage]())))  # every key, in the order of a config file


def test_schema_defaults_are_the_stage_own():
    rows = {row.key: row for row in describe(SCHEMAS["maskgit"])}
    assert rows["optim.warmup_steps"].default == "5000"  # MaskGIT overrides the shared optimizer defaults
    assert rows["optim.beta1"].meaning == "the paper's Adam(0, 0.99)"  # meanings come from the section's comments


def test_install_hint_names_the_extra():
    assert install_hint(ModuleNotFoundError("x", name="yaml")) == (
        "the optional dependency 'yaml' is not installed: pip install 'fsq-toolkit[train]'"
    )
    assert "fsq-toolkit[reports]" in str(install_hint(ModuleNotFoundError("x", name="matplotlib.pyplot")))
    assert install_hint(ModuleNotFoundError("x", name="torch")) is None
