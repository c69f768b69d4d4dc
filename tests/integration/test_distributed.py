"""One training however it is distributed: with the GAN loss on, 2-process gloo DDP trains the generator, its EMA
and the discriminator as one process does with the same global batch, also with gradient accumulation (the
discriminator's gradient accumulated over every micro-batch, as the generator's); accumulating in one process
equals one big batch with the GAN on; lazy R1 (``loss.r1_every``) trains on 2 ranks as on one; a run killed mid-way
resumes to the uninterrupted run's weights, GAN on; UViM's oracle (code dropout drawn for the global batch) and
language model train on 2 ranks as on one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.checkpoint import load_safetensors
from fsq.config import TokenizerExperiment, UViMExperiment, load_config
from fsq.data import SourceUnavailable, load_images

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "tokenizer" / "fsq_mnist.yaml"  # EMA on (decay 0.99, warm-up on in short runs)
SMOKE = ROOT / "configs" / "presets" / "smoke.yaml"
GAN = [
    "loss.adversarial_weight=0.1",
    "loss.adversarial_start=1",  # step 0 without the GAN, then generator and discriminator together
    "loss.discriminator_channels=8",
    "train.threads=1",
    "train.eval_at_end=false",
    "data.train_limit=64",
]
PARTS = ("model", "ema", "discriminator")


@pytest.fixture(scope="module")
def mnist():
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))


def _cfg(*overrides: str) -> TokenizerExperiment:
    return load_config(TokenizerExperiment, [CONFIG, SMOKE], [*GAN, *overrides])


def _parts(run_dir: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    folder = run_dir / "checkpoints" / f"step_{step:06d}"
    return {part: load_safetensors(folder / f"{part}.safetensors") for part in PARTS}


def _assert_close(a: Path, b: Path, step: int) -> None:
    """Every tensor of the generator, its EMA and the discriminator within 1e-4 relative (1e-5 absolute)."""
    pa, pb = _parts(a, step), _parts(b, step)
    for part in PARTS:
        assert pa[part].keys() == pb[part].keys()
        for key in pa[part]:
            torch.testing.assert_close(pa[part][key], pb[part][key], rtol=1e-4, atol=1e-5, msg=f"{part}: {key}")


SHORT = ["train.steps=3", "train.checkpoint_every=3"]


@pytest.fixture(scope="module")
def single(mnist, tmp_path_factory):
    """The one-process run the 2-process runs are compared with: global batch 16 in one pass."""
    run_dir = tmp_path_factory.mktemp("single")
    app.train(_cfg(*SHORT), run_dir)
    return run_dir


@pytest.mark.parametrize("accumulate", [1, 2], ids=["gan", "gan-accumulate"])
def test_two_process_gloo_with_gan_matches_one_process(accumulate, single, tmp_path, run_fsq):
    """Global batch 16: one process in one pass == 2 ranks x 8 (x 2 accumulated micro-batches of 4)."""
    more = [f"train.accumulate={accumulate}", "--run-dir", str(tmp_path)]
    run = run_fsq(["train", "tokenizer", str(CONFIG), str(SMOKE), *GAN, *SHORT, *more], nproc=2)
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_close(single, tmp_path, 3)


def test_two_process_gloo_with_lazy_r1_matches_one_process(single, tmp_path, run_fsq):
    """loss.r1_every=2: GAN steps 1 (no penalty) and 2 (the penalty, x2) take the same branch on every rank, so 2 ranks
    x 8 still equal one process with the global batch of 16; and the lazy penalty does change the discriminator."""
    lazy = ["loss.r1_every=2"]
    one = tmp_path / "one"
    app.train(_cfg(*SHORT, *lazy), one)
    run = run_fsq(
        ["train", "tokenizer", str(CONFIG), str(SMOKE), *GAN, *SHORT, *lazy, "--run-dir", str(tmp_path / "two")],
        nproc=2,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_close(one, tmp_path / "two", 3)
    eager, lazier = _parts(single, 3)["discriminator"], _parts(one, 3)["discriminator"]
    assert any(not torch.allclose(eager[k], lazier[k], rtol=1e-4, atol=1e-5) for k in eager)


def test_accumulating_with_gan_equals_one_big_batch(single, tmp_path):
    """The discriminator sees every micro-batch: 4 accumulated micro-batches == one batch of 16, GAN on."""
    app.train(_cfg(*SHORT, "train.accumulate=4"), tmp_path)
    _assert_close(single, tmp_path, 3)


def test_resume_after_a_kill_equals_uninterrupted_with_gan(mnist, tmp_path):
    cfg = _cfg("train.steps=6")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    app.train(cfg, straight)

    def kill_at_step_5(phase: str, step: int) -> None:
        if step == 4:  # checkpoints of steps 2 and 4 are on disk (generator, EMA, discriminator, both optimizers)
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        app.train(cfg, resumed, hooks=[kill_at_step_5])
    app.train(cfg, resumed)
    a, b = _parts(straight, 6), _parts(resumed, 6)
    for part in PARTS:
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part  # bit for bit on the CPU


def test_two_process_gloo_uvim_matches_one_process(tmp_path, run_fsq):
    """The oracle's code dropout is drawn for the global batch and each rank takes its rows, as for its data."""
    uvim = ROOT / "configs" / "uvim"
    common = [str(uvim / "depth_fsq.yaml"), str(ROOT / "configs/presets/smoke_uvim.yaml"), "train.threads=1"]
    common += ["train.eval_at_end=false", "train.oracle_steps=3", "train.lm_steps=2"]
    assert load_config(UViMExperiment, common[:2], common[2:]).model.code_dropout
    for run_dir, nproc in ((tmp_path / "single", 1), (tmp_path / "double", 2)):
        run = run_fsq(["train", "uvim", *common, "--run-dir", str(run_dir)], nproc=nproc)
        assert run.returncode == 0, run.stderr[-3000:]
    for phase, step in (("oracle", 3), ("lm", 2)):
        folder = Path("checkpoints") / f"step_{step:06d}" / "model.safetensors"
        a = load_safetensors(tmp_path / "single" / phase / folder)
        b = load_safetensors(tmp_path / "double" / phase / folder)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=f"{phase}: {key}")
