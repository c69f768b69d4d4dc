"""fsq encode / decode: a signal (or its file) to a codes file and back, for audio, images and video.

Round trips equal the tokenizer's own reconstruction bit for bit (timed signals: chunks of the model's length,
the last one padded and the padding dropped); the codes file records the grid, the quantizer, the signal, the
bitrate and the model's fingerprint; bad input (a file of the wrong kind, wrong sizes, NaN, a rate mismatch, a
codes file that is corrupt or from another model) is a clear error naming the problem."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import fsq
from fsq.cli import main
from fsq.data.signal_files import read_wav, write_wav
from fsq.data.signals import to_unit
from fsq.inference.codec import chunks_of, model_fingerprint, open_model
from fsq.inference.codes import read_codes
from fsq.models import Tokenizer, TokenizerSpec
from fsq.models.quantizer import QuantizerSpec

SMALL = {"filters": 8, "num_groups": 4, "channel_multipliers": [1, 2]}
SPECS = {
    "audio": TokenizerSpec(dims=1, shape=[32], downsample=[[4]], **SMALL),  # 32 samples -> 8 tokens
    "video": TokenizerSpec(dims=3, shape=[5, 8, 8], downsample=[[4, 2, 2]], causal=True, **SMALL),  # 1+4 -> 2x4x4
    "image": TokenizerSpec(image_size=8, in_channels=3, **SMALL),  # 8x8 RGB -> 4x4
    "residual": TokenizerSpec(
        dims=1, shape=[32], downsample=[[4]], quantizer=QuantizerSpec(kind="residual_fsq", levels=[4, 4]), **SMALL
    ),
}
RATES = {"audio": 8000.0, "video": 10.0, "image": None, "residual": 8000.0}


def _bundle(root: Path, name: str, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = Tokenizer(SPECS[name]).eval()
    source = {"audio": "tones", "residual": "tones", "video": "blobs", "image": "photos"}[name]
    data = {"source": source, "sample_rate": None}  # the generated sources' own rates
    model.save_pretrained(root / f"{name}_{seed}", metadata={"config": {"stage": "tokenizer", "data": data}})
    return root / f"{name}_{seed}"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {name: _bundle(root, name) for name in SPECS}


def _reference(model: Tokenizer, chunks: torch.Tensor) -> torch.Tensor:
    """The tokenizer's own reconstruction of chunks (one batch, as the codec runs them)."""
    with torch.no_grad():
        return model.decode_indices(model.tokenize(to_unit(chunks)))


@pytest.mark.parametrize("name", ["audio", "video", "residual"])
def test_timed_round_trip_equals_the_tokenizer_bit_for_bit(name, bundles, tmp_path):
    model = open_model(bundles[name])
    assert model.rate == RATES[name] and model.kind.timed
    length = model.input_shape[0]
    shape = (1, 2 * length + 2, *model.input_shape[1:])  # two chunks and a bit: the last one padded
    g = torch.Generator().manual_seed(1)
    signal = torch.rand(shape, generator=g) if name != "video" else torch.randint(0, 256, shape, dtype=torch.uint8)
    encoded = fsq.encode(model, signal.numpy(), out=tmp_path / "codes.npz")  # an array, as a tensor
    codes = read_codes(tmp_path / "codes.npz")
    h = codes.header
    per_token = 2 if name == "residual" else 1
    assert h["chunks"] == 3 and h["grid_shape"] == list(model.tokenizer.spec.grid_shape)
    assert codes.codes.shape == (3, *h["grid_shape"], *((2,) if per_token == 2 else ()))
    assert h["signal_shape"] == list(shape) and h["rate"] == RATES[name] and h["chunk_shape"] == list(model.input_shape)
    sizes = [16, 16] if name == "residual" else [1000]  # levels [4, 4] twice; the default [8, 5, 5, 5]
    assert h["quantizer"]["codebook_sizes"] == sizes and h["quantizer"]["kind"] == model.tokenizer.spec.quantizer.kind
    positions = math.prod(h["grid_shape"])
    assert h["bitrate_unit"] == "bits/s"
    assert h["bitrate"] == pytest.approx(positions * sum(map(math.log2, sizes)) * RATES[name] / length)
    assert h["duration_s"] == pytest.approx(shape[1] / RATES[name]) and encoded.real_time_factor > 0
    # the padding by hand: audio with silence, video by repeating the last frame
    tail = signal[:, -1:].expand(-1, length - 2, *shape[2:]) if name == "video" else torch.full((1, length - 2), 0.5)
    padded = torch.cat([signal, tail], dim=1)
    chunks = padded.reshape(1, 3, length, *shape[2:]).transpose(0, 1)
    assert torch.equal(chunks_of(signal, model.kind, length), chunks)
    expected = _reference(model.tokenizer, chunks).transpose(0, 1).reshape(1, 3 * length, *shape[2:])[:, : shape[1]]
    decoded = fsq.decode(bundles[name], tmp_path / "codes.npz", out=tmp_path / "out.npy")
    assert decoded.signal.shape == shape and torch.equal(decoded.signal, expected)
    assert decoded.rate == RATES[name] and decoded.real_time_factor > 0
    assert torch.equal(torch.from_numpy(np.load(tmp_path / "out.npy")), expected.clamp(0, 1))


