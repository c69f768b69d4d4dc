"""LPIPS (VGG16 + the lpips package's v0.1 linear heads), tested without a network: VGG16 weights are random, saved
in torchvision's file format (a state dict with ``features.N.*`` names); the reference is the ``lpips`` package's
own code, run with a stand-in for torchvision that hands it the same trunk (fsq never needs torchvision)."""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings

import pytest
import torch

if importlib.util.find_spec("lpips") is None:  # installed with --no-deps (Makefile); fsq reads only its weight files
    pytest.skip("the lpips package is not installed: pip install --no-deps lpips", allow_module_level=True)

from fsq.losses.lpips import LPIPS, VGG16_URL, heads_path, vgg16_trunk  # noqa: E402


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """Random VGG16 trunk weights in torchvision's format (``features.*`` keys of ``vgg16-397923af.pth``)."""
    torch.manual_seed(0)
    trunk = vgg16_trunk()
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, path)
    return path


def _reference(vgg_file):
    """``lpips.LPIPS(net="vgg", version="0.1")`` with the trunk of ``vgg_file`` (torchvision replaced by a stub)."""
    state = torch.load(vgg_file, weights_only=True)
    trunk = vgg16_trunk()
    trunk.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    stub = types.ModuleType("torchvision")
    stub.models = types.SimpleNamespace(vgg16=lambda pretrained=False, **_: types.SimpleNamespace(features=trunk))  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.models")}
    sys.modules["torchvision"], sys.modules["torchvision.models"] = stub, stub.models  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lpips

            return lpips.LPIPS(net="vgg", version="0.1", verbose=False).eval()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def test_equals_the_lpips_package_on_the_same_weights(vgg_file):
    ours = LPIPS(vgg_file, reduction="none")
    reference = _reference(vgg_file)
    torch.manual_seed(1)
    a, b = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = reference(a * 2 - 1, b * 2 - 1).flatten()  # the package takes [-1, 1]; ours [0, 1]
        got = ours(a, b)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-9), (got, expected)
    grey = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(
            ours(grey, grey.flip(-1)), reference(grey * 2 - 1, grey.flip(-1) * 2 - 1).flatten(), rtol=1e-5
        )
    assert torch.equal(ours(a, a), torch.zeros(3))


def test_as_a_loss_gradients_flow_and_the_trunk_stays_out_of_state_dicts(vgg_file):
    loss = LPIPS(vgg_file)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    value = loss(x, torch.rand(2, 3, 32, 32))
    value.backward()
    assert value.ndim == 0 and value > 0 and x.grad is not None and x.grad.abs().sum() > 0
    assert loss.state_dict() == {} and not list(loss.parameters())  # VGG16's 59 MB never land in a checkpoint
    loss.train()
    assert not loss._trunk.training


def test_missing_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no cached copy
    with pytest.raises(FileNotFoundError, match=VGG16_URL):
        LPIPS()
    with pytest.raises(FileNotFoundError, match="not found at"):
        LPIPS(tmp_path / "nothing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a VGG16 state dict"):
        LPIPS(bad)
    assert heads_path().name == "vgg.pth" and heads_path().is_file()
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "lpips" else real(name))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps lpips"):
        heads_path()


def test_a_missing_vgg16_file_is_refused_when_the_config_loads(tmp_path):
    from fsq.api import load
    from fsq.config import ConfigError
    from fsq.config.requires import check_requirements

    cfg = load("fsq_mnist", stage="tokenizer", overrides=["eval.lpips=true", f"loss.vgg16_weights={tmp_path}/no.pth"])
    with pytest.raises(ConfigError, match="loss.vgg16_weights=.*no such file"):
        check_requirements(cfg, "eval")


@pytest.mark.integration
def test_lpips_as_the_training_loss_and_the_evaluation_metric(vgg_file, tmp_path):
    from fsq import app
    from fsq.api import load
    from fsq.data import SourceUnavailable, load_images

    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    overrides = ["train.threads=1", "train.steps=2", "loss.perceptual_weight=0.1", "loss.perceptual_network=lpips"]
    overrides += [f"loss.vgg16_weights={vgg_file}", "eval.lpips=true", "data.eval_limit=16"]
    result = app.train(load("fsq_mnist", "smoke", stage="tokenizer", overrides=overrides), tmp_path / "run")
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"perceptual_loss"' in metrics
    assert result["eval"]["lpips"] > 0 and result["eval"]["lpips_network"].startswith("LPIPS (VGG16")
