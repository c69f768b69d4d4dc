"""Every script in ``examples/`` runs (CPU, seconds) and shows what it claims: each is run as a user would, in a
fresh interpreter, with a short setting where it trains."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
RUNS = {  # script -> (arguments, a pattern its output must show)
    "audio_autoencoder.py": (["--steps", "60"], r"tokens per clip: \(64,\) of 1000 codes"),
    "video_tokens.py": ([], r"-> tokens \(2, 4, 8, 8\)"),
    "residual_fsq.py": ([], r"4 stage\(s\): 40 bits per vector"),
    "vqgan_with_fsq.py": (["--steps", "8", "--disc-start", "4"], r"tokens per image: \(8, 8\)"),
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUNS)


@pytest.mark.parametrize("script", sorted(RUNS))
def test_example_runs(script, tmp_path):
    args, pattern = RUNS[script]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(pattern, done.stdout), done.stdout
    assert "Warning" not in done.stderr, done.stderr
    if script == "audio_autoencoder.py":  # training helps: the test clips' SNR rises by more than 5 dB
        before, after = map(float, re.search(r"SNR: (\S+) dB untrained -> (\S+) dB", done.stdout).groups())
        assert after > before + 5, done.stdout
