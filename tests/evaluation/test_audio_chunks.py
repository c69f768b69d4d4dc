"""Audio evaluation on crops longer than the model (through it in chunks, as ``fsq encode`` sends a signal) and at
each depth of a residual quantizer; the settings that ask for them are checked at load."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.data.signals import AUDIO
from fsq.evaluation.audio_chunks import DepthScores, evaluation_config, from_chunks, through_chunks, to_chunks
from fsq.inference.codec import CodecModel, decode, encode, model_fingerprint
from fsq.models.autoencoder import Tokenizer, TokenizerSpec

ROOT = Path(__file__).parents[2]
SPEECH = ROOT / "configs" / "tokenizer" / "fsq_speech.yaml"
TONES = ROOT / "configs" / "tokenizer" / "fsq_tones_1d.yaml"


def codec(length: int = 400, **quantizer: object) -> Tokenizer:
    torch.manual_seed(0)
    spec = TokenizerSpec(
        dims=1,
        shape=[length],
        filters=4,
        channel_multipliers=[1, 2, 4],
        downsample=[[4], [5]],
        architecture="seanet",
        quantizer=quantizer or {"kind": "residual_fsq", "levels": [5, 5, 5], "num_stages": 2},
    )
    return Tokenizer(spec).eval()


@pytest.mark.parametrize("samples", [1200, 1000, 400, 250])
def test_chunks_round_trip_clip_by_clip_padded_with_silence(samples):
    x = torch.rand(3, 1, samples)
    chunks = to_chunks(x, 400)
    n = math.ceil(samples / 400)
    assert chunks.shape == (3 * n, 1, 400)
    padded = torch.cat([x, torch.full((3, 1, n * 400 - samples), 0.5)], dim=-1)  # silence after each clip
    for b in range(3):
        for k in range(n):  # clip b's k-th chunk
            assert torch.equal(chunks[b * n + k], padded[b, :, k * 400 : (k + 1) * 400])
    assert torch.equal(from_chunks(chunks, 3, samples), x)


def test_long_clips_reconstruct_as_fsq_encode_and_decode_do():
    model = codec()
    x = torch.rand(2, 1, 1000)  # 2.5 chunks of the model's 400 samples
    with torch.no_grad():
        reconstruction, out = through_chunks(model, x)
    assert reconstruction.shape == x.shape and out.indices.shape == (6, 20, 2)
    cm = CodecModel(model, AUDIO, 16000.0, "test", model_fingerprint(model), torch.device("cpu"))
    for b in range(2):  # each clip alone through the codec: the same codes and the same decoded samples
        codes = encode(cm, x[b], rate=16000)
        assert torch.equal(torch.from_numpy(codes.codes.codes).long(), out.indices[3 * b : 3 * b + 3])
        torch.testing.assert_close(decode(cm, codes.codes).signal, reconstruction[b], rtol=1e-5, atol=1e-6)
    same, _ = through_chunks(model, x[..., :400])  # a clip of the model's length: the model itself
    torch.testing.assert_close(same, model(x[..., :400])[0])


def test_depth_scores_decode_the_first_stages_at_their_share_of_the_bits():
    model = codec()
    x = torch.rand(2, 1, 800)
    with torch.no_grad():
        full, out = through_chunks(model, x)
        scores = DepthScores(model, [1, 2], 16000, 800, speech_quality=False)
        scores.update(x, out.indices)
        first = from_chunks(model.decode_indices(out.indices[..., :1]), 2, 800)
    rows = scores.summary(bits_per_second=1000.0)
    assert [r["depth"] for r in rows] == [1, 2] and [r["bits_per_second"] for r in rows] == [500.0, 1000.0]
    from fsq.metrics.si_snr import si_snr

    expected = [si_snr(x[:, 0], first.clamp(0, 1)[:, 0]).mean().item(), si_snr(x[:, 0], full.clamp(0, 1)[:, 0]).mean()]
    assert rows[0]["si_snr_db"] == pytest.approx(expected[0], abs=1e-4)
    assert rows[1]["si_snr_db"] == pytest.approx(float(expected[1]), abs=1e-4)
    assert rows[0]["si_snr_db"] != rows[1]["si_snr_db"]  # depth 1 leaves out the second stage's code
    with pytest.raises(ValueError, match="residual quantizer with at least 3 stages"):
        DepthScores(model, [3], 16000, 800)
    with pytest.raises(ValueError, match="residual quantizer"):
        DepthScores(codec(kind="fsq", levels=[5, 5, 5]), [1], 16000, 800)


@pytest.mark.parametrize(
    "quantizer",
    [
        {"kind": "residual_fsq", "levels": [5, 5, 5], "num_stages": 2},
        {"kind": "residual_vq", "codebook_size": 16, "dim": 16, "num_stages": 2},
    ],
)
def test_unquantized_scores_decode_the_latent_the_stages_approximate(quantizer):
    """With ``unquantized`` the chunks' encoder output goes through the quantizer's ``unquantized`` and the decoder,
    scored like a depth; it is not any depth's reconstruction (rounding costs something) and the depths are
    unchanged."""
    from fsq.metrics.si_snr import si_snr

    model = codec(**quantizer)
    x = torch.rand(2, 1, 800)
    with torch.no_grad():
        _, out = through_chunks(model, x)
        plain = DepthScores(model, [1], 16000, 800, speech_quality=False)
        scores = DepthScores(model, [1], 16000, 800, speech_quality=False, unquantized=True)
        plain.update(x, out.indices)
        scores.update(x, out.indices)
        latent = model.encoder(to_chunks(x, 400) * 2 - 1)
        ceiling = from_chunks(model.decode(model.quantizer.unquantized(latent)), 2, 800).clamp(0, 1)
    assert scores.summary(1000.0) == plain.summary(1000.0)
    row = scores.unquantized_summary()
    assert row is not None and plain.unquantized_summary() is None
    assert row["si_snr_db"] == pytest.approx(si_snr(x[:, 0], ceiling[:, 0]).mean().item(), abs=1e-4)
    assert row["si_snr_db"] != scores.summary(1000.0)[0]["si_snr_db"]
    with pytest.raises(ValueError, match="eval.unquantized .* FSQ"):
        DepthScores(codec(kind="fsq", levels=[5, 5, 5]), [], 16000, 800, unquantized=True)


def test_eval_length_and_depths_are_checked_at_load():
    cfg = load_config(TokenizerExperiment, [SPEECH])
    assert cfg.eval.length == 24000 and cfg.eval.depths == [1]
    assert evaluation_config(cfg).data.length == 24000 and cfg.data.length == 4000
    plain = load_config(TokenizerExperiment, [SPEECH], ["eval.length=null"])
    assert evaluation_config(plain) is plain
    with pytest.raises(ConfigError, match="eval.depths=\\[3\\].*residual_fsq.*with 2 stages"):
        load_config(TokenizerExperiment, [SPEECH], ["eval.depths=[3]"])
    with pytest.raises(ConfigError, match="eval.depths=\\[1\\].*quantizer.kind=fsq"):
        load_config(TokenizerExperiment, [TONES], ["eval.depths=[1]"])
    assert load_config(TokenizerExperiment, [SPEECH], ["eval.unquantized=true"]).eval.unquantized
    with pytest.raises(ConfigError, match="eval.unquantized .* quantizer.kind=fsq and model.dims=1"):
        load_config(TokenizerExperiment, [TONES], ["eval.unquantized=true"])
    with pytest.raises(ConfigError, match="eval.length=16000 is an audio evaluation crop"):
        load_config(TokenizerExperiment, [], ["eval.length=16000"])


def test_codec_anchor_lists_are_checked_against_the_signal_kind_at_load():
    """Image anchors on an audio tokenizer, audio anchors on an image one, or an anchor named twice: a clear error when
    the config loads, before any training (the evaluation would only refuse them at its end)."""
    with pytest.raises(ConfigError, match=r"eval.image_anchors=\['naive'\] are image codecs: .*model.dims=2, got 1"):
        load_config(TokenizerExperiment, [SPEECH], ["eval.image_anchors=[naive]"])
    with pytest.raises(ConfigError, match=r"eval.audio_anchors=\['opus-6k'\] are audio codecs: .*dims=1, got 2"):
        load_config(TokenizerExperiment, [], ["eval.audio_anchors=[opus-6k]"])
    with pytest.raises(ConfigError, match="eval.image_anchors lists an anchor twice"):
        load_config(TokenizerExperiment, [], ["eval.image_anchors=[jpeg,webp,jpeg]"])
    images = load_config(TokenizerExperiment, [], ["eval.image_anchors=[naive,webp]"])
    assert images.eval.image_anchors == ["naive", "webp"]
    audio = load_config(TokenizerExperiment, [SPEECH], ["eval.audio_anchors=[opus-6k]"])
    assert audio.eval.audio_anchors == ["opus-6k"]
