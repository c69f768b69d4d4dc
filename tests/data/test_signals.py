"""Signals: kinds, the [0, 1] conversion, time crops and flips, rates, and the generated tones and blobs."""

from __future__ import annotations

import pytest
import torch

from fsq.data.loader import StepLoader
from fsq.data.resample import resample_time
from fsq.data.signals import (
    AUDIO,
    IMAGE,
    VIDEO,
    SignalItems,
    SignalTransform,
    check_rate,
    kind_of_dims,
    to_unit,
)
from fsq.data.synthetic_signals import blob_clip, generated_items, tone_clip
from fsq.data.transforms import item_generator


def test_kinds_name_their_axes():
    assert [kind_of_dims(d) for d in (1, 2, 3)] == [AUDIO, IMAGE, VIDEO]
    assert VIDEO.layout() == "(C, T, H, W)" and AUDIO.layout() == "(C, T)" and IMAGE.layout() == "(C, H, W)"
    assert AUDIO.timed and VIDEO.timed and not IMAGE.timed
    with pytest.raises(ValueError, match="no signal kind has 4 axes"):
        kind_of_dims(4)


def test_to_unit_is_the_image_path_for_uint8():
    x = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    assert torch.equal(to_unit(x), x.float().div_(255))
    audio = torch.rand(2, 1, 8)
    assert torch.equal(to_unit(audio), audio)
    with pytest.raises(ValueError, match="uint8 or floating point"):
        to_unit(torch.zeros(2, 3, dtype=torch.int64))


def test_time_crops_random_in_training_centred_otherwise():
    clip = torch.arange(20, dtype=torch.float32).view(1, 20)
    centre = SignalTransform("center", AUDIO, length=8)(clip)
    assert centre[0].tolist() == list(range(6, 14))
    crops = {int(SignalTransform("random", AUDIO, length=8)(clip, item_generator(0, 0, p))[0, 0]) for p in range(40)}
    assert len(crops) > 5 and min(crops) >= 0 and max(crops) <= 12  # starts anywhere in [0, 20 - 8]
    again = SignalTransform("random", AUDIO, length=8)(clip, item_generator(0, 0, 3))
    assert torch.equal(again, SignalTransform("random", AUDIO, length=8)(clip, item_generator(0, 0, 3)))


def _frequency(x: torch.Tensor) -> float:
    """The strongest frequency of a 1-channel clip, in cycles per sample."""
    spectrum = torch.fft.rfft((x[0] - x[0].mean()).double()).abs()
    return int(spectrum.argmax()) / x.shape[1]


def test_speed_perturbation_plays_audio_crops_faster_or_slower():
    """A tone played at speed s comes out at s times its frequency (pitch and tempo together), crops keep their
    length and range, the same generator gives the same crop, and evaluation crops are never perturbed."""
    n = 4000
    tone = 0.5 + 0.4 * torch.sin(2 * torch.pi * 0.01 * torch.arange(3 * n, dtype=torch.float64)).float()[None]
    for speed in (0.8, 1.25):
        out = SignalTransform("random", AUDIO, length=n, speed=(speed, speed))(tone, item_generator(0, 0, 1))
        assert out.shape == (1, n) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
        assert _frequency(out) == pytest.approx(0.01 * speed, rel=0.02)
    perturbed = SignalTransform("random", AUDIO, length=n, speed=(0.9, 1.1))
    frequencies = {round(_frequency(perturbed(tone, item_generator(0, 0, p))), 5) for p in range(12)}
    assert len(frequencies) > 3 and all(0.0089 <= f <= 0.0111 for f in frequencies)
    assert torch.equal(perturbed(tone, item_generator(0, 0, 5)), perturbed(tone, item_generator(0, 0, 5)))
    centre = SignalTransform("center", AUDIO, length=n, speed=(0.9, 1.1))(tone)
    assert torch.equal(centre, SignalTransform("center", AUDIO, length=n)(tone))
    # a clip too short for the drawn speed plays at the fastest it allows: its whole length, squeezed to n
    short = tone[:, : n + 100]
    fast = SignalTransform("random", AUDIO, length=n, speed=(1.5, 1.5))(short, item_generator(0, 0, 2))
    assert fast.shape == (1, n) and _frequency(fast) == pytest.approx(0.01 * (n + 100) / n, rel=0.02)
    with pytest.raises(ValueError, match="speed perturbation resamples audio crops"):
        SignalTransform("random", VIDEO, length=4, speed=(0.9, 1.1))
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        SignalTransform("random", AUDIO, length=4, speed=(1.1, 0.9))


