"""The audio metrics of a held-out evaluation, accumulated clip by clip and summed across ranks: SI-SNR,
multi-resolution STFT distance, multi-scale mel distance, and wideband PESQ and STOI where they can run; and the same
metrics for the classical anchors (Codec2, Opus) run on the same clips.

Clips arrive as the project's audio, float ``[0, 1]`` with silence at ``0.5``, ``(B, C, T)``, and are turned into
``[-1, 1]`` waveforms (``2 x - 1``) before any metric. Each metric is averaged over clips (and channels); a metric that
cannot run (a missing package, a sample rate PESQ does not take, clips shorter than every FFT size) is left out and
its reason written under ``audio_metrics_skipped``. Settings that depend on the clip length (the STFT resolutions and
mel windows that fit) are written beside the values, so numbers from different clip lengths are never confused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fsq import distributed
from fsq.metrics import speech_quality as quality_metrics
from fsq.metrics.si_snr import si_snr
from fsq.metrics.spectral import (
    MEL_BANDS,
    MEL_WINDOWS,
    STFT_FFT_SIZES,
    STFT_HOP_SIZES,
    STFT_WIN_LENGTHS,
    multi_resolution_stft_distance,
    multi_scale_mel_distance,
    to_waveform,
)

KEYS = (
    "si_snr_db",
    "stft_distance",
    "stft_spectral_convergence",
    "stft_log_magnitude",
    "mel_distance",
    "pesq_wb",
    "stoi",
)


class AudioScores:
    """Sums and counts of each audio metric over clips of ``clip_samples`` samples at ``rate`` Hz (None: unknown,
    which leaves out the mel distance, PESQ and STOI); ``speech_quality=False`` leaves out PESQ and STOI."""

    def __init__(self, rate: float | None, clip_samples: int, speech_quality: bool = True, device: Any = "cpu"):
        self.rate = rate
        self.skipped: dict[str, str] = {}
        self.stft = [r for r in zip(STFT_FFT_SIZES, STFT_HOP_SIZES, STFT_WIN_LENGTHS) if r[0] // 2 < clip_samples]
        if not self.stft:
            self.skipped["stft_distance"] = f"clips of {clip_samples} samples are shorter than every FFT size"
        self.mel = [(w, m) for w, m in zip(MEL_WINDOWS, MEL_BANDS) if w // 2 < clip_samples]
        if rate is None:
            self.skipped["mel_distance"] = "the source has no sample rate"
            self.mel = []
        elif not self.mel:
            self.skipped["mel_distance"] = f"clips of {clip_samples} samples are shorter than every mel window"
        self.quality: list[str] = []
        for metric, key in (("pesq", "pesq_wb"), ("stoi", "stoi")):
            if not speech_quality:
                self.skipped[key] = "eval.speech_quality is false"
            elif rate is None:
                self.skipped[key] = "the source has no sample rate"
            else:
                reason = quality_metrics.unavailable(metric, rate)
                if reason:
                    self.skipped[key] = reason
                else:
                    self.quality.append(key)
        # per key: sum, clips scored, clips that could not be scored (PESQ found no speech; too short for STOI)
        self.sums = torch.zeros(3 * len(KEYS), dtype=torch.float64, device=device)

    def _add(self, key: str, values: torch.Tensor | Sequence[float]) -> None:
        values = torch.as_tensor(values, dtype=torch.float64).flatten()
        i = 3 * KEYS.index(key)
        self.sums[i] += values.sum().to(self.sums.device)
        self.sums[i + 1] += values.numel()

    @torch.no_grad()
    def update(self, reference: torch.Tensor, estimate: torch.Tensor) -> None:
        """Add clips ``(B, C, T)`` in ``[0, 1]`` (silence ``0.5``): each metric's per-clip value, averaged over
        channels."""
        if reference.shape != estimate.shape or reference.ndim != 3:
            raise ValueError(
                f"audio scores take (B, C, T) clips of one shape, got {tuple(reference.shape)} and "
                f"{tuple(estimate.shape)}"
            )
        ref, est = to_waveform(reference.double()), to_waveform(estimate.double())
        self._add("si_snr_db", si_snr(ref, est).mean(1))
        if self.stft:
            ffts, hops, wins = zip(*self.stft)
            d = multi_resolution_stft_distance(ref.float(), est.float(), ffts, hops, wins)
            self._add("stft_distance", d.total.mean(1))
            self._add("stft_spectral_convergence", d.spectral_convergence.mean(1))
            self._add("stft_log_magnitude", d.log_magnitude.mean(1))
        if self.mel and self.rate is not None:
            windows, bands = zip(*self.mel)
            self._add(
                "mel_distance", multi_scale_mel_distance(ref.float(), est.float(), self.rate, windows, bands).mean(1)
            )
        if self.quality:
            self._speech_quality(ref.cpu().numpy(), est.cpu().numpy())

    def _speech_quality(self, ref: np.ndarray, est: np.ndarray) -> None:
        assert self.rate is not None
        rate = int(self.rate)
        for key in self.quality:
            score = quality_metrics.pesq_wb if key == "pesq_wb" else quality_metrics.stoi
            for b in range(ref.shape[0]):
                values = []
                for c in range(ref.shape[1]):
                    try:
                        values.append(score(ref[b, c], est[b, c], rate))
                    except ValueError:  # no speech, too short: counted as unscored
                        pass
                if values:
                    self._add(key, [float(np.mean(values))])
                else:
                    self.sums[3 * KEYS.index(key) + 2] += 1

    def all_reduce(self) -> None:
        distributed.all_reduce_sum(self.sums)

    def summary(self) -> dict[str, Any]:
        """Each metric's mean over the clips it scored (a metric without any is left out), the settings that
        depend on the clip length, and the reasons for what was skipped."""
        out: dict[str, Any] = {}
        for i, key in enumerate(KEYS):
            total, count, unscored = self.sums[3 * i : 3 * i + 3].tolist()
            if count:
                out[key] = total / count
            if unscored:
                out[f"{key}_unscored_clips"] = int(unscored)
        for key in self.quality:
            if not self.sums[3 * KEYS.index(key) + 1].item():
                self.skipped.setdefault(key, "no clip could be scored (no speech found, or clips too short)")
        out["audio_metric_settings"] = {
            "stft_resolutions": [list(r) for r in self.stft],
            "mel_windows_and_bands": [list(m) for m in self.mel],
            "waveform": "2 x - 1 of the [0, 1] audio",
        }
        if self.skipped:
            out["audio_metrics_skipped"] = dict(self.skipped)
        return out


class AnchorScores:
    """The audio metrics of classical codecs (``fsq.anchors.audio`` names) run on the same clips: per anchor,
    an :class:`AudioScores` and its mean bits per second (file and codec payload)."""

    def __init__(
        self,
        names: Sequence[str],
        rate: float | None,
        clip_samples: int,
        speech_quality: bool = True,
        device: Any = "cpu",
    ):
        from fsq.anchors.audio import anchor, missing

        if names and rate is None:
            raise ValueError("eval.audio_anchors needs a source with a sample rate")
        self.anchors = [anchor(n) for n in names]  # unknown names: a ValueError listing the known ones
        for a in self.anchors:
            reason = missing(a)
            if reason:
                raise RuntimeError(f"eval.audio_anchors names {a.name}, which cannot run here: {reason}")
        self.rate = int(rate) if rate is not None else 0
        self.scores = {a.name: AudioScores(rate, clip_samples, speech_quality, device) for a in self.anchors}
        # per anchor: file bits/s, codec payload bits/s, clips (on the device: all-reduced with the other sums)
        self.bits = torch.zeros(len(self.anchors), 3, dtype=torch.float64, device=device)

    def update(self, reference: torch.Tensor) -> None:
        """Run every anchor on every clip and channel of ``reference`` ``(B, C, T)`` in ``[0, 1]``."""
        from fsq.anchors.audio import run_anchor

        clips = to_waveform(reference.double()).cpu().numpy()
        for i, a in enumerate(self.anchors):
            decoded = np.zeros_like(clips)
            for b in range(clips.shape[0]):
                for c in range(clips.shape[1]):
                    result = run_anchor(a, clips[b, c], self.rate)
                    decoded[b, c] = result.decoded
                    self.bits[i] += torch.tensor(
                        [result.bits_per_second, result.payload_bits_per_second, 1.0], dtype=torch.float64
                    ).to(self.bits.device)
            estimate = torch.from_numpy(np.clip((decoded + 1) / 2, 0.0, 1.0))
            self.scores[a.name].update(reference.double().cpu(), estimate)

    def all_reduce(self) -> None:
        distributed.all_reduce_sum(self.bits)
        for scores in self.scores.values():
            scores.all_reduce()

    def summary(self) -> dict[str, Any]:
        out = {}
        for i, a in enumerate(self.anchors):
            count = max(self.bits[i, 2].item(), 1.0)
            out[a.name] = {
                "codec": a.codec,
                "mode": a.mode,
                "nominal_bits_per_second": a.nominal_bps,
                # the codec's frames / packets over the duration they code (the clip and the silence padded after
                # it), and the whole encoded file over the clip (Opus's Ogg container; the padding, on short clips)
                "bits_per_second": self.bits[i, 1].item() / count,
                "file_bits_per_second": self.bits[i, 0].item() / count,
                **self.scores[a.name].summary(),
            }
        return out
