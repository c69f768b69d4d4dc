"""Logging: an evaluation is published to TensorBoard (numbers under ``eval/``, its PNGs as images, histograms)
without touching ``metrics.jsonl``; the optional W&B logger runs offline through the same calls (a fake ``wandb``
module records them: no network, no account)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

from fsq import rundir
from fsq.tracking import MetricsWriter, publish_evaluation


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    events.Reload()
    return events.Tags()


def test_publish_evaluation_writes_numbers_images_and_histograms(tmp_path):
    (tmp_path / "eval").mkdir()
    Image.fromarray(np.full((8, 12, 3), 200, np.uint8)).save(rundir.eval_path(tmp_path, 40, "_grid.png"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(rundir.eval_path(tmp_path, 40, "_samples_g0.png"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(rundir.eval_path(tmp_path, 20, "_grid.png"))  # another step
    results = {"step": 40, "psnr": 25.0, "skip": "text", "guidance": [{"guidance": 0.0, "class_accuracy": 0.9}]}
    levels = {"levels/channel_0": np.array([0, 1, 1, 7])}
    publish_evaluation(tmp_path, 40, results, histograms=levels)
    tags = _events(tmp_path)
    assert {"eval/psnr", "eval/guidance/0/class_accuracy"} <= set(tags["scalars"])
    assert set(tags["images"]) == {"eval/grid", "eval/samples_g0"}
    assert tags["histograms"] == ["levels/channel_0"]
    assert not (tmp_path / rundir.METRICS).exists()


def test_wandb_offline_mirrors_the_logs(tmp_path, monkeypatch):
    calls: dict[str, list] = {"init": [], "log": [], "finish": []}

    class Run:
        def log(self, values, step=None):
            calls["log"].append((step, sorted(values)))

        def finish(self):
            calls["finish"].append(True)

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: calls["init"].append(kwargs) or Run()  # type: ignore[attr-defined]
    fake.Image = lambda image: ("image", image.shape)  # type: ignore[attr-defined]
    fake.Histogram = lambda values: ("histogram", len(values))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)

    writer = MetricsWriter(tmp_path, tensorboard=False, wandb_mode="offline")
    writer.log(10, {"loss": 0.5})
    writer.log_images(10, {"eval/grid": np.zeros((4, 4, 3), np.uint8)})
    writer.log_histograms(10, {"levels/channel_0": np.arange(5)})
    writer.close()
    assert calls["init"][0]["mode"] == "offline" and calls["init"][0]["dir"] == str(tmp_path)
    assert calls["log"] == [(10, ["loss"]), (10, ["eval/grid"]), (10, ["levels/channel_0"])]
    assert calls["finish"] == [True] and (tmp_path / "wandb").is_dir()
    assert (tmp_path / rundir.METRICS).read_text().count("\n") == 1
    with pytest.raises(ValueError, match="offline"):
        MetricsWriter(tmp_path, tensorboard=False, wandb_mode="cloud")
