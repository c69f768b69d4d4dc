"""Codec2 and Opus through their command-line tools: a voiced synthetic clip round-trips through every mode with
its spectrum kept, time-aligned, at its nominal bitrate (tolerances stated per test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq.anchors.alignment import best_lag, calibration_signal, measure_delay
from fsq.anchors.audio import CODEC2_MODES, aligned, anchor, missing, run_anchor
from fsq.anchors.ogg import opus_payload_bytes
from fsq.metrics.spectral import multi_resolution_stft_distance

NAMES = [f"codec2-{m}" for m in CODEC2_MODES] + ["opus-6k"]
RATE = 16000


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return multi_resolution_stft_distance(reference, estimate).spectral_convergence.item()


def _skip_without(name: str) -> None:
    reason = missing(anchor(name))
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return calibration_signal(RATE, seconds=2.0, seed=7)  # another seed than the delay's calibration


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_keeps_the_spectrum_in_time_at_the_nominal_rate(name, clip):
    _skip_without(name)
    out = run_anchor(name, clip, RATE)
    assert out.decoded.shape == clip.shape and np.isfinite(out.decoded).all()
    # quality, "spectral SNR": -20 log10 of the spectral convergence ||Y - X|| / ||Y|| of the STFT magnitudes (a
    # vocoder's phases differ, so the waveform SNR says nothing); measured 3.3 (700C) to 5.9 dB (3200), 11.9 (Opus):
    # above 2 dB, and nearer the input than another clip of the same kind (other gates and pitch) is (2.4 dB)
    ref = torch.from_numpy(clip)[None]
    unrelated = torch.from_numpy(calibration_signal(RATE, seconds=2.0, seed=99))[None]
    spectral_snr = -20 * np.log10(spectral_convergence(ref, torch.from_numpy(out.decoded)[None]))
    assert spectral_snr > max(2.0, -20 * np.log10(spectral_convergence(ref, unrelated)))
    # alignment: no delay left (a vocoder's to within 5 ms; Opus keeps the waveform, so to the sample and SNR > 3 dB)
    left = measure_delay(clip, np.concatenate([out.decoded, np.zeros(RATE // 4)]), RATE)
    if name.startswith("opus"):
        lag, strength = best_lag(clip, out.decoded, 100)
        assert lag == 0 and strength > 0.8 and left == 0
        snr = 10 * np.log10(np.sum(clip**2) / np.sum((clip - out.decoded) ** 2))
        assert snr > 3.0
    else:
        assert abs(left) <= 0.005 * RATE, f"{name}: {left} samples of delay left"
    # bitrate: Codec2's frames are padded to whole bytes (at most 7 bits a frame) and the clip to whole frames plus
    # the delay; Opus is VBR (its packets within 30% of the target on this half-silent clip)
    nominal = anchor(name).nominal_bps
    if name.startswith("codec2"):
        frame_seconds = CODEC2_MODES[name[7:]][1] / 1000
        assert nominal <= out.payload_bits_per_second <= nominal + 7 / frame_seconds + 1
        assert out.bits_per_second == pytest.approx(out.bits / 2.0)
    else:
        assert abs(out.payload_bits_per_second - nominal) <= 0.3 * nominal
        assert out.bits_per_second > out.payload_bits_per_second  # the Ogg container's pages and headers


def test_the_delay_measure_finds_a_known_shift():
    x = calibration_signal(RATE, seconds=1.5, seed=3)
    assert measure_delay(x, np.concatenate([np.zeros(123), x]), RATE) == 123
    assert measure_delay(np.concatenate([np.zeros(40), x]), x, RATE) == -40


def test_alignment_shifts_either_way_and_pads_with_silence():
    decoded = np.arange(1.0, 11.0)
    assert aligned(decoded, 3, 5).tolist() == [4, 5, 6, 7, 8]
    assert aligned(decoded, -2, 5).tolist() == [0, 0, 1, 2, 3]
    assert aligned(decoded, 8, 5).tolist() == [9, 10, 0, 0, 0]


def test_ogg_payload_counts_packets_after_the_two_headers():
    def page(packets: list[bytes]) -> bytes:
        lacing = b""
        for p in packets:
            lacing += bytes([255] * (len(p) // 255) + [len(p) % 255])
        return b"OggS" + bytes(22) + bytes([len(lacing)]) + lacing + b"".join(packets)

    data = page([b"h" * 19]) + page([b"t" * 300]) + page([b"a" * 10, b"b" * 600])
    assert opus_payload_bytes(data) == 610
    with pytest.raises(ValueError, match="cut short"):
        opus_payload_bytes(data[:-5])
    with pytest.raises(ValueError, match="not an Ogg page"):
        opus_payload_bytes(b"RIFF" + data)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="unknown audio anchor 'codec2-999'.*codec2-700C"):
        anchor("codec2-999")
    with pytest.raises(ValueError, match="one mono clip"):
        run_anchor("opus-6k", np.zeros((2, 16000)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        run_anchor("opus-6k", np.full(16000, np.nan))
    with pytest.raises(ValueError, match="44100 Hz"):
        run_anchor("opus-6k", np.zeros(44100), 44100)
