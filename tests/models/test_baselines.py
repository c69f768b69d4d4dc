"""The equal-bit baselines: the naive codec (levels, quantization, area down / bilinear up) on hand-made clips,
and an image tokenizer applied frame by frame."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.models import Tokenizer
from fsq.models.autoencoder import TokenizerSpec
from fsq.models.baselines import (
    equal_bit_naive_levels,
    naive_codec,
    naive_levels,
    per_frame_reconstruct,
    quantize_uniform,
    tokenizer_bits_per_clip,
)


def test_naive_levels_spend_at_most_the_bits():
    assert naive_levels(4, 1) == [16]
    assert naive_levels(math.log2(1000), 1) == [1000]
    assert naive_levels(10, 3) == [10, 10, 10]  # 1000 <= 1024; 11 x 10 x 10 = 1100 would not fit
    assert naive_levels(4.5, 2) == [5, 4]  # 2^4.5 = 22.6: 4 x 4, topped up to 5 x 4 = 20 (5 x 5 = 25 > 22.6)
    assert naive_levels(3, 3) == [2, 2, 2]
    with pytest.raises(ValueError, match="cannot give 3 channels two levels"):
        naive_levels(2, 3)


def test_equal_bits_of_a_causal_video_grid():
    # a 3x4x4 token grid of 1000 codes over 9 frames: 48 log2(1000) bits over 9 x 16 positions = log2(10) each
    bits = 48 * math.log2(1000)
    assert equal_bit_naive_levels(bits, frames=9, grid=(4, 4), channels=1) == [10]
    # RGB over 3 frames: log2(1000) bits per position, split over the channels as 10 x 10 x 10 levels
    assert equal_bit_naive_levels(bits, frames=3, grid=(4, 4), channels=3) == [10, 10, 10]
    with pytest.raises(ValueError, match=r"grid must be \(h, w\)"):
        equal_bit_naive_levels(bits, frames=9, grid=(3, 4, 4), channels=1)


def test_uniform_quantization_hand_values():
    x = torch.tensor([0.3, 0.26, 1.2, -0.1]).view(1, 1, 4)
    assert quantize_uniform(x, [2]).flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert quantize_uniform(x, [3]).flatten().tolist() == [0.5, 0.5, 1.0, 0.0]
    assert quantize_uniform(x, [11]).flatten().tolist() == pytest.approx([0.3, 0.3, 1.0, 0.0])
    rgb = torch.full((1, 3, 2), 0.3)
    assert quantize_uniform(rgb, [2, 3, 11])[0, :, 0].tolist() == pytest.approx([0.0, 0.5, 0.3])
    with pytest.raises(ValueError, match="each of the 3 channels"):
        quantize_uniform(rgb, [2, 2])


def test_naive_codec_keeps_each_frames_block_means():
    clip = torch.zeros(1, 1, 2, 4, 4)
    clip[0, 0, 0, :, 2:] = 1.0  # frame 0: left half 0, right half 1 -> 1x1 grid mean 0.5
    clip[0, 0, 1] = 0.3  # frame 1: constant 0.3
    out = naive_codec(clip, (1, 1), [3])
    assert out.shape == clip.shape
    assert torch.allclose(out[0, 0, 0], torch.full((4, 4), 0.5))  # the mean, on a level
    assert torch.allclose(out[0, 0, 1], torch.full((4, 4), 0.5))  # 0.3 -> the nearest of 0, 0.5, 1
    assert torch.allclose(naive_codec(clip, (1, 1), [11])[0, 0, 1], torch.full((4, 4), 0.3))
    # a 2x2 grid of a frame that is constant on 2x2 blocks: area means exact; bilinear stays within the range
    blocks = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).repeat_interleave(2, 0).repeat_interleave(2, 1)
    coded = naive_codec(blocks.view(1, 1, 4, 4), (2, 2), [256])
    assert coded[0, 0, 0, 0].item() == 0.0 and coded[0, 0, 0, 3].item() == 1.0  # corners keep their block's value
    assert coded.min() >= 0 and coded.max() <= 1


def test_naive_codec_bad_input():
    with pytest.raises(ValueError, match=r"must fit the frames \(4 x 4\)"):
        naive_codec(torch.rand(1, 1, 2, 4, 4), (8, 8), [4])
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\) clips or \(B, C, H, W\) images"):
        naive_codec(torch.rand(4, 4), (2, 2), [4])


def _image_tokenizer() -> Tokenizer:
    spec = TokenizerSpec(image_size=8, filters=8, channel_multipliers=[1, 2], num_groups=4)
    return Tokenizer(spec).eval()


def test_per_frame_tokenizer_codes_each_frame_as_an_image():
    torch.manual_seed(0)
    model = _image_tokenizer()
    clips = torch.rand(2, 1, 3, 8, 8)
    out, indices = per_frame_reconstruct(model, clips)
    assert out.shape == clips.shape and indices.shape == (2, 3, 4, 4)
    with torch.no_grad():
        alone, coded = model(clips[1, :, 2][None])
    assert torch.allclose(out[1, :, 2], alone[0].float().clamp(0, 1), atol=1e-6)
    assert torch.equal(indices[1, 2], coded.indices[0])
    # 16 tokens of [8, 5, 5, 5] (1000 codes) per frame
    assert tokenizer_bits_per_clip(model) == pytest.approx(16 * math.log2(1000))
    with pytest.raises(ValueError, match=r"clips must be \(B, C, T, H, W\)"):
        per_frame_reconstruct(model, torch.rand(2, 1, 8, 8))