def test_speed_perturbed_crops_do_not_ring_at_their_edges():
    """The resampler sees silence as zero and context beyond the window: silence stays exactly silent, and a tone's
    perturbed crop matches the tone sampled at the new speed up to its edges (without both, the first sample of a
    silent crop was 0.45: a click at every crop's start)."""
    n = 4000
    silence = torch.full((1, 3 * n), 0.5)
    for speed in (0.9, 1.1):
        transform = SignalTransform("random", AUDIO, length=n, speed=(speed, speed))
        assert torch.equal(transform(silence, item_generator(0, 0, 1)), torch.full((1, n), 0.5))
        t = torch.arange(3 * n, dtype=torch.float64)
        tone = (0.5 + 0.4 * torch.sin(2 * torch.pi * 0.01 * t)).float()[None]
        out = transform(tone, item_generator(0, 0, 1))[0].double()
        generator = item_generator(0, 0, 1)  # the transform's two draws: the speed (fixed here), the start
        torch.rand((), generator=generator, dtype=torch.float64)
        span = round(n * speed)
        start = int(torch.randint(3 * n - span + 1, (1,), generator=generator))
        expected = 0.5 + 0.4 * torch.sin(
            2 * torch.pi * 0.01 * (start + torch.arange(n, dtype=torch.float64) * span / n)
        )
        error = (out - expected).abs()
        assert error[:32].max() < 0.01 and error[-32:].max() < 0.01 and error.max() < 0.01


def test_video_flips_horizontally_audio_never():
    video = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 2, 3, 4)
    outs = [SignalTransform("random", VIDEO)(video, item_generator(1, 0, p)) for p in range(20)]
    assert any(torch.equal(o, video.flip(-1)) for o in outs) and any(torch.equal(o, video) for o in outs)


def test_a_time_crop_longer_than_the_clip_names_both():
    with pytest.raises(ValueError, match=r"tones \(test\): a time crop of 64 is longer than the clip .*\(32,\)"):
        SignalTransform("center", AUDIO, length=64).check("tones (test)", (32,))
    with pytest.raises(ValueError, match="time crop of 64 is longer"):
        SignalTransform("center", AUDIO, length=64)(torch.zeros(1, 32))
    with pytest.raises(ValueError, match="needs a signal with a time axis"):
        SignalTransform("center", IMAGE, length=4)


def test_rate_mismatch_is_an_error():
    check_rate("tones", AUDIO, 8000.0, None)
    check_rate("tones", AUDIO, 8000.0, 8000)
    with pytest.raises(ValueError, match=r"sample-rate mismatch: 'tones' gives audio at 8000 Hz but 16000 Hz"):
        check_rate("tones", AUDIO, 8000.0, 16000)
    with pytest.raises(ValueError, match="images, which have no rate"):
        check_rate("mnist", IMAGE, None, 10)


def test_resample_time():
    audio = torch.rand(1, 800)
    assert resample_time(audio, 8000, 16000).shape == (1, 1600)
    video = torch.randint(0, 255, (3, 10, 4, 4), dtype=torch.uint8)
    out = resample_time(video, 10, 5)
    assert out.shape == (3, 5, 4, 4) and out.dtype == torch.uint8


def test_generated_sources_are_deterministic_and_shaped():
    tones = generated_items("tones", "train", seed=0, count=6)
    assert tones.clips.shape == (6, 1, 1024) and tones.kind is AUDIO and tones.rate == 8000
    assert 0.09 < float(tones.clips.min()) and float(tones.clips.max()) < 0.91
    assert torch.equal(tones.clips[3], tone_clip(0, 3))  # clip i depends on (seed, i) alone
    assert not torch.equal(generated_items("tones", "test", seed=0, count=1).clips[0], tones.clips[0])
    blobs = generated_items("blobs", "train", seed=0, count=3, image_size=12, channels=3)
    assert blobs.clips.shape == (3, 3, 17, 12, 12) and blobs.clips.dtype == torch.uint8 and blobs.rate == 10
    assert torch.equal(blobs.clips[1], blob_clip(0, 1, size=12, channels=3))
    assert (blobs.clips[:, :, 1:] != blobs.clips[:, :, :-1]).any()  # the blobs move
    with pytest.raises(ValueError, match="unknown generated signal source"):
        generated_items("noise", "train", seed=0)
    with pytest.raises(ValueError, match="mono"):
        generated_items("tones", "train", seed=0, channels=3)


def test_signal_items_refuse_the_wrong_rank():
    with pytest.raises(ValueError, match=r"video clips must be \(N, C, time, height, width\), got \(2, 1, 8\)"):
        SignalItems(torch.zeros(2, 1, 8), VIDEO, source="x", split="train")


@pytest.mark.parametrize("workers", [0, 2])
def test_step_loader_serves_signal_crops_by_step(workers):
    items = generated_items("blobs", "train", seed=0, count=12, image_size=8)
    transform = SignalTransform("random", VIDEO, length=5)
    loader = StepLoader(items, transform, global_batch=4, seed=1, stop=3, workers=workers)
    batches = [loader.batch(s)[0] for s in range(3)]
    assert batches[0].shape == (4, 1, 5, 8, 8) and batches[0].dtype == torch.uint8
    fresh = StepLoader(items, transform, global_batch=4, seed=1, stop=3, workers=0)
    assert torch.equal(fresh.batch(2)[0], batches[2])  # step-addressed: a resumed run sees the same batch
    loader.close()
