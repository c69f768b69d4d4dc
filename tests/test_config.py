"""Config schema: merging, overrides, presets, strict errors, and every shipped config file validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsq.config import (
    MODEL_PRESETS,
    ConfigError,
    MaskGITExperiment,
    TokenizerExperiment,
    UViMExperiment,
    config_hash,
    differing_keys,
    dump_yaml,
    from_dict,
    load_config,
    parse_override,
)

SCHEMAS = {"tokenizer": TokenizerExperiment, "maskgit": MaskGITExperiment, "uvim": UViMExperiment}
CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))


def test_defaults_and_overrides():
    cfg = load_config(
        TokenizerExperiment, [], ["train.steps=20", "quantizer.levels=[7,5,5,5,5]", "data.eval_limit=null"]
    )
    assert cfg.train.steps == 20 and cfg.quantizer.levels == [7, 5, 5, 5, 5] and cfg.data.eval_limit is None
    assert cfg.optim.beta1 == 0.0 and cfg.optim.beta2 == 0.99  # the paper's Adam
    assert load_config(TokenizerExperiment, [], ["optim.lr=1e-3"]).optim.lr == 0.001  # YAML 1.1 reads it as a str


def test_files_merge_left_to_right(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("train:\n  steps: 10\n  batch_size: 8\n")
    b.write_text("train:\n  steps: 30\n")
    cfg = load_config(TokenizerExperiment, [a, b], ["train.batch_size=4"])
    assert (cfg.train.steps, cfg.train.batch_size) == (30, 4)


def test_preset_fills_keys_not_given():
    cfg = load_config(TokenizerExperiment, [], ["model.preset=paper", "model.filters=64"])
    assert cfg.model.channel_multipliers == MODEL_PRESETS["paper"]["channel_multipliers"]
    assert cfg.model.filters == 64


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("train.stepz=3", r"unknown key\(s\) \['train.stepz'\].*valid keys under 'train'"),
        ("nosuch.key=1", "unknown key"),
        ("train.steps=abc", "train.steps: expected an integer"),
        ("train.steps=2.5", "expected an integer"),
        ("quantizer.levels=[8,x]", r"quantizer.levels\[1\]: expected an integer"),
        ("train.progress=3", "expected true/false"),
        ("model.preset=huge", "unknown preset"),
        ("steps", "not of the form"),
    ],
)
def test_bad_config_raises_naming_the_problem(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(TokenizerExperiment, [], [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(TokenizerExperiment, [tmp_path / "missing.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(TokenizerExperiment, [bad])


def test_roundtrip_hash_and_diff():
    cfg = load_config(TokenizerExperiment, [], ["train.steps=7"])
    import yaml

    again = from_dict(TokenizerExperiment, yaml.safe_load(dump_yaml(cfg)))
    assert again == cfg and config_hash(again) == config_hash(cfg)
    other = load_config(TokenizerExperiment, [], ["train.steps=8", "optim.lr=0.1"])
    assert differing_keys(cfg, other) == ["optim.lr", "train.steps"]
    assert config_hash(cfg, ignore=("train.steps",)) == config_hash(
        load_config(TokenizerExperiment, [], ["train.steps=9"]), ignore=("train.steps",)
    )
    assert parse_override("a.b=[1, 2]") == {"a": {"b": [1, 2]}}


def test_there_are_config_files():
    assert len(CONFIGS) > 0


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_validates_and_documents_itself(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# Command:") and lines[1].startswith("# Expected:"), path
    configs = Path(__file__).parents[1] / "configs"
    if path.parent.name == "presets":
        stage = path.stem.removeprefix("smoke_") if path.stem.startswith("smoke_") else "tokenizer"
        base = {"tokenizer": "fsq_mnist.yaml", "maskgit": "fsq_mnist.yaml", "uvim": "depth_fsq.yaml"}[stage]
        load_config(SCHEMAS[stage], [configs / stage / base, path])
    else:
        load_config(SCHEMAS[path.parent.name], [path])


def test_a_partial_section_keeps_the_schemas_own_defaults():
    # MaskGIT's optimiser defaults (AdamW 0.9/0.96, wd 0.045) differ from the tokenizer's: overriding one key
    # must not fall back to OptimConfig's class defaults for the others
    cfg = load_config(MaskGITExperiment, [], ["optim.lr=3e-4"])
    assert cfg.optim.lr == 3e-4 and cfg.optim.beta1 == 0.9 and cfg.optim.beta2 == 0.96
    assert cfg.optim.weight_decay == 0.045 and cfg.optim.warmup_steps == 5000
    uvim = load_config(UViMExperiment, [], ["quantizer.kind=vq"])
    assert uvim.quantizer.codebook_size == 4096 and uvim.quantizer.recipe == "uvim"
    assert uvim.quantizer.dim == 128 and not hasattr(uvim.quantizer, "levels")  # a VQ section: VQ's settings only
    assert load_config(UViMExperiment, [], ["quantizer.variant=atanh"]).quantizer.levels == [7, 5, 5, 5, 5]
