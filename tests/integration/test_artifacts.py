"""Portable artifacts: a MaskGIT run dir moved elsewhere still samples and evaluates from any directory (its
tokenizer is embedded); ``export_run`` writes self-contained bundles (safetensors + JSON + a generated model card)
for a tokenizer, a MaskGIT and a UViM model, which load back equal to the runs; the hub path loads and pushes
through a mocked ``huggingface_hub`` (no network)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from fsq import app, hub, rundir
from fsq.config import MaskGITExperiment, TokenizerExperiment, UViMExperiment, load_config, read_run_config
from fsq.data import SourceUnavailable, load_images
from fsq.inference.export import export_run
from fsq.inference.prediction import UViMPredictor
from fsq.inference.sampling import MaskGITPipeline, write_samples
from fsq.models.autoencoder import Tokenizer
from fsq.stages import tokenizer as tokenizer_stage

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
PRESETS = ROOT / "configs" / "presets"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A smoke FSQ tokenizer run and a smoke MaskGIT run on it, in a folder of their own."""
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    root = tmp_path_factory.mktemp("artifacts")
    tok_cfg = load_config(
        TokenizerExperiment,
        [ROOT / "configs/tokenizer/fsq_mnist.yaml", PRESETS / "smoke.yaml"],
        ["train.threads=1", "data.train_limit=512"],
    )
    app.train(tok_cfg, root / "tokenizer")
    cfg = load_config(
        MaskGITExperiment,
        [ROOT / "configs/maskgit/fsq_mnist.yaml", PRESETS / "smoke_maskgit.yaml"],
        [f"data.tokenizer={root / 'tokenizer'}", "train.threads=1"],
    )
    app.train(cfg, root / "maskgit")
    return root


@contextlib.contextmanager
def _tokenizer_run_gone(runs: Path):
    """The Stage I run dir renamed away for the block (as on a machine the MaskGIT run was copied to)."""
    (runs / "tokenizer").rename(runs / "away")
    try:
        yield
    finally:
        (runs / "away").rename(runs / "tokenizer")


def _sample_args(source: str | Path, out: Path) -> list[str]:
    return ["sample", str(source), "--classes", "1", "4", "--num", "3", "--steps", "3", "--out", str(out)]


def test_moved_maskgit_run_samples_and_evaluates_from_anywhere(runs, tmp_path, monkeypatch):
    from fsq.cli import main

    embedded = runs / "maskgit" / "tokenizer"
    assert {p.name for p in embedded.iterdir()} >= {"config.json", "model.safetensors", "config.yaml"}
    assert json.loads((embedded / "config.json").read_text())["metadata"]["step"] == 4
    reference = tmp_path / "reference"
    assert main(_sample_args(runs / "maskgit", reference)) == 0

    moved = tmp_path / "elsewhere" / "moved_run"
    shutil.copytree(runs / "maskgit", moved)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with _tokenizer_run_gone(runs):  # only the embedded copy can decode
        assert main(_sample_args(moved, "samples")) == 0
        assert main(["eval", str(moved)]) == 0  # evaluation reads the embedded tokenizer and its run config too
    evaluation = json.loads((moved / "eval" / "step_000004.json").read_text())
    assert evaluation["tokenizer_run"] == str((runs / "tokenizer").resolve())  # where it came from
    a, b = np.load(reference / "samples.npz"), np.load(elsewhere / "samples" / "samples.npz")
    assert np.array_equal(a["tokens"], b["tokens"]) and np.array_equal(a["images"], b["images"])


def test_old_run_without_embedded_tokenizer_falls_back_to_data_tokenizer(runs, tmp_path, monkeypatch):
    old = tmp_path / "old"
    shutil.copytree(runs / "maskgit", old)
    shutil.rmtree(old / "tokenizer")
    path = write_samples(old, tmp_path / "s", classes=[2], num=2, steps=2)
    assert np.load(path)["images"].shape == (2, 1, 28, 28)
    with _tokenizer_run_gone(runs), pytest.raises(FileNotFoundError, match="embeds no tokenizer"):
        MaskGITPipeline.from_run(old)


