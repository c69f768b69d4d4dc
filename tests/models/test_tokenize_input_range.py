"""``Tokenizer.tokenize`` refuses images that are not in [0, 1] (issue 24, item 11): 8-bit tensors and floats in
[0, 255] used to be tokenized silently into nonsense codes."""

from __future__ import annotations

import pytest
import torch

from fsq.models.autoencoder import Tokenizer, TokenizerSpec


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer(TokenizerSpec(image_size=16, in_channels=1, filters=8, channel_multipliers=[1, 2], num_groups=4))


def test_images_in_0_255_are_refused_with_the_fix(tokenizer):
    images = torch.rand(2, 1, 16, 16)
    assert tokenizer.tokenize(images).shape == (2, 8, 8)
    with pytest.raises(ValueError, match=r"reach 255 \(in \[0, 255\]\?\): divide them by 255"):
        tokenizer.tokenize(images * 0 + 255.0)
    with pytest.raises(ValueError, match=r"got torch.uint8: use images.float\(\).div\(255\)"):
        tokenizer.tokenize((images * 255).to(torch.uint8))
    assert tokenizer.tokenize(images * 1.5).shape == (2, 8, 8)  # slightly outside [0, 1] (resampling): kept
