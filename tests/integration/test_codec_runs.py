"""fsq encode with a run dir, fsq decode with the bundle exported from it: the same model (one fingerprint), the
rate from the run's config (the generated tones' 8 kHz)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq import app
from fsq.cli import main
from fsq.config import TokenizerExperiment, load_config
from fsq.data.signal_files import read_wav, write_wav
from fsq.inference.codes import read_codes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def test_run_dir_encodes_and_its_exported_bundle_decodes(tmp_path, capsys):
    path = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"
    overrides = ["model.channel_multipliers=[1, 2, 2]", "model.num_groups=4", "train.threads=1"]
    overrides += ["train.steps=2", "train.eval_at_end=false", "data.train_limit=32"]
    cfg = load_config(TokenizerExperiment, [path, ROOT / "configs" / "presets" / "smoke.yaml"], overrides)
    app.train(cfg, tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "bundle")]) == 0
    write_wav(tmp_path / "in.wav", 0.5 + 0.2 * torch.sin(torch.arange(600) / 3.0)[None], 8000)
    codes = str(tmp_path / "c.npz")
    assert main(["encode", str(tmp_path / "run"), str(tmp_path / "in.wav"), "--out", codes]) == 0
    header = read_codes(codes).header
    assert header["rate"] == 8000 and header["chunks"] == 3 and header["grid_shape"] == [32]  # 256-sample chunks
    assert main(["decode", str(tmp_path / "bundle"), codes, "--out", str(tmp_path / "out.wav")]) == 0
    audio, rate = read_wav(tmp_path / "out.wav")
    assert rate == 8000 and audio.shape == (1, 600)
    assert "real-time factor" in capsys.readouterr().out
