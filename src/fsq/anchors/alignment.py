"""Time alignment of a codec's output with its input: lags by cross-correlation, and a codec's constant delay.

A waveform codec (Opus) keeps the waveform: the peak of the input/output cross-correlation gives its delay to the
sample. A parametric vocoder (Codec2) keeps the spectral envelope and pitch but not the phases, so its output's
waveform barely correlates with the input; the cross-correlation of the two spectrograms
still peaks at the delay, to within a few milliseconds. :func:`measure_delay` takes the lag of the log
spectrograms (1 ms hop, correlations summed over frequency: onsets and pitch glides both mark time), then the
waveform's lag near it when the waveforms correlate (normalised peak above 0.5), so it is exact for waveform codecs
and accurate to a few milliseconds for vocoders.
"""

from __future__ import annotations

import numpy as np


def calibration_signal(rate: int, seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Gated harmonic bursts (60-250 ms on, 60-250 ms off) whose pitch glides through 90-240 Hz: sharp onsets for
    the envelope, a voiced spectrum every speech codec models; peak 0.3, float64 ``(seconds * rate,)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 165 + 75 * np.sin(2 * np.pi * 0.23 * t) * np.sin(2 * np.pi * 0.61 * t + 1.0)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    harmonics = max(1, int(rate / 2 / 250))  # below Nyquist at the highest pitch
    x = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    gate = np.zeros_like(t)
    i = int(0.1 * rate)
    while i < len(t):
        on, off = (int(rng.uniform(0.06, 0.25) * rate) for _ in range(2))
        gate[i : i + on] = 1.0
        i += on + off
    return 0.3 * np.asarray(x) * gate / np.abs(x).max()


def log_spectrogram(x: np.ndarray, rate: int) -> np.ndarray:
    """Log STFT magnitudes ``(bins, frames)`` of ``x``: Hann window of about 32 ms (a power of two), hop 1 ms,
    frames centred on samples ``0, hop, 2 hop, ...``; magnitudes floored at 1e-3 before the log."""
    n = 1 << max(4, round(np.log2(0.032 * rate)))
    hop = max(1, rate // 1000)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (n // 2, n // 2)), n)[::hop] * np.hanning(n)
    return np.log(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-3).astype(np.float32)


def spectral_lag(reference: np.ndarray, other: np.ndarray, rate: int, max_lag: int) -> int:
    """The lag in samples (a multiple of the 1 ms hop) of ``other`` behind ``reference`` that maximises the summed
    cross-correlation over frequency bins of their mean-removed log spectrograms."""
    hop = max(1, rate // 1000)
    a, b = log_spectrogram(reference, rate), log_spectrogram(other, rate)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    lags, total = correlation_lags(a, b, max_lag // hop, sum_rows=True)
    return int(lags[int(np.argmax(total))]) * hop


def correlation_lags(
    reference: np.ndarray, other: np.ndarray, max_lag: int, sum_rows: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(lags, c)``: ``c[..., i] = sum_t reference[..., t] * other[..., t + lags[i]]`` for lags in
    ``[-max_lag, max_lag]``, along the last axis (FFT cross-correlation; the signals may differ in length);
    ``sum_rows`` sums the correlations of all rows (one inverse FFT)."""
    size = 1 << (reference.shape[-1] + other.shape[-1]).bit_length()
    spectrum = np.fft.rfft(other, size) * np.conj(np.fft.rfft(reference, size))
    if sum_rows:
        spectrum = spectrum.reshape(-1, spectrum.shape[-1]).sum(0)
    full = np.fft.irfft(spectrum, size)
    lags = np.arange(-max_lag, max_lag + 1)
    return lags, full[..., lags % size]


def best_lag(reference: np.ndarray, other: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The lag of ``other`` behind ``reference`` (positive: later) that maximises their cross-correlation, and
    that maximum normalised by both signals' energies (1 for a shifted copy)."""
    lags, c = correlation_lags(reference, other, max_lag)
    i = int(np.argmax(c))
    norm = float(np.sqrt(np.dot(reference, reference) * np.dot(other, other))) or 1.0
    return int(lags[i]), float(c[i] / norm)


def measure_delay(reference: np.ndarray, decoded: np.ndarray, rate: int, max_seconds: float = 0.1) -> int:
    """The delay in samples of ``decoded`` behind ``reference`` (within ``max_seconds`` either way): the log
    spectrograms' lag (1 ms steps), refined to the waveforms' lag within 2 ms of it when their normalised correlation
    there exceeds 0.5."""
    reference, decoded = np.asarray(reference, dtype=np.float64), np.asarray(decoded, dtype=np.float64)
    max_lag = int(max_seconds * rate)
    if len(reference) <= 2 * max_lag or len(decoded) <= 2 * max_lag:
        raise ValueError(
            f"measuring a delay of up to {max_seconds} s needs clips longer than twice that, got "
            f"{len(reference)} and {len(decoded)} samples at {rate} Hz"
        )
    coarse = spectral_lag(reference, decoded, rate, max_lag)
    near = int(0.002 * rate)
    shifted = np.roll(decoded, -coarse)
    fine, strength = best_lag(reference, shifted, near)
    return coarse + fine if strength > 0.5 else coarse