def test_image_files_round_trip_and_the_png_is_the_reconstruction(bundles, tmp_path):
    from PIL import Image

    pixels = torch.randint(0, 256, (8, 8, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    Image.fromarray(pixels.numpy()).save(tmp_path / "in.png")
    assert main(["encode", str(bundles["image"]), str(tmp_path / "in.png"), "--out", str(tmp_path / "c.npz")]) == 0
    h = read_codes(tmp_path / "c.npz").header
    assert h["bitrate_unit"] == "bits/image" and h["bitrate"] == pytest.approx(16 * math.log2(1000))
    assert h["rate"] is None and h["chunks"] == 1 and h["signal_shape"] == [3, 8, 8]
    assert main(["decode", str(bundles["image"]), str(tmp_path / "c.npz"), "--out", str(tmp_path / "out.png")]) == 0
    model = Tokenizer.from_pretrained(bundles["image"])
    expected = _reference(model, pixels.permute(2, 0, 1)[None])[0]
    written = torch.from_numpy(np.array(Image.open(tmp_path / "out.png"))).permute(2, 0, 1)
    assert torch.equal(written, expected.clamp(0, 1).mul(255).round().to(torch.uint8))


def test_wav_through_the_cli_prints_the_bitrate_and_real_time_factor(bundles, tmp_path, capsys):
    audio = 0.5 + 0.3 * torch.sin(torch.arange(100) / 5.0)[None]
    write_wav(tmp_path / "in.wav", audio, 8000)
    bundle = str(bundles["audio"])
    assert main(["encode", bundle, str(tmp_path / "in.wav"), "--out", str(tmp_path / "c.npz")]) == 0
    out = capsys.readouterr().out
    assert (
        "audio 1x100 at 8000 Hz" in out and "19.93 kbit/s" in out
    )  # 8 tokens per 32 samples at 8 kHz, log2(1000) bits each and "real-time factor" in out
    assert main(["decode", bundle, str(tmp_path / "c.npz"), "--out", str(tmp_path / "out.wav")]) == 0
    assert "real-time factor" in capsys.readouterr().out
    decoded, rate = read_wav(tmp_path / "out.wav")
    assert rate == 8000 and decoded.shape == (1, 100)
    signal, _ = read_wav(tmp_path / "in.wav")
    chunks = chunks_of(signal, open_model(bundle).kind, 32)
    expected = _reference(Tokenizer.from_pretrained(bundle), chunks).transpose(0, 1).reshape(1, -1)[:, :100]
    assert (decoded - expected.clamp(0, 1)).abs().max() <= 1 / 32767  # 16-bit PCM of the reconstruction
    # another rate: refused, or resampled when asked
    write_wav(tmp_path / "fast.wav", audio, 16000)
    assert main(["encode", bundle, str(tmp_path / "fast.wav"), "--out", str(tmp_path / "f.npz")]) == 2
    assert "at 16000 Hz, but" in capsys.readouterr().err
    assert main(["encode", bundle, str(tmp_path / "fast.wav"), "--out", str(tmp_path / "f.npz"), "--resample"]) == 0
    assert read_codes(tmp_path / "f.npz").header["signal_shape"] == [1, 50]


def test_gif_clips_round_trip_through_pillow(bundles, tmp_path):
    clip = torch.randint(0, 256, (1, 7, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    from fsq.data.media import read_signal, write_signal

    write_signal(tmp_path / "clip.gif", clip.float() / 255, open_model(bundles["video"]).kind, 10.0)
    back, rate = read_signal(tmp_path / "clip.gif", open_model(bundles["video"]).kind, 1)
    assert torch.equal(back, clip) and rate == pytest.approx(10.0)  # grey frames are exact in a GIF
    fsq.encode(bundles["video"], tmp_path / "clip.gif", out=tmp_path / "c.npz")
    decoded = fsq.decode(bundles["video"], tmp_path / "c.npz", out=tmp_path / "out.gif")
    assert decoded.signal.shape == (1, 7, 8, 8) and (tmp_path / "out.gif").is_file()


def test_fingerprint_is_the_weights_and_spec(bundles, tmp_path):
    model = Tokenizer.from_pretrained(bundles["audio"])
    model.save_pretrained(tmp_path / "copy")
    assert model_fingerprint(Tokenizer.from_pretrained(tmp_path / "copy")) == model_fingerprint(model)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-6
    assert model_fingerprint(model) != model_fingerprint(Tokenizer.from_pretrained(tmp_path / "copy"))


def test_video_files_are_read_whole_and_written_as_mp4(bundles, tmp_path):
    pytest.importorskip("av")  # the video extra
    from fsq.data.video_files import probe, read_window, write_video

    clip = torch.randint(0, 256, (1, 9, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    write_video(tmp_path / "clip.mkv", clip, 10.0, codec="ffv1")
    model = open_model(bundles["video"])
    from_file = fsq.encode(model, tmp_path / "clip.mkv")
    frames = read_window(tmp_path / "clip.mkv", 0, 9, channels=1)
    assert np.array_equal(from_file.codes.codes, fsq.encode(model, frames).codes.codes)
    assert from_file.codes.header["rate"] == pytest.approx(10.0) and from_file.codes.header["signal_shape"] == [
        1,
        9,
        8,
        8,
    ]
    fsq.decode(model, from_file, out=tmp_path / "out.mp4")
    info = probe(tmp_path / "out.mp4")
    assert info.frames == 9 and info.rate == pytest.approx(10.0) and (info.width, info.height) == (8, 8)
    # a variable frame rate: refused without a rate, retimed to the one given
    times = [0.0, 0.1, 0.15, 0.4, 0.5, 0.6, 0.9, 1.0, 1.05]
    write_video(tmp_path / "vfr.mkv", clip, 10.0, codec="ffv1", times=times)
    with pytest.raises(ValueError, match="variable frame rate.*--rate"):
        fsq.encode(model, tmp_path / "vfr.mkv")
    retimed = fsq.encode(model, tmp_path / "vfr.mkv", rate=10.0).codes.header
    assert retimed["rate"] == 10.0 and retimed["signal_shape"][1] == probe(tmp_path / "vfr.mkv").timeline(10.0).shape[0]


def test_a_causal_video_model_encodes_an_image_file_as_a_one_frame_video(bundles, tmp_path, capsys):
    """MAGVIT-v2's joint image-video tokenizer through the CLI: an image is one chunk of one frame (no padding to
    the model's 5 frames), its codes are the first latent frame of any clip that starts with it, and it decodes
    to a .png (to .npy as a one-frame video)."""
    from PIL import Image

    bundle = str(bundles["video"])
    frame = torch.randint(0, 256, (8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    Image.fromarray(frame.numpy()).save(tmp_path / "in.png")
    capsys.readouterr()
    assert main(["encode", bundle, str(tmp_path / "in.png"), "--out", str(tmp_path / "c.npz")]) == 0
    assert f"{16 * math.log2(1000):.6g} bits (an image as a one-frame video)" in capsys.readouterr().out
    codes = read_codes(tmp_path / "c.npz")
    h = codes.header
    assert h["chunks"] == 1 and h["chunk_shape"] == [1, 8, 8] and h["grid_shape"] == [1, 4, 4]
    assert h["signal_shape"] == [1, 1, 8, 8] and codes.codes.shape == (1, 1, 4, 4)
    assert h["bits"] == pytest.approx(16 * math.log2(1000))  # one latent frame, not the clip's two
    model = Tokenizer.from_pretrained(bundle)
    rest = torch.randint(0, 256, (1, 4, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    clip = torch.cat([frame[None, None], rest], dim=1)  # (C, 5, H, W) starting with the image
    with torch.no_grad():
        assert torch.equal(
            torch.from_numpy(codes.codes.astype(np.int64)), model.tokenize(to_unit(frame[None, None, None]))
        )
        assert torch.equal(model.tokenize(to_unit(clip[None]))[:, :1], torch.from_numpy(codes.codes.astype(np.int64)))
    assert main(["decode", bundle, str(tmp_path / "c.npz"), "--out", str(tmp_path / "out.png")]) == 0
    assert "out.png: image 1x8x8 (a one-frame video)" in capsys.readouterr().out
    expected = _reference(model, frame[None, None, None])[0, :, 0]  # (1, 8, 8)
    written = torch.from_numpy(np.array(Image.open(tmp_path / "out.png")))
    assert torch.equal(written, expected[0].clamp(0, 1).mul(255).round().to(torch.uint8))
    decoded = fsq.decode(bundle, tmp_path / "c.npz", out=tmp_path / "out.npy")
    assert decoded.signal.shape == (1, 1, 8, 8)
    # a clip of several frames decodes to a video file, not an image; a clip the model cannot take whole is padded
    clip3 = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    fsq.encode(bundle, clip3.numpy(), out=tmp_path / "c3.npz")
    assert read_codes(tmp_path / "c3.npz").header["chunk_shape"] == [5, 8, 8]
    capsys.readouterr()
    assert main(["decode", bundle, str(tmp_path / "c3.npz"), "--out", str(tmp_path / "bad.png")]) == 2
    assert "an image file holds one frame" in capsys.readouterr().err and not (tmp_path / "bad.png").exists()


def test_a_non_causal_model_does_not_take_shorter_chunks(tmp_path):
    """Only causal video models take a shorter clip whole: codes claiming another chunk shape are refused."""
    from fsq.inference.codec import chunk_length

    torch.manual_seed(0)
    spec = TokenizerSpec(dims=3, shape=[4, 8, 8], downsample=[[2, 2, 2]], **SMALL)
    path = tmp_path / "plain"
    Tokenizer(spec).eval().save_pretrained(
        path, metadata={"config": {"stage": "tokenizer", "data": {"source": "blobs"}}}
    )
    model = open_model(path)
    assert chunk_length(model, 1) == 4 and chunk_length(model, 3) == 4
