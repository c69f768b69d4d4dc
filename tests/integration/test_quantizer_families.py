"""End to end: a tokenizer trains, evaluates and reloads with every quantizer family the config reaches beyond FSQ
and VQ (LFQ, BSQ, residual FSQ), through the same app path and smoke preset as the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.config import TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, load_images
from fsq.quantizers.registry import family_of
from fsq.rundir import read_metrics
from fsq.stages.tokenizer import load_run
from fsq.stages.tokens import export_tokens

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
FAMILIES = {  # kind -> (overrides, codebook size, indices per token position)
    "lfq": (["quantizer.dim=6"], 2**6, 1),
    "bsq": (["quantizer.dim=8"], 2**8, 1),
    "residual_fsq": (["quantizer.levels=[5,5,3]", "quantizer.num_stages=2"], 75, 2),
}


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_a_tokenizer_trains_with_each_family(kind, tmp_path):
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    overrides, size, per_token = FAMILIES[kind]
    files = [ROOT / "configs" / "tokenizer" / "fsq_mnist.yaml", ROOT / "configs" / "presets" / "smoke.yaml"]
    cfg = load_config(TokenizerExperiment, files, ["train.threads=1", f"quantizer.kind={kind}", *overrides])
    assert cfg.quantizer.kind == kind
    result = app.train(cfg, tmp_path)
    evaluation = result["eval"]
    assert evaluation["quantizer"] == kind and evaluation["codebook_size"] == size
    assert evaluation["num_samples"] == 64 and 0 < evaluation["usage"] <= 1
    assert evaluation["levels"] == (cfg.quantizer.levels if kind == "residual_fsq" else None)
    metrics = read_metrics(tmp_path)
    assert [r["step"] for r in metrics] == [2, 4] and all(torch.isfinite(torch.tensor(r["loss"])) for r in metrics)
    model, step = load_run(tmp_path)
    assert step == 4 and family_of(model.quantizer).name == kind
    images = torch.rand(2, 1, 28, 28)
    tokens = model.tokenize(images)
    assert tokens.shape == (2, 7, 7) + ((per_token,) if per_token > 1 else ())
    assert model.decode_indices(tokens).shape == images.shape
    manifest = export_tokens(tmp_path, "test", tmp_path / "tokens", limit=8)
    assert manifest["quantizer"] == kind and manifest["codebook_size"] == size
    if per_token > 1:  # the stages as one more token axis (MaskGIT takes one index per position)
        assert manifest["token_grid"] == [7, 7, 2] and manifest["token_layout"]["stages"] == 2
        first = export_tokens(tmp_path, "test", tmp_path / "first", limit=8, stages=1)  # the first stage alone
        assert first["token_grid"] == [7, 7] and first["tokenizer_codebook_size"] == size
        with pytest.raises(ValueError, match=r"levels \[5, 5, 3\] of .* cannot be cut into 2 consecutive"):
            export_tokens(tmp_path, "test", tmp_path / "grouped", limit=8, groups=2)
    else:
        assert manifest["token_grid"] == [7, 7] and "token_layout" not in manifest
