"""The quantizer registry: every family is reachable from a config and builds its module; each family's settings
are checked (unknown keys name the valid ones); saved sections still load; callers' questions are answered per
family; a family defined here, outside the package, registers, loads from a config and runs inside a tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from fsq.config import ConfigError, TokenizerExperiment, UViMExperiment, load_config, resume_hash, with_overrides
from fsq.config.schema_doc import format_schema
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.models.quantizer import QuantizerSpec
from fsq.quantizers import BSQ, FSQ, LFQ, VQ, QuantizerOutput, ResidualFSQ, ResidualVQ
from fsq.quantizers.registry import (
    Bounds,
    Family,
    QuantizerSection,
    family,
    family_of,
    kinds,
    register,
    unregister,
)

BUILT_IN = {
    "fsq": ({"levels": [4, 3]}, FSQ, 2, 12),
    "residual_fsq": ({"levels": [4, 3], "num_stages": 3}, ResidualFSQ, 2, 12),
    "vq": ({"codebook_size": 16, "dim": 5}, VQ, 5, 16),
    "residual_vq": ({"codebook_size": 16, "dim": 5, "num_stages": 2}, ResidualVQ, 5, 16),
    "lfq": ({"dim": 6}, LFQ, 6, 64),
    "bsq": ({"dim": 7}, BSQ, 7, 128),
}


@pytest.mark.parametrize("kind", list(BUILT_IN))
def test_every_family_loads_from_a_config_and_builds(kind):
    settings, cls, width, size = BUILT_IN[kind]
    overrides = [f"quantizer.kind={kind}"] + [f"quantizer.{k}={v}" for k, v in settings.items()]
    section = load_config(TokenizerExperiment, [], overrides).quantizer
    assert section == QuantizerSpec(kind=kind, **settings) and section.kind == kind
    assert section.code_width == width
    quantizer = section.build(channel_axis=1)
    assert type(quantizer) is cls and quantizer.codebook_size == size
    assert family_of(quantizer) is family(kind)
    torch.manual_seed(0)
    out = quantizer(torch.randn(2, width, 3, 3))
    assert isinstance(out, QuantizerOutput) and out.quantized.shape == (2, width, 3, 3)
    per_token = family(kind).indices_per_token(quantizer)
    assert out.indices.shape == (2, 3, 3) + ((per_token,) if per_token > 1 else ())
    assert torch.allclose(quantizer.indices_to_quantized(out.indices), out.quantized.detach(), atol=1e-6)


def test_the_questions_callers_ask():
    fsq, vq = QuantizerSpec(levels=[4, 3]).build(-1), QuantizerSpec(kind="vq", codebook_size=8, dim=2).build(-1)
    indices = torch.tensor([[0, 5], [11, 3]])
    assert family_of(fsq).level_digits(fsq, indices).tolist() == [[0, 0], [1, 1], [3, 2], [3, 0]]
    assert family_of(vq).level_digits is None and family_of(vq) is family("vq")
    lfq = QuantizerSpec(kind="lfq", dim=3).build(-1)
    assert family_of(lfq).level_digits(lfq, torch.tensor([6])).tolist() == [[0, 1, 1]]
    bsq = QuantizerSpec(kind="bsq", dim=3).build(-1)
    assert family_of(bsq).name == "bsq"  # BSQ is an LFQ subclass: the most derived family answers
    ema = QuantizerSpec(kind="vq", codebook_size=8, dim=2, recipe="uvim").build(-1)
    assert family_of(ema).step_metrics(ema) == {"splits": 0.0} and family_of(vq).step_metrics(vq) == {}
    assert QuantizerSpec(levels=[8, 5]).report() == {"quantizer": "fsq", "levels": [8, 5]}
    assert QuantizerSpec(kind="lfq").report() == {"quantizer": "lfq", "levels": None}
    assert QuantizerSpec(kind="vq").setting("recipe") == "maskgit" and QuantizerSpec().setting("recipe") is None
    assert QuantizerSpec(kind="vq", codebook_size=64, dim=32).describe() == "VQ, 64 codes of width 32"
    assert QuantizerSpec(levels=[8, 5]).describe() == "FSQ, levels [8, 5]"


def test_each_family_checks_its_own_settings():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['quantizer.levels'\]; valid keys under 'quantizer': "
                       r"\['kind', 'dim', 'entropy_weight'"):  # fmt: skip
        load_config(TokenizerExperiment, [], ["quantizer.kind=lfq", "quantizer.levels=[8,5]"])
    with pytest.raises(ConfigError, match=r"quantizer.dim: 63 is outside \[1, 62\]"):
        load_config(TokenizerExperiment, [], ["quantizer.kind=bsq", "quantizer.dim=63"])
    with pytest.raises(ConfigError, match=r"quantizer.temperature: 0.0 is outside \(0, inf\]"):
        load_config(TokenizerExperiment, [], ["quantizer.kind=lfq", "quantizer.temperature=0.0"])
    with pytest.raises(ConfigError, match=r"quantizer.num_stages: 0 is outside \[1, inf\]"):
        load_config(TokenizerExperiment, [], ["quantizer.kind=residual_fsq", "quantizer.num_stages=0"])
    with pytest.raises(ValueError, match=r"quantizer kind 'lfq' has no setting\(s\) \['num_stages'\]; its settings"):
        QuantizerSpec(kind="lfq", num_stages=2)
    with pytest.raises(ValueError, match=r"unknown quantizer 'pq'; registered kinds: \['fsq', 'residual_fsq'"):
        QuantizerSpec(kind="pq")
    assert QuantizerSpec("lfq", dim=4) == QuantizerSpec(kind="lfq", dim=4)


def test_a_later_layer_of_another_kind_replaces_the_section(tmp_path):
    fsq_file = tmp_path / "fsq.yaml"
    fsq_file.write_text("quantizer:\n  kind: fsq\n  levels: [8, 5, 5, 5]\n  variant: atanh\n")
    cfg = load_config(TokenizerExperiment, [fsq_file], ["quantizer.kind=lfq", "quantizer.dim=8"])
    assert cfg.quantizer == QuantizerSpec(kind="lfq", dim=8)  # the file's FSQ settings do not leak into LFQ
    same = load_config(TokenizerExperiment, [fsq_file], ["quantizer.levels=[4,4]"])
    assert same.quantizer == QuantizerSpec(levels=[4, 4], variant="atanh")  # same kind: keys merge as before
    switched = with_overrides(same, ["quantizer.kind=residual_fsq", "quantizer.num_stages=4"])
    assert switched.quantizer == QuantizerSpec(kind="residual_fsq", num_stages=4)
    uvim = load_config(UViMExperiment, [], ["quantizer.kind=vq"])  # the schema's own VQ defaults
    assert (uvim.quantizer.codebook_size, uvim.quantizer.dim, uvim.quantizer.recipe) == (4096, 128, "uvim")


def test_the_schema_lists_every_kind_with_its_keys():
    tokenizer, uvim = format_schema(TokenizerExperiment), format_schema(UViMExperiment)
    assert "quantizer.kind picks the other keys of `quantizer`" in tokenizer
    assert '  vq: codebook_size=1024, dim=256, recipe="maskgit"\n' in tokenizer
    assert '  vq: codebook_size=4096, dim=128, recipe="uvim"\n' in uvim  # the schema's own VQ defaults
    assert "  fsq: levels=[7, 5, 5, 5, 5]" in uvim and "  residual_fsq: levels=[8, 5, 5, 5]" in uvim
    assert "  lfq: dim=10, entropy_weight=0.1" in tokenizer and "  bsq: dim=10" in tokenizer


def test_saved_flat_sections_still_load():
    # fsq 0.2's config.yaml and model specs held both families' settings in one section
    flat = {"kind": "vq", "levels": [8, 5, 5, 5], "variant": "paper", "codebook_size": 64, "dim": 32}
    flat["recipe"] = "maskgit"
    cfg = load_config(TokenizerExperiment, [], base={"quantizer": flat})
    assert cfg.quantizer == QuantizerSpec(kind="vq", codebook_size=64, dim=32)
    spec = TokenizerSpec.from_dict({"quantizer": dict(flat, kind="fsq")})
    assert spec.quantizer == QuantizerSpec(levels=[8, 5, 5, 5])


def test_the_resume_hash_of_a_section_at_its_defaults_ignores_them():
    # keys at their defaults (the kind's own defaults for another kind than the schema's) leave the hash alone,
    # so a run saved before a setting existed still resumes
    plain = load_config(TokenizerExperiment, [], ["quantizer.kind=vq"])
    explicit = load_config(TokenizerExperiment, [], ["quantizer.kind=vq", "quantizer.dim=256"])
    other = load_config(TokenizerExperiment, [], ["quantizer.kind=vq", "quantizer.dim=128"])
    assert resume_hash(plain) == resume_hash(explicit) != resume_hash(other)
    assert resume_hash(plain) != resume_hash(load_config(TokenizerExperiment, []))


# ---- a family defined outside the package --------------------------------------------------------------------
class RoundQuantizer(nn.Module):
    """A toy scalar quantizer: each channel rounded to an integer in [-1, 1] (3 levels), straight-through."""

    def __init__(self, width: int, channel_axis: int) -> None:
        super().__init__()
        self.width, self.channel_axis = width, channel_axis
        self.codebook_size = 3**width

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        codes = z + (z.clamp(-1, 1).round() - z).detach()
        digits = (codes.detach().round().long() + 1).movedim(self.channel_axis, -1)
        indices = (digits * 3 ** torch.arange(self.width)).sum(-1)
        return QuantizerOutput(codes, indices, torch.zeros(()))

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        digits = indices.unsqueeze(-1) // 3 ** torch.arange(self.width) % 3
        return (digits - 1).float().movedim(-1, self.channel_axis)


@dataclass(frozen=True)
class RoundSection(QuantizerSection):
    kind: str = "round"
    width: int = 3  # channels per code

    @property
    def code_width(self) -> int:
        return self.width


def _build_round(section: RoundSection, channel_axis: int) -> RoundQuantizer:
    return RoundQuantizer(section.width, channel_axis)


ROUND = Family("round", RoundSection, _build_round, RoundQuantizer, describe=lambda s: f"rounding, {s.width} channels")


def test_a_family_defined_outside_the_package_registers_and_trains_in_a_tokenizer():
    entry = ROUND
    register(entry)
    try:
        assert "round" in kinds()
        with pytest.raises(ValueError, match="already registered"):
            register(entry)
        assert "  round: width=3\n" in format_schema(TokenizerExperiment)
        cfg = load_config(TokenizerExperiment, [], ["quantizer.kind=round", "quantizer.width=2", "model.filters=8"])
        assert cfg.quantizer == RoundSection(width=2) and cfg.quantizer.describe() == "rounding, 2 channels"
        with pytest.raises(ConfigError, match=r"unknown key\(s\) \['quantizer.dim'\]"):
            load_config(TokenizerExperiment, [], ["quantizer.kind=round", "quantizer.dim=2"])
        spec = TokenizerSpec(image_size=8, filters=8, channel_multipliers=[1, 2], num_groups=4, quantizer=cfg.quantizer)
        assert TokenizerSpec.from_dict(spec.to_dict()) == spec  # the saved spec names its family
        model = Tokenizer(spec)
        assert family_of(model.quantizer) is entry and model.codebook_size == 9
        torch.manual_seed(0)
        images = torch.rand(4, 1, 8, 8)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):  # gradients reach the encoder through the family's straight-through estimator
            reconstruction, out = model(images)
            loss = (reconstruction - images).pow(2).mean() + out.aux_loss
            optimizer.zero_grad()
            loss.backward()
            assert model.encoder.head.weight.grad.abs().sum() > 0
            optimizer.step()
        assert out.indices.shape == (4, 4, 4) and int(out.indices.max()) < 9
        assert model.decode_indices(out.indices).shape == images.shape
    finally:
        unregister("round")
    assert "round" not in kinds()
    with pytest.raises(ConfigError, match=r"quantizer.kind: 'round' is not one of"):
        load_config(TokenizerExperiment, [], ["quantizer.kind=round"])


def test_an_entry_point_family_loads_when_first_named(tmp_path, monkeypatch):
    """A package that declares ``round = <this module>:ROUND`` in the ``fsq.quantizers`` group: the kind is known
    before anything of it is imported, and a config naming it loads and registers it."""
    dist = tmp_path / "site" / "round_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: round-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[fsq.quantizers]\nround = {__name__}:ROUND\nbroken = {__name__}:NOPE\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        assert "round" in kinds() and family(ROUND.name) is ROUND  # loaded on first use
        cfg = load_config(TokenizerExperiment, [], ["quantizer.kind=round", "quantizer.width=4"])
        assert cfg.quantizer == RoundSection(width=4) and family_of(cfg.quantizer.build(1)) is ROUND
        with pytest.raises(ConfigError, match=r"quantizer.kind: quantizer 'broken': its entry point .* does not load"):
            load_config(TokenizerExperiment, [], ["quantizer.kind=broken"])
    finally:
        unregister("round")


def test_a_registration_must_be_consistent():
    @dataclass(frozen=True)
    class Misnamed(QuantizerSection):
        kind: str = "other"

    with pytest.raises(ValueError, match="its section's kind defaults to 'other', not its name"):
        register(Family("mine", Misnamed, lambda s, a: None, nn.Module, describe=str))
    with pytest.raises(TypeError, match="section must be a QuantizerSection subclass"):
        register(Family("mine", dict, lambda s, a: None, nn.Module, describe=str))
    assert Bounds(min=1).check(1, "x") is None
