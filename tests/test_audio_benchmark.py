"""``benchmarks/audio_data.py --quick``: the audio loader's real-time factor per format and worker count, a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.integration
def test_audio_benchmark_quick_run(tmp_path):
    pytest.importorskip("soundfile", reason="the audio extra (soundfile) is not installed")
    out = tmp_path / "audio.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "audio_data.py"), "--quick", "--workers", "0", "--out", str(out)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| .wav | 0 |" in run.stdout and "| .flac | 0 |" in run.stdout
    rows = json.loads(out.read_text())["results"]
    assert {(r["format"], r["workers"]) for r in rows} == {(".wav", 0), (".flac", 0)}
    assert all(r["realtime"] > 1 and r["realtime_per_worker"] == r["realtime"] for r in rows)
