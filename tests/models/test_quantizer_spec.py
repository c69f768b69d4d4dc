"""Model specs are built from config sections by name: the quantizer spec and the config section have the same
fields and defaults; every spec field comes from a config key; specs saved by fsq 0.1 (flat keys) still load."""

from __future__ import annotations

import dataclasses

import pytest

from fsq.config import ConfigError, QuantizerConfig, TokenizerExperiment, UViMExperiment, load_config, spec_from
from fsq.models.autoencoder import TokenizerSpec
from fsq.models.quantizer import QuantizerSpec
from fsq.models.uvim import OracleSpec
from fsq.stages.tokenizer import tokenizer_spec


def test_the_quantizer_spec_mirrors_the_config_section():
    def shape(cls):
        return [(f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in
                dataclasses.fields(cls)]  # fmt: skip

    assert shape(QuantizerSpec) == shape(QuantizerConfig)


def test_a_tokenizer_spec_is_its_config_by_name():
    cfg = load_config(TokenizerExperiment, [], ["quantizer.kind=vq", "quantizer.dim=64", "model.filters=24"])
    spec = tokenizer_spec(cfg, in_channels=3)
    assert spec.filters == 24 and spec.quantizer == QuantizerSpec(kind="vq", dim=64) and spec.in_channels == 3
    assert TokenizerSpec.from_dict(spec.to_dict()) == spec  # the saved form round-trips


def test_every_spec_field_must_come_from_a_config_key():
    cfg = load_config(UViMExperiment, [])
    with pytest.raises(ConfigError, match=r"OracleSpec fields \['target_channels'.*come from no config key"):
        spec_from(OracleSpec, cfg.model, image_size=32)


def test_specs_saved_by_fsq_0_1_still_load():
    old_tokenizer = dict(image_size=16, in_channels=1, filters=8, channel_multipliers=[1, 2], num_res_blocks=1)
    old_tokenizer.update(num_groups=4, quantizer="vq", levels=[8, 5], variant="paper", codebook_size=64)
    old_tokenizer.update(code_dim=32, vq_recipe="maskgit_noentropy")
    expected = QuantizerSpec(kind="vq", levels=[8, 5], codebook_size=64, dim=32, recipe="maskgit_noentropy")
    assert TokenizerSpec.from_dict(old_tokenizer).quantizer == expected
    old_oracle = dict(image_size=8, target_channels=1, context_channels=3, output_channels=1, quantizer="fsq")
    old_oracle.update(levels=[5, 3], codebook_size=16, vq_dim=8, vq_recipe="uvim")
    expected = QuantizerSpec(levels=[5, 3], codebook_size=16, dim=8, recipe="uvim")
    assert OracleSpec.from_dict(old_oracle).quantizer == expected
