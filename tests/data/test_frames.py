"""``frames:NAME``: every frame of a generated video source's clips as images, the same clips as the video source
for the same seed (so a per-frame image tokenizer sees the video tokenizer's data)."""

from __future__ import annotations

import pytest
import torch

from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.config.tokenizer import DataConfig
from fsq.data.frames import frame_images
from fsq.data.synthetic_signals import generated_items
from fsq.stages.tokenizer import open_split


def test_frames_are_the_video_sources_clips_frame_by_frame():
    images = frame_images("frames:blobs", "test", seed=3, count=20, image_size=16)
    clips = generated_items("blobs", "test", seed=3, count=2, image_size=16).clips  # 17 frames each
    assert images.images.shape == (20, 1, 16, 16) and images.images.dtype == torch.uint8
    assert torch.equal(images.images[0], clips[0, :, 0]) and torch.equal(images.images[16], clips[0, :, 16])
    assert torch.equal(images.images[17], clips[1, :, 0])  # clip-major
    assert images.labels is None and images.source == "frames:blobs"


def test_a_frames_config_opens_in_memory_and_bad_names_are_clear_errors():
    cfg = load_config(TokenizerExperiment, [], ["data.source=frames:blobs", "data.image_size=16", "train.seed=3"])
    items = open_split(cfg, "test", 5)
    assert items.in_memory and len(items) == 5
    assert torch.equal(items.read(1), generated_items("blobs", "test", seed=3, count=1).clips[0, :, 1])
    with pytest.raises(ValueError, match="frames come from a generated video source; use one of frames:blobs"):
        frame_images("frames:tones", "test", seed=0)
    with pytest.raises(ConfigError, match="names no path"):
        DataConfig(source="frames:")
