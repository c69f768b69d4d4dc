"""``train.init_from``: a fresh run starts from another run's newest weights (its EMA), with its own loss and
optimizer; a run dir with a checkpoint of its own resumes instead; another model's checkpoint is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.checkpoint import CheckpointMismatch, latest_checkpoint, load_safetensors
from fsq.config import ConfigError, TokenizerExperiment, load_config

ROOT = Path(__file__).parents[2]
TONES = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"
SMALL = [
    "train.steps=2",
    "train.batch_size=4",
    "train.threads=1",
    "train.checkpoint_every=2",
    "train.eval_at_end=false",
    "train.progress=false",
    "data.train_limit=16",
    "model.filters=8",
    "model.num_groups=4",
]


def _train(run_dir: Path, *overrides: str) -> dict[str, torch.Tensor]:
    cfg = load_config(TokenizerExperiment, [TONES], [*SMALL, *overrides])
    app.train(cfg, run_dir)
    folder = latest_checkpoint(run_dir)
    assert folder is not None
    return {name: load_safetensors(folder / f"{name}.safetensors") for name in ("model", "ema")}


def test_a_fine_tune_starts_from_the_other_runs_ema_weights(tmp_path):
    source = _train(tmp_path / "a")
    assert any(not torch.equal(source["model"][k], source["ema"][k]) for k in source["model"])
    # learning rate 0 and another loss: the fine-tune's weights stay the source's EMA weights, model and EMA alike
    tuned = _train(tmp_path / "b", f"train.init_from={tmp_path / 'a'}", "optim.lr=0", "loss.l1_weight=1")
    for part in ("model", "ema"):
        for key, value in source["ema"].items():
            torch.testing.assert_close(tuned[part][key], value, rtol=0, atol=0, msg=f"{part}: {key}")
    fresh = _train(tmp_path / "c", "optim.lr=0")  # without init_from: its own initial weights
    assert any(not torch.equal(fresh["model"][k], source["ema"][k]) for k in fresh["model"])


def test_init_from_needs_a_checkpoint_of_the_same_model(tmp_path):
    _train(tmp_path / "a")
    with pytest.raises(CheckpointMismatch, match="differs from the one"):
        _train(tmp_path / "b", f"train.init_from={tmp_path / 'a'}", "model.filters=4")
    with pytest.raises(ConfigError, match="no checkpoint there"):
        _train(tmp_path / "c", f"train.init_from={tmp_path / 'nothing'}")


def test_a_fine_tune_can_start_from_a_tokenizer_bundle(tmp_path):
    """``train.init_from`` names a bundle (here one ``fsq export`` wrote; a shipped name or a hub id resolve the
    same way): the fine-tune starts from the bundle's weights; a bundle of another model is refused by name."""
    from fsq.inference.export import export_run

    source = _train(tmp_path / "a")
    bundle = export_run(tmp_path / "a", tmp_path / "bundle", name="tones")
    tuned = _train(tmp_path / "b", f"train.init_from={bundle}", "optim.lr=0", "loss.l1_weight=1")
    for part in ("model", "ema"):
        for key, value in source["ema"].items():  # the bundle holds the run's EMA weights
            torch.testing.assert_close(tuned[part][key], value, rtol=0, atol=0, msg=f"{part}: {key}")
    with pytest.raises(ConfigError, match=r"the bundle's model .* is not the one this config builds \(filters: 8 != 4"):
        _train(tmp_path / "c", f"train.init_from={bundle}", "model.filters=4")
    with pytest.raises(ConfigError, match="no checkpoint there to start from, and no tokenizer bundle either"):
        _train(tmp_path / "d", "train.init_from=no-such-model")


def test_init_from_a_shipped_bundle_by_name(tmp_path, capsys):
    """The shipped ``mnist-fsq`` by name: its config's model fits, so a fine-tune of it starts from its weights."""
    from fsq import Tokenizer

    shipped = Tokenizer.from_pretrained("mnist-fsq").state_dict()
    cfg = load_config(
        TokenizerExperiment,
        [ROOT / "configs" / "tokenizer" / "fsq_mnist.yaml"],
        [
            "train.steps=1",
            "train.batch_size=2",
            "train.threads=1",
            "train.checkpoint_every=1",
            "train.eval_at_end=false",
            "train.progress=false",
            "data.train_limit=8",
            "optim.lr=0",
            "train.init_from=mnist-fsq",
        ],
    )
    app.train(cfg, tmp_path / "run")
    assert "1 x batch 2 (from mnist-fsq's weights)" in capsys.readouterr().out  # the banner says so, not "scratch"
    folder = latest_checkpoint(tmp_path / "run")
    assert folder is not None
    tuned = load_safetensors(folder / "model.safetensors")
    for key, value in shipped.items():
        torch.testing.assert_close(tuned[key], value, rtol=0, atol=0, msg=key)


def _flatten_to_fsq_0_1(bundle: Path) -> None:
    """Rewrite a bundle's spec as fsq 0.1 saved it: the quantizer's settings flat beside the model's, its kind under
    ``quantizer`` (``from_pretrained`` still reads such bundles)."""
    import json

    path = bundle / "config.json"
    config = json.loads(path.read_text())
    quantizer = config["spec"].pop("quantizer")
    config["spec"].update({"quantizer": quantizer.pop("kind"), **quantizer})
    path.write_text(json.dumps(config))


def test_init_from_a_bundle_saved_by_fsq_0_1_compares_its_quantizer(tmp_path):
    """A bundle with fsq 0.1's flat quantizer keys: its spec is compared as ``from_pretrained`` reads it, so a
    fine-tune with the bundle's levels starts from its weights, and one with other levels (FSQ has no weights, so
    loading alone would not notice) is refused by name."""
    from fsq import Tokenizer
    from fsq.inference.export import export_run

    source = _train(tmp_path / "a")
    bundle = export_run(tmp_path / "a", tmp_path / "bundle", name="tones")
    _flatten_to_fsq_0_1(bundle)
    assert Tokenizer.from_pretrained(bundle).spec.quantizer.levels  # still a readable bundle
    tuned = _train(tmp_path / "b", f"train.init_from={bundle}", "optim.lr=0")
    for key, value in source["ema"].items():
        torch.testing.assert_close(tuned["model"][key], value, rtol=0, atol=0, msg=key)
    levels = list(Tokenizer.from_pretrained(bundle).spec.quantizer.levels)
    other = [levels[0] - 1, *levels[1:]]
    with pytest.raises(ConfigError, match=r"quantizer\.levels: \[.*\] != \["):
        _train(tmp_path / "c", f"train.init_from={bundle}", f"quantizer.levels={other}".replace(" ", ""))
