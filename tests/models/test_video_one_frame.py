"""Joint image-video tokenization (MAGVIT-v2): a causal video tokenizer encodes an image as a one-frame video
(1 frame -> 1 latent frame), the same tokens as the first frame of a clip, and takes any ``1 + f*k`` frames."""

from __future__ import annotations

import pytest
import torch

from fsq.models import Tokenizer, TokenizerSpec
from fsq.models.quantizer import QuantizerSpec

SMALL = {"filters": 8, "num_groups": 4, "quantizer": QuantizerSpec(levels=[8, 5, 5, 5])}


def _model(causal: bool = True) -> Tokenizer:
    torch.manual_seed(0)
    spec = TokenizerSpec(dims=3, shape=[9, 16, 16], downsample=[[2, 2, 2], [2, 2, 2]], causal=causal, **SMALL)
    return Tokenizer(spec).eval()


def test_one_frame_is_encoded_as_the_first_frame_of_a_clip():
    model = _model()
    assert model.spec.time_factor == 4 and model.spec.grid_shape == (3, 4, 4)
    x = torch.rand(3, 1, 9, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        clip = model.encode(x)
        image = model.encode(x[:, :, :1])  # an image (B, C, H, W) as a one-frame video (B, C, 1, H, W)
        assert image.indices.shape == (3, 1, 4, 4) and image.quantized.shape == (3, 4, 1, 4, 4)
        assert torch.equal(image.indices, clip.indices[:, :1])  # causal: frame 0 never sees later frames
        torch.testing.assert_close(model.encoder(x[:, :, :1] * 2 - 1), model.encoder(x * 2 - 1)[:, :, :1])
        frame = model.decode(image.quantized)
        assert frame.shape == (3, 1, 1, 16, 16)  # 1 latent frame -> 1 frame
        torch.testing.assert_close(frame, model.decode(clip.quantized)[:, :, :1])  # the decoder is causal too
        assert torch.equal(model.decode_indices(model.tokenize(x[:, :, :1])), frame)


def test_causal_tokenizers_take_any_one_plus_f_k_frames():
    model = _model()
    x = torch.rand(2, 1, 17, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for frames, latent in [(1, 1), (5, 2), (9, 3), (17, 5)]:
            reconstruction, out = model(x[:, :, :frames])
            assert out.indices.shape == (2, latent, 4, 4) and reconstruction.shape == (2, 1, frames, 16, 16)
            # a shorter clip is the prefix of a longer one, in tokens (the encoder is causal)
            assert torch.equal(out.indices, model.tokenize(x)[:, :latent])
    assert model.spec.accepts_frames(13) and not model.spec.accepts_frames(8) and not model.spec.accepts_frames(0)
    with pytest.raises(ValueError, match=r"\(B, 1, 9, 16, 16\) .*causal in time: any 1 \+ 4k frames, 1 for an image"):
        model.encode(torch.rand(2, 1, 8, 16, 16))  # 8 = 1 + 4k for no k
    with pytest.raises(ValueError, match=r"expected signals of shape \(B, 1, 9, 16, 16\)"):
        model.encode(torch.rand(2, 1, 16, 16))  # an image needs its time axis: x[:, :, None]
    with pytest.raises(ValueError, match=r"got \(2, 1, 5, 8, 8\)"):
        model.encode(torch.rand(2, 1, 5, 8, 8))  # another size in space is still refused


def test_a_non_causal_video_tokenizer_takes_only_its_own_length():
    model = _model(causal=False)
    assert not model.spec.accepts_frames(1) and model.spec.accepts_frames(9)
    with pytest.raises(ValueError, match=r"shape \(B, 1, 9, 16, 16\) for this 3-D .*got \(1, 1, 1,"):
        model.encode(torch.rand(1, 1, 1, 16, 16))
