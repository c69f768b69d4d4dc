"""fsq.FSQ refuses vector-quantize-pytorch FSQ state dicts (issue: a newcomer's first hour, item 7).

Their plain state dicts (empty, or only the projections) have our key names; loading one into the default
``"paper"`` variant used to report "all keys matched" while about 1% of indices differed. They are recognised by
the state-dict version torch records per module (ours 2, theirs 1), in memory and through ``torch.save``; the
deliberate conversion is :func:`fsq.compat.vector_quantize_pytorch.native_state_dict`.
"""

from __future__ import annotations

import io

import pytest
import torch

from fsq import FSQ, ResidualFSQ
from fsq.compat import vector_quantize_pytorch as compat


@pytest.fixture(scope="module")
def vqp():
    return pytest.importorskip("vector_quantize_pytorch", reason="vector-quantize-pytorch not installed")


def _through_torch_save(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
@pytest.mark.parametrize("kwargs", [dict(levels=[8, 5, 5, 5], dim=16), dict(levels=[8, 5, 5, 5])])
@pytest.mark.parametrize("strict", [True, False])
def test_their_state_dicts_are_refused(vqp, variant, kwargs, strict):
    theirs = vqp.FSQ(**kwargs)
    drop_in = compat.FSQ(**kwargs)
    for state_dict in (theirs.state_dict(), _through_torch_save(theirs.state_dict()), drop_in.state_dict()):
        ours = FSQ(kwargs["levels"], dim=kwargs.get("dim"), variant=variant)
        with pytest.raises(RuntimeError, match=r"state-dict version 1.*native_state_dict") as error:
            ours.load_state_dict(state_dict, strict=strict)
        assert f"variant={variant!r}" in str(error.value)


def test_refused_inside_a_larger_model_naming_where(vqp):
    theirs = torch.nn.ModuleDict({"encoder": torch.nn.Linear(3, 16), "quantizer": vqp.FSQ([8, 5, 5, 5], dim=16)})
    ours = torch.nn.ModuleDict({"encoder": torch.nn.Linear(3, 16), "quantizer": FSQ([8, 5, 5, 5], dim=16)})
    with pytest.raises(RuntimeError, match="state dict at 'quantizer' comes from a module of state-dict version 1"):
        ours.load_state_dict(theirs.state_dict())


def test_our_state_dicts_still_load_every_way():
    """In memory, through torch.save, as a plain dict (a safetensors file has no metadata), nested, residual."""
    source = FSQ([8, 5, 5, 5], dim=16)
    for state_dict in (source.state_dict(), _through_torch_save(source.state_dict()), dict(source.state_dict())):
        target = FSQ([8, 5, 5, 5], dim=16)
        target.load_state_dict(state_dict, strict=True)
        for key, value in source.state_dict().items():
            assert torch.equal(target.state_dict()[key], value)
    assert source.state_dict()._metadata[""]["version"] == FSQ._version == 2
    ResidualFSQ([8, 5, 5, 5], 3, dim=16).load_state_dict(ResidualFSQ([8, 5, 5, 5], 3, dim=16).state_dict())


@pytest.mark.parametrize(("preserve_symmetry", "variant"), [(False, "atanh"), (True, "symmetric")])
def test_native_state_dict_converts_on_purpose(vqp, preserve_symmetry, variant):
    """Converted into the matching variant: their projections, their grid; the indices agree but for the few
    inputs per million that float64 constants round differently (bounded here at 2e-5)."""
    torch.manual_seed(0)
    theirs = vqp.FSQ([8, 5, 5, 5], dim=16, preserve_symmetry=preserve_symmetry)
    ours = FSQ([8, 5, 5, 5], dim=16, variant=variant)
    ours.load_state_dict(compat.native_state_dict(theirs.state_dict()), strict=True)
    z = torch.randn(1, 200_000, 16, generator=torch.Generator().manual_seed(1)) * 2
    their_out, their_indices = theirs(z)
    out = ours(z[0])
    assert (out.indices != their_indices[0].long()).float().mean() <= 2e-5
    same = out.indices == their_indices[0].long()
    torch.testing.assert_close(out.quantized[same], their_out[0][same], rtol=0, atol=1e-5)


def test_the_paper_variant_is_not_their_grid(vqp):
    """Why the refusal matters: loaded into the default variant anyway, about 1% of indices differ."""
    torch.manual_seed(0)
    theirs = vqp.FSQ([8, 5, 5, 5], dim=16)
    ours = FSQ([8, 5, 5, 5], dim=16)
    ours.load_state_dict(compat.native_state_dict(theirs.state_dict()))
    z = torch.randn(1, 100_000, 16, generator=torch.Generator().manual_seed(1)) * 2
    assert (ours(z[0]).indices != theirs(z)[1][0].long()).float().mean() > 1e-3


def test_native_state_dict_refuses_a_rotation(vqp):
    theirs = vqp.FSQ([5, 5, 5], orthogonal_rotation=True)
    with pytest.raises(ValueError, match="orthogonal rotation"):
        compat.native_state_dict(theirs.state_dict())
    nested = torch.nn.ModuleDict({"q": vqp.FSQ([5, 5, 5], orthogonal_rotation=True)}).state_dict()
    with pytest.raises(ValueError, match=r"q\.orthogonal_rot"):
        compat.native_state_dict(nested)