def test_export_tokenizer_and_maskgit_bundles(runs, tmp_path):
    tok_bundle = export_run(runs / "tokenizer", tmp_path / "tok")
    names = {p.name for p in tok_bundle.iterdir()}
    assert names == {"config.json", "model.safetensors", "README.md", "eval.json"}
    run_model, step = tokenizer_stage.load_run(runs / "tokenizer")
    loaded = Tokenizer.from_pretrained(tok_bundle)
    x = load_images("mnist", "test", limit=8).images.float().div(255)
    assert torch.equal(run_model.tokenize(x), loaded.tokenize(x))
    card = (tok_bundle / "README.md").read_text()
    psnr = json.loads((tok_bundle / "eval.json").read_text())["psnr"]
    assert "# tok" in card and f"| psnr | {psnr:.4g} |" in card and "fsq_mnist" in card
    split = read_run_config(runs / "tokenizer").data.eval_split
    assert f"- `data.eval_split`: {split}\n" in card
    with pytest.raises(FileExistsError):
        export_run(runs / "tokenizer", tmp_path / "tok")
    # evaluated again on another split after training (a study's held-out evaluation of a val trial): the card says so
    shutil.copytree(runs / "tokenizer", tmp_path / "moved")
    path = rundir.eval_path(tmp_path / "moved", step)
    path.write_text(json.dumps({**json.loads(path.read_text()), "split": "val", "num_samples": 7}))
    card = (export_run(tmp_path / "moved", tmp_path / "tok_val") / "README.md").read_text()
    assert f"- `data.eval_split`: val (the evaluation in `eval.json`; the run's config named {split})\n" in card
    limit = read_run_config(runs / "tokenizer").data.eval_limit  # and on another number of samples: said too
    assert f"- `data.eval_limit`: 7 evaluated (the evaluation in `eval.json`; the run's config named {limit})\n" in card
    assert "FID here is over" not in card  # the run's own FID size
    planned = read_run_config(runs / "tokenizer").eval.fid_samples  # and its FID over another number of images
    path.write_text(json.dumps({**json.loads(path.read_text()), "fid_samples": planned + 5}))
    card = (export_run(tmp_path / "moved", tmp_path / "tok_fid") / "README.md").read_text()
    assert f"FID here is over {planned + 5} images (the evaluation in `eval.json`)" in card
    assert f"names `eval.fid_samples: {planned}`, the run's own evaluation" in card

    bundle = export_run(runs / "maskgit", tmp_path / "mg")
    assert {p.name for p in bundle.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer",
        "README.md",
        "eval.json",
    }
    assert not list(bundle.rglob("*.pt")) and not list(bundle.rglob("*.pkl"))  # nothing pickled
    config = json.loads((bundle / "config.json").read_text())
    assert config["format"] == "fsq-maskgit" and config["sampling"]["steps"] == 4
    pipeline = MaskGITPipeline.from_pretrained(bundle)
    run_pipeline = MaskGITPipeline.from_run(runs / "maskgit")
    labels = torch.tensor([0, 5, 9])
    assert torch.equal(pipeline.generate(labels, steps=3), run_pipeline.generate(labels, steps=3))
    assert pipeline.sample([3, 3]).shape == (2, 1, 28, 28)
    assert torch.equal(Tokenizer.from_pretrained(bundle).tokenize(x), loaded.tokenize(x))  # its tokenizer
    a = write_samples(bundle, tmp_path / "from_bundle", classes=[1, 4], num=3, steps=3)
    b = write_samples(runs / "maskgit", tmp_path / "from_run", classes=[1, 4], num=3, steps=3)
    assert np.array_equal(np.load(a)["tokens"], np.load(b)["tokens"])
    assert "class_accuracy" in (bundle / "README.md").read_text()


def test_card_examples_run_as_printed_and_cards_carry_hub_front_matter(runs, tmp_path, monkeypatch):
    import re

    import yaml

    monkeypatch.chdir(tmp_path)  # the cards refer to the bundle by its folder name
    for run, name in ((runs / "tokenizer", "my-tok"), (runs / "maskgit", "my-maskgit")):
        card = (export_run(run, tmp_path / name) / "README.md").read_text()
        front = yaml.safe_load(card.split("---\n")[1])
        assert front["license"] == "apache-2.0" and front["library_name"] == "fsq" and front["datasets"] == ["mnist"]
        assert "fsq" in front["tags"] and "pytorch" in front["tags"]
        assert "tokenizer_config" not in card.split("## Data")[1].split("## Training")[0]  # what trained it
        blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
        assert blocks
        for block in blocks:
            exec(compile(block, f"{name}/README.md", "exec"), {})


def test_export_uvim_bundle(tmp_path):
    cfg = load_config(
        UViMExperiment, [ROOT / "configs/uvim/depth_fsq.yaml", PRESETS / "smoke_uvim.yaml"], ["train.threads=1"]
    )
    app.train(cfg, tmp_path / "run")
    bundle = export_run(tmp_path / "run", tmp_path / "bundle")
    assert {p.name for p in bundle.iterdir()} == {
        "config.json",
        "oracle.safetensors",
        "lm.safetensors",
        "README.md",
        "eval.json",
    }
    loaded, from_run = UViMPredictor.from_pretrained(bundle), UViMPredictor.from_run(tmp_path / "run")
    assert loaded.task_settings == {"name": "depth", "options": {"bins": cfg.task.depth_bins, "max_depth": 10.0}}
    images = torch.rand(2, 3, 16, 16)
    (pred_a, codes_a), (pred_b, codes_b) = loaded.predict(images), from_run.predict(images)
    assert torch.equal(codes_a, codes_b) and torch.equal(pred_a["depth"], pred_b["depth"])
    with pytest.raises(ValueError, match="expected images"):
        loaded.predict(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="not an fsq-maskgit bundle"):
        MaskGITPipeline.from_pretrained(bundle)


