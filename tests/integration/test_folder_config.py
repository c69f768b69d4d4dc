"""The 256 px own-data config (``configs/tokenizer/fsq_folder_256.yaml``) runs as its header says, by name, on a
small generated folder: 2 CPU steps of its recipe (paper architecture, perceptual + GAN + R1, random crops) at
reduced size (32 px, 16 base filters, batch 4); ``torch.compile`` is off here (tested in test_loop_features)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from streaming_sources import make_folder  # noqa: E402

from fsq.cli import main  # noqa: E402
from fsq.config import TokenizerExperiment, load_config, resolve_config  # noqa: E402
from fsq.rundir import read_metrics  # noqa: E402

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).parents[2] / "configs" / "tokenizer" / "fsq_folder_256.yaml"
REDUCED = [
    "data.image_size=32",
    "data.eval_split=test",
    "data.eval_limit=4",
    "data.workers=1",
    "model.filters=16",
    "model.num_groups=4",
    "loss.adversarial_start=0",
    "loss.discriminator_channels=8",
    "train.steps=2",
    "train.batch_size=4",
    "train.log_every=1",
    "train.checkpoint_every=2",
    "train.threads=1",
    "train.progress=false",
    "train.compile=false",
    "eval.batch_size=4",
    "eval.fid_samples=0",
    "eval.grid_size=2",
]


def test_the_header_command_names_the_shipped_file():
    header = CONFIG.read_text().splitlines()[0]
    assert header == "# Command: fsq train tokenizer fsq_folder_256 data.source=/path/to/images"
    assert resolve_config("fsq_folder_256", stage="tokenizer") == CONFIG.resolve()
    cfg = load_config(TokenizerExperiment, [CONFIG])
    assert cfg.model.channel_multipliers == [1, 1, 2, 2, 4] and cfg.model.filters == 128  # model.preset: paper
    assert cfg.loss.perceptual_weight > 0 and cfg.loss.adversarial_weight > 0 and cfg.loss.r1_weight > 0
    assert cfg.data.image_size == 256 and cfg.train.compile and cfg.train.precision == "auto"  # auto: bf16 on CUDA


def test_two_cpu_steps_on_a_generated_folder(tmp_path):
    folder = make_folder(tmp_path / "images")
    run = tmp_path / "run"
    args = ["train", "tokenizer", "fsq_folder_256", f"data.source={folder}", *REDUCED, "--run-dir", str(run)]
    assert main(args) == 0
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2]
    assert all(k in records[-1] for k in ("perceptual_loss", "g_adv_loss", "d_loss", "r1"))
    assert (run / "checkpoints" / "step_000002" / "discriminator.safetensors").is_file()
    assert (run / "eval" / "step_000002.json").is_file()
