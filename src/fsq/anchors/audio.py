"""Classical speech codecs as anchors: Codec2 and Opus run through their command-line tools on a clip.

:func:`run_anchor` takes a mono float clip (``[-1, 1]`` waveform, 16 kHz by default) and returns the decoded clip at
the same rate and length, time-aligned with the input, with the bits the codec really spent:

- **Codec2** (Debian ``codec2``: ``c2enc MODE in.raw out.bit`` / ``c2dec``; 8 kHz 16-bit raw; modes 3200, 2400,
  1600, 1400, 1300, 1200, 700C): the clip is resampled to 8 kHz with ``soxr`` (its delay compensated by soxr) and
  back. The ``.bit`` file holds the frames alone (no header), each padded to whole bytes: modes whose frame is not
  a whole number of bytes spend more than their name (1300: 52 bits in 7 bytes per 40 ms, 1.4 kbps; 700C: 28 bits
  in 4 bytes, 0.8 kbps), which the bitrates here report as they are.
- **Opus** (Debian ``opus-tools``: ``opusenc --bitrate KBPS`` on raw 16 kHz input, ``opusdec --rate 16000``; VBR,
  the default; ``--padding 0``: no spare bytes reserved for tags): ``bits_per_second`` counts the whole ``.opus``
  file (Ogg pages and headers included, about 0.9 kbps more on a 2 s clip), ``payload_bits_per_second`` the Opus
  packets alone (VBR spends less than the target on silence).
- **silence** (no tool): the trivial baseline, every clip decoded as silence at 0 bits/s; a metric on which it
  comes near a codec says little about that codec.

Time alignment: a codec's delay is a constant of the codec (its analysis window and lookahead), measured once per
anchor and rate on a calibration signal (gated harmonic bursts with a varying pitch, 4 s, fixed seed) by
:func:`fsq.anchors.alignment.measure_delay`, and removed from every output. The input is padded with silence so the
output covers the whole clip after the shift. A missing tool is a RuntimeError naming the Debian package.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsq.anchors.alignment import calibration_signal, measure_delay
from fsq.anchors.ogg import opus_payload_bytes

CODEC2_MODES = {  # mode -> (nominal bits/s, frame in ms)
    "3200": (3200, 20),
    "2400": (2400, 20),
    "1600": (1600, 40),
    "1400": (1400, 40),
    "1300": (1300, 40),
    "1200": (1200, 40),
    "700C": (700, 40),
}
CODEC2_RATE = 8000
DEFAULT_ANCHORS = ("codec2-700C", "codec2-1200", "codec2-2400", "codec2-3200", "opus-6k")
SILENCE = "silence"  # the trivial baseline: a metric it scores well on says little about a codec


@dataclass(frozen=True)
class Anchor:
    """One classical codec setting: ``name`` (``codec2-2400``, ``opus-6k``), the ``codec`` family, its ``mode``
    (the Codec2 mode, or Opus's kbps), the ``nominal_bps`` and the Debian ``package`` of its tools."""

    name: str
    codec: str
    mode: str
    nominal_bps: float
    package: str
    tools: tuple[str, ...]  # the command-line tools it runs (none for silence)


def anchor(name: str) -> Anchor:
    """The anchor called ``name``: ``codec2-MODE`` (MODE in 3200, 2400, 1600, 1400, 1300, 1200, 700C),
    ``opus-Kk`` (K kbps, 6 to 256, e.g. ``opus-6k``) or ``silence`` (the trivial baseline: every clip decoded as
    silence, 0 bits); anything else is a ValueError listing them."""
    if name == SILENCE:
        return Anchor(name, "none", "silence", 0.0, "", ())
    if name.startswith("codec2-") and name[7:] in CODEC2_MODES:
        mode = name[7:]
        return Anchor(name, "codec2", mode, CODEC2_MODES[mode][0], "codec2", ("c2enc", "c2dec"))
    if name.startswith("opus-") and name.endswith("k") and name[5:-1].isdigit() and 6 <= int(name[5:-1]) <= 256:
        return Anchor(name, "opus", name[5:-1], 1000.0 * int(name[5:-1]), "opus-tools", ("opusenc", "opusdec"))
    known = ", ".join([f"codec2-{m}" for m in CODEC2_MODES] + ["opus-6k (opus-Kk, K in 6..256)", SILENCE])
    raise ValueError(f"unknown audio anchor {name!r}; known: {known}")


def missing(a: Anchor) -> str | None:
    """Why anchor ``a`` cannot run here (a tool or a Python package missing), or None when it can."""
    absent = [tool for tool in a.tools if shutil.which(tool) is None]
    if absent:
        return f"{' and '.join(absent)} not found: install the Debian package {a.package} (scripts/fetch_data.sh)"
    if a.codec == "codec2":
        import importlib.util

        if importlib.util.find_spec("soxr") is None:
            return "the 'soxr' package is not installed (pip install 'fsq-toolkit[audio-eval]')"
    return None


@dataclass(frozen=True)
class AnchorResult:
    """A clip through an anchor: ``decoded`` (float64, the input's length and rate, aligned), ``bits`` of the
    encoded file, ``bits_per_second`` over the clip's duration, ``payload_bits_per_second`` of the codec's own
    frames over the duration they code (the clip padded with silence, in whole frames), and the ``delay``
    (samples at the clip's rate) removed."""

    decoded: np.ndarray
    bits: int
    bits_per_second: float
    payload_bits_per_second: float
    delay: int


def run_anchor(a: Anchor | str, clip: np.ndarray, rate: int = 16000) -> AnchorResult:
    """Encode and decode the mono waveform ``clip`` (``(T,)`` in ``[-1, 1]``, samples beyond are clipped) at
    ``rate`` Hz through anchor ``a``; the result is aligned by the anchor's measured delay."""
    a = anchor(a) if isinstance(a, str) else a
    clip = _check_clip(clip, rate)
    if a.codec == "none":  # silence: nothing encoded, nothing spent
        return AnchorResult(np.zeros_like(clip), 0, 0.0, 0.0, 0)
    delay = anchor_delay(a, rate)
    padded = np.concatenate([clip, np.zeros(delay + rate // 10)])  # room for the delay and the last frame
    decoded, file_bytes, payload_bytes = _through(a, padded, rate)
    out = aligned(decoded, delay, len(clip))
    seconds = len(clip) / rate
    encoded_seconds = len(decoded) / rate  # the frames coded (Codec2 drops a last partial frame; opusdec trims)
    return AnchorResult(out, 8 * file_bytes, 8 * file_bytes / seconds, 8 * payload_bytes / encoded_seconds, delay)


def aligned(decoded: np.ndarray, delay: int, length: int) -> np.ndarray:
    """``length`` samples of ``decoded`` from sample ``delay`` on (a negative delay: silence first), silence past
    its end: the output lined up with its input."""
    out = np.zeros(length)
    start = max(delay, 0)
    piece = decoded[start : start + length - max(-delay, 0)]
    out[max(-delay, 0) : max(-delay, 0) + len(piece)] = piece
    return out


@functools.cache
def anchor_delay(a: Anchor, rate: int) -> int:
    """The delay in samples at ``rate`` of anchor ``a`` (decoded output later than its input), measured on the
    calibration signal; cached per process."""
    signal = calibration_signal(rate)
    decoded, _, _ = _through(a, np.concatenate([signal, np.zeros(rate // 2)]), rate)
    return measure_delay(signal, decoded[: len(signal) + rate // 2], rate)


def _check_clip(clip: np.ndarray, rate: int) -> np.ndarray:
    clip = np.asarray(clip, dtype=np.float64)
    if clip.ndim != 1 or len(clip) < rate // 50:
        raise ValueError(f"an anchor takes one mono clip (T,) of at least 20 ms, got shape {clip.shape} at {rate} Hz")
    if not np.isfinite(clip).all():
        raise ValueError("the clip holds NaN or Inf samples")
    if rate not in (8000, 12000, 16000, 24000, 48000):
        raise ValueError(f"anchors take clips at 8, 12, 16, 24 or 48 kHz (Opus's rates), got {rate} Hz")
    return clip


def _to_pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _from_pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32767.0


def _run(command: list[str], package: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as error:
        raise RuntimeError(f"{command[0]} not found: install the Debian package {package}") from error
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def _through(a: Anchor, x: np.ndarray, rate: int) -> tuple[np.ndarray, int, int]:
    """``x`` through the codec: (decoded at ``rate``, file bytes, payload bytes); the decoded length may differ."""
    reason = missing(a)
    if reason:
        raise RuntimeError(f"anchor {a.name}: {reason}")
    with tempfile.TemporaryDirectory(prefix="fsq-anchor-") as tmp:
        work = Path(tmp)
        if a.codec == "codec2":
            import soxr

            narrow = soxr.resample(x, rate, CODEC2_RATE) if rate != CODEC2_RATE else x
            (work / "in.raw").write_bytes(_to_pcm16(narrow))
            _run(["c2enc", a.mode, str(work / "in.raw"), str(work / "out.bit")], a.package)
            _run(["c2dec", a.mode, str(work / "out.bit"), str(work / "out.raw")], a.package)
            decoded = _from_pcm16((work / "out.raw").read_bytes())
            decoded = soxr.resample(decoded, CODEC2_RATE, rate) if rate != CODEC2_RATE else decoded
            size = (work / "out.bit").stat().st_size
            return decoded, size, size
        (work / "in.raw").write_bytes(_to_pcm16(x))
        raw = ["--raw", "--raw-rate", str(rate), "--raw-bits", "16", "--raw-chan", "1"]
        encode = ["opusenc", "--quiet", "--bitrate", a.mode, "--padding", "0", *raw]  # no spare room for tags
        _run([*encode, str(work / "in.raw"), str(work / "out.opus")], a.package)
        _run(["opusdec", "--quiet", "--rate", str(rate), str(work / "out.opus"), str(work / "out.raw")], a.package)
        encoded = (work / "out.opus").read_bytes()
        return _from_pcm16((work / "out.raw").read_bytes()), len(encoded), opus_payload_bytes(encoded)


__all__ = [
    "CODEC2_MODES",
    "DEFAULT_ANCHORS",
    "SILENCE",
    "Anchor",
    "AnchorResult",
    "anchor",
    "anchor_delay",
    "calibration_signal",
    "missing",
    "run_anchor",
]
