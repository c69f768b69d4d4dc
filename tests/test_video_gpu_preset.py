"""The GPU video preset (configs/tokenizer/fsq_video_256_gpu.yaml): 17-frame 256 px clips, causal, 4x8x8 as
Cosmos / VidTok, FSQ 8^6. Its full size is built (the shapes, the factors, the parameter count its header
states); it trains on a CPU at a reduced size that keeps the 4x8x8 factors (frames 16 px, width 8), and its final
level histograms tokenize no more clips than ``data.eval_limit``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fsq import app
from fsq.config import TokenizerExperiment, load_config
from fsq.models import Tokenizer
from fsq.stages.tokenizer import level_histograms, tokenizer_spec

CONFIG = Path(__file__).parents[1] / "configs" / "tokenizer" / "fsq_video_256_gpu.yaml"
REDUCED = [  # width and frame size shrunk; the time crop, the factors and the quantizer kept
    "data.image_size=16",
    "model.filters=8",
    "model.num_groups=4",
    "model.num_res_blocks=1",
    "data.train_limit=4",
    "data.eval_limit=2",
    "train.batch_size=4",  # 2 passes of 2 clips (accumulate 2)
    "train.accumulate=2",
    "train.steps=2",
    "train.log_every=1",
    "train.checkpoint_every=2",
    "train.threads=1",
    "train.progress=false",
    "eval.batch_size=2",
]


def test_full_size_is_4x8x8_of_17_frame_256px_clips_with_the_stated_parameters():
    cfg = load_config(TokenizerExperiment, [CONFIG])
    spec = tokenizer_spec(cfg, in_channels=cfg.data.channels or 0)
    assert spec.in_channels == 3 and spec.input_shape == (17, 256, 256) and spec.causal
    assert spec.grid_shape == (5, 32, 32)  # (1 + 16) / 4 -> 1 + 4 latent frames, 256 / 8 = 32
    factors = [math.prod(axis) for axis in zip(*spec.stage_factors())]
    assert factors == [4, 8, 8]
    model = Tokenizer(spec)  # 154 MB of weights
    assert model.codebook_size == 8**6
    counts = model.parameter_counts()
    header = CONFIG.read_text().splitlines()[1]
    assert f"{counts['total'] / 1e6:.1f}M parameters" in header
    assert f"encoder {counts['encoder'] / 1e6:.1f}M" in header and f"decoder {counts['decoder'] / 1e6:.1f}M" in header
    assert cfg.train.batch_size // cfg.train.accumulate == 2 and cfg.train.precision == "auto"  # bf16 on CUDA


def test_reduced_size_trains_on_the_cpu_with_the_same_factors(tmp_path):
    cfg = load_config(TokenizerExperiment, [CONFIG], REDUCED)
    spec = tokenizer_spec(cfg, in_channels=3)
    assert spec.input_shape == (17, 16, 16) and spec.grid_shape == (5, 2, 2)
    result = app.train(cfg, tmp_path / "run")
    evaluation = result["eval"]
    assert evaluation["token_grid"] == [5, 2, 2] and evaluation["num_samples"] == 2
    assert np.isfinite(evaluation["psnr"]) and 0 < evaluation["usage"] <= 1
    # the final level histograms: data.eval_limit clips (2 x 5 x 2 x 2 tokens), not 1000 generated ones
    histograms = level_histograms(cfg, tmp_path / "run", None)
    assert len(histograms) == 6 and all(len(h) == 2 * 20 for h in histograms.values())


def test_sizing_script_counts_activations_apart_from_weights(tmp_path):
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        import video_preset
    finally:
        sys.path.pop(0)
    small = ["model.filters=8", "model.num_groups=4", "model.num_res_blocks=1"]
    assert video_preset.main(["--size", "8", "--out", str(tmp_path / "sizes.json"), *small]) == 0
    sizes = json.loads((tmp_path / "sizes.json").read_text())
    assert sizes["grid"] == [5, 32, 32] and sizes["input"] == [3, 17, 256, 256]
    assert sizes["saved_gib_per_clip_fp32"] > sizes["saved_gib_per_clip_cpu_bf16_autocast"] > 0
    spec = video_preset.preset_spec(8, small)
    saved = video_preset.saved_bytes_per_clip(spec, bf16=False)
    weights = sum(p.numel() * 4 for p in Tokenizer(spec).parameters() if p.ndim > 1)  # every conv saves its weight
    assert saved["weights"] >= weights and saved["activations"] > 0
