"""Tokenizer bundles of every quantizer family save and load; a bundle's quantizer section is checked against its
own kind's settings (a key of another family, an unknown kind are refused naming config.json and the key)."""

from __future__ import annotations

import json

import pytest
import torch

from fsq.bundles import BundleError
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.models.quantizer import QuantizerSpec

FAMILIES = {
    "fsq": {"levels": [5, 3]},
    "residual_fsq": {"levels": [5, 3], "num_stages": 2},
    "vq": {"codebook_size": 16, "dim": 4},
    "lfq": {"dim": 5},
    "bsq": {"dim": 6},
}


def _tokenizer(kind: str) -> Tokenizer:
    torch.manual_seed(0)
    quantizer = QuantizerSpec(kind=kind, **FAMILIES[kind])
    return Tokenizer(
        TokenizerSpec(image_size=8, filters=8, channel_multipliers=[1, 2], num_groups=4, quantizer=quantizer)
    )


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_a_bundle_of_each_family_round_trips(kind, tmp_path):
    model = _tokenizer(kind).eval()
    model.save_pretrained(tmp_path)
    loaded = Tokenizer.from_pretrained(tmp_path).eval()
    assert loaded.spec == model.spec and loaded.spec.quantizer.kind == kind
    images = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded.tokenize(images), model.tokenize(images))


def test_a_bundle_quantizer_key_of_another_family_is_refused(tmp_path):
    _tokenizer("lfq").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["spec"]["quantizer"]["levels"] = [8, 5]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"config.json: spec.quantizer has unknown key\(s\) \['levels'\]; LFQSection"):
        Tokenizer.from_pretrained(tmp_path)
    config["spec"]["quantizer"] = {"kind": "pq"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"config.json: spec.quantizer.kind: 'pq' is not one of \['fsq'"):
        Tokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("kind", ["lfq", "bsq", "residual_fsq"])
@pytest.mark.parametrize("dims, shape", [(1, [64]), (3, [4, 8, 8])])
def test_every_family_quantizes_audio_and_video_tokenizers(kind, dims, shape):
    quantizer = QuantizerSpec(kind=kind, **FAMILIES[kind])
    sizes = dict(dims=dims, shape=shape, filters=8, channel_multipliers=[1, 2], num_groups=4)
    spec = TokenizerSpec(**sizes, quantizer=quantizer)
    torch.manual_seed(0)
    model = Tokenizer(spec)
    signal = torch.rand(2, 1, *shape)
    reconstruction, out = model(signal)
    grid = tuple(n // 2 for n in shape)
    stages = (FAMILIES[kind]["num_stages"],) if kind == "residual_fsq" else ()
    assert reconstruction.shape == signal.shape and out.indices.shape == (2, *grid, *stages)
    assert torch.isfinite(out.aux_loss) and model.decode_indices(out.indices).shape == signal.shape