def test_hub_repo_ids_load_and_push_through_huggingface_hub(runs, tmp_path, monkeypatch):
    """No network: ``snapshot_download`` and ``HfApi`` are replaced by fakes that record their arguments."""
    bundle = export_run(runs / "maskgit", tmp_path / "bundle")
    calls: dict[str, list] = {"download": [], "upload": []}

    def snapshot_download(**kwargs):
        calls["download"].append(kwargs)
        target = tmp_path / "hub_cache" / kwargs["repo_id"].replace("/", "--")
        if not target.exists():
            shutil.copytree(bundle, target)
        return str(target)

    class HfApi:
        def __init__(self, token=None):
            self.token = token

        def create_repo(self, repo_id, **kwargs):
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kwargs):
            calls["upload"].append({**kwargs, "files": sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())})

    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download, fake.HfApi = snapshot_download, HfApi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.chdir(tmp_path)

    pipeline = MaskGITPipeline.from_pretrained("someone/mnist-maskgit", revision="v1", local_files_only=True)
    assert calls["download"][0]["repo_id"] == "someone/mnist-maskgit" and calls["download"][0]["revision"] == "v1"
    assert (
        calls["download"][0]["local_files_only"] is True and "*.safetensors" in calls["download"][0]["allow_patterns"]
    )
    tokenizer = Tokenizer.from_pretrained("someone/mnist-maskgit")
    assert tokenizer.codebook_size == 1000
    url = pipeline.push_to_hub("me/copy", token="t")
    assert url == "https://huggingface.co/me/copy"
    assert calls["upload"][0]["files"] == ["config.json", "model.safetensors", "tokenizer"]
    tokenizer.push_to_hub("me/tok", card="# tok\n")
    assert calls["upload"][1]["files"] == ["README.md", "config.json", "model.safetensors"]
    (tmp_path / "runs").mkdir()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        hub.resolve("runs/missing")  # a mistyped local path is not looked up on the hub


def test_cli_export_then_sample_and_predict_from_bundles(runs, tmp_path, monkeypatch):
    from PIL import Image

    from fsq.cli import main

    assert main(["export", str(runs / "maskgit"), str(tmp_path / "bundle"), "--name", "my-maskgit"]) == 0
    card = (tmp_path / "bundle" / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")  # the hub's front matter, then the card's title
    assert card.split("\n---\n", 1)[1].lstrip("\n").startswith("# my-maskgit\n")
    assert main(["export", str(runs / "maskgit"), str(tmp_path / "bundle")]) == 2  # exists: refused
    monkeypatch.chdir(tmp_path)
    assert main(_sample_args("bundle", tmp_path / "samples")) == 0
    assert np.load(tmp_path / "samples" / "samples.npz")["images"].shape == (6, 1, 28, 28)
    assert main(_sample_args("no-such-model", tmp_path / "x")) == 2  # not a folder, a shipped name or a repo id

    cfg = load_config(
        UViMExperiment, [ROOT / "configs/uvim/depth_fsq.yaml", PRESETS / "smoke_uvim.yaml"], ["train.threads=1"]
    )
    app.train(cfg, tmp_path / "uvim")
    assert main(["export", str(tmp_path / "uvim"), "uvim_bundle"]) == 0
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "photo.png")
    assert main(["predict", "uvim_bundle", "photo.png", "--out", "pred"]) == 0
    assert (tmp_path / "pred" / "photo.png").is_file() and (tmp_path / "pred" / "predictions.npz").is_file()


def test_the_final_evaluation_is_published_to_tensorboard(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(runs / "maskgit" / "tb"), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert {"eval/samples_g0", "eval/samples_g1"} <= set(tags["images"])
    assert sorted(tags["histograms"]) == [f"levels/channel_{c}" for c in range(4)]  # FSQ [8, 5, 5, 5]
    assert "eval/guidance/0/class_accuracy" in tags["scalars"] and "loss" in tags["scalars"]
    events = EventAccumulator(str(runs / "tokenizer" / "tb"), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert "eval/grid" in tags["images"] and "eval/psnr" in tags["scalars"]  # originals over reconstructions
    assert sorted(tags["histograms"]) == [f"levels/channel_{c}" for c in range(4)]


def test_tokenize_takes_a_bundle_or_a_shipped_name(runs, tmp_path):
    from fsq.cli import main
    from fsq.stages.tokens import load_tokens

    bundle = export_run(runs / "tokenizer", tmp_path / "bundle")
    assert main(["tokenize", str(runs / "tokenizer"), "--split", "test", "--out", str(tmp_path / "a")]) == 0
    assert main(["tokenize", str(bundle), "--split", "test", "--out", str(tmp_path / "b")]) == 0
    (a, labels_a, _), (b, labels_b, manifest) = load_tokens(tmp_path / "a"), load_tokens(tmp_path / "b")
    assert torch.equal(a, b) and torch.equal(labels_a, labels_b) and manifest["tokenizer_step"] == 4
    Tokenizer.from_pretrained(bundle).save_pretrained(tmp_path / "bare")  # no metadata: which data?
    assert main(["tokenize", str(tmp_path / "bare"), "--split", "test", "--out", str(tmp_path / "c")]) == 2
