"""Synthetic speech: English sentences spoken by ``espeak-ng`` in 40 voices at 16 kHz, split by voice.

It is formant synthesis, not recorded speech: reports call it "synthetic speech". Everything installs offline
from Debian (``apt-get install espeak-ng fortunes-min``) and PyPI (``soxr``, in the ``audio`` extra).

- **Voices.** A voice is an espeak-ng English accent plus a voice variant (``en-gb-scotland+f3``): 40 variants,
  each with one of 8 accents. The variants are split so that the ``val`` and ``test`` voices (6 each) are never
  heard in training (28 ``train`` voices); the manifest lists each split's voices.
- **Sentences.** Sentences of 4 to 10 words from Debian's ``fortunes-min`` (its ``fortunes``, ``literature`` and
  ``riddles`` files), split four ways by a hash of their text: ``train``, ``heldout``, ``val`` and ``test``
  sentences never overlap.
- **Splits.** ``train``: the training voices, 50 clips each; ``heldout``: the training voices, 10 clips each, on
  sentences never used in training (for a voice classifier's accuracy on real clips); ``val`` and ``test``: their
  own voices, 30 clips each (2,040 clips in all). Each clip has its own speaking rate (130-200 words per minute)
  and pitch (25-75 of espeak-ng's 0-99), drawn from a generator seeded by (split, voice, clip): the plan is the
  same on every machine.
- **Audio.** espeak-ng writes 22,050 Hz 16-bit mono (amplitude 60 of 200: no clipped peaks); leading and trailing
  silence is trimmed (40 ms kept) and the clip resampled to 16 kHz by ``soxr`` (HQ), stored as int16. Clips last
  0.7 to 6 seconds (median 2.2 s): 77 minutes of speech, 142 MiB.

``prepare_speech(folder)`` generates it once (about a minute on 2 cores, measured while other work loaded them;
espeak-ng runs in one process per clip, as many at a time as there are cores) into ``folder``: ``{split}.npy``
(every clip of the split, int16, concatenated) and ``manifest.json`` (version, espeak-ng version, voices, and per
split its file's sha256 and size and each clip's voice, start, length, rate, pitch and text). It is idempotent: a
prepared folder is only verified.
:func:`read_manifest` verifies the split files against their sha256 (once per process and file version).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsq.data.source_cache import SourceCorrupt, SourceUnavailable, sha256_file
from fsq.io import JSONFileError, read_json, write_json_atomic

NAME = "synthetic speech"
VERSION = 1
RATE = 16000
ESPEAK_RATE = 22050
SPLITS = ("train", "heldout", "val", "test")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-us-nyc", "en-gb-x-gbcwmd")
VARIANTS = {  # espeak-ng voice variants (files in espeak-ng-data/voices/!v), by split; f* and the names: both sexes
    "train": (
        *("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "f4", "adam", "Alicia", "Andy", "Annie", "benjamin"),
        *("belinda", "david", "linda", "ed", "steph", "edward", "john", "anika", "max", "paul", "shelby", "robert"),
        *("travis", "klatt"),
    ),
    "val": ("m6", "f5", "Andrea", "Gene", "Mario", "steph2"),
    "test": ("m7", "aunty", "michel", "grandma", "zac", "victor"),
}
CLIPS_PER_VOICE = {"train": 50, "heldout": 10, "val": 30, "test": 30}
SENTENCE_SHARES = {"train": 0.7, "heldout": 0.1, "val": 0.1, "test": 0.1}
SPEED_WPM = (130, 200)
PITCH = (25, 75)
AMPLITUDE = 60  # of espeak-ng's 0-200 (default 100, which clips some variants' peaks at full scale)
WORDS = (4, 10)  # per sentence
MARGIN_S = 0.04  # silence kept at each end after trimming
FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ("fortunes", "literature", "riddles")
HOW_TO_GET = (
    "apt-get install -y espeak-ng fortunes-min (Debian/Ubuntu, as root) and pip install 'fsq-toolkit[audio]' "
    "(soxr), then run `fsq data prepare speech` or fsq.data.prepare('speech') (a few minutes)"
)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Voice:
    """One voice: its label ``id`` (index in :func:`voices`), ``accent+variant`` name, and split."""

    id: int
    accent: str
    variant: str
    split: str

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"


def labels_are_voices(source: str | None, signal: str | None, num_classes: int) -> bool:
    """Whether the class labels of tokens are voices: labels (``num_classes`` > 0) over ``audio`` tokens of the
    ``speech`` source. What makes a MaskGIT voice-conditioned: its samples are judged by voice."""
    return bool(num_classes) and source == "speech" and signal == "audio"


def voices() -> list[Voice]:
    """Every voice, train voices first; accents go round the variants in order."""
    variants = [(v, split) for split in ("train", "val", "test") for v in VARIANTS[split]]
    return [Voice(i, ACCENTS[i % len(ACCENTS)], v, split) for i, (v, split) in enumerate(variants)]


def split_voices(split: str) -> list[Voice]:
    """The voices a split speaks in (``heldout``: the training voices)."""
    return [v for v in voices() if v.split == ("train" if split == "heldout" else split)]


def read_sentences(folder: Path = FORTUNES) -> tuple[list[str], dict[str, str]]:
    """``(sentences, {file: sha256})``: the distinct sentences of 4 to 10 plain words in the fortune files."""
    missing = [name for name in FORTUNE_FILES if not (folder / name).is_file()]
    if missing:
        raise SourceUnavailable(f"speech: {folder} lacks {', '.join(missing)} (Debian fortunes-min): {HOW_TO_GET}")
    found: set[str] = set()
    for name in FORTUNE_FILES:
        text = (folder / name).read_text(encoding="utf-8", errors="replace")
        for cookie in text.split("\n%\n"):
            for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", cookie).strip()):
                if WORDS[0] <= len(sentence.split()) <= WORDS[1] and re.fullmatch(
                    r"[A-Za-z][A-Za-z ,;:'\-]*[.!?]", sentence
                ):
                    found.add(sentence)
    return sorted(found), {name: sha256_file(folder / name) for name in FORTUNE_FILES}


def split_sentences(sentences: list[str]) -> dict[str, list[str]]:
    """The sentences of each split: ordered by a hash of their text, cut by ``SENTENCE_SHARES``."""
    ordered = sorted(sentences, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    out, start = {}, 0
    for k, split in enumerate(SPLITS):
        stop = len(ordered) if k == len(SPLITS) - 1 else start + round(SENTENCE_SHARES[split] * len(ordered))
        out[split], start = ordered[start:stop], stop
    return out


def plan(sentences: list[str], clips_per_voice: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """Per split, what each clip says and how: ``{"voice", "speed", "pitch", "text"}``, from seeded generators
    (``clips_per_voice``: default ``CLIPS_PER_VOICE``). Voices take turns (clip 0 of every voice, then clip 1,
    ...), so a split's first clips (``data.train_limit``) hold every voice, and a smaller plan starts a larger one."""
    counts = CLIPS_PER_VOICE if clips_per_voice is None else {**CLIPS_PER_VOICE, **clips_per_voice}
    pools = split_sentences(sentences)
    clips: dict[str, list[dict]] = {}
    for s, split in enumerate(SPLITS):
        clips[split] = []
        for k in range(counts[split]):  # voices take turns: the first clips of a split hold every voice
            for voice in split_voices(split):
                rng = np.random.default_rng([VERSION, s, voice.id, k])
                text = pools[split][int(rng.integers(len(pools[split])))]
                speed, pitch = (
                    int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                    int(rng.integers(PITCH[0], PITCH[1] + 1)),
                )
                clips[split].append({"voice": voice.id, "speed": speed, "pitch": pitch, "text": text})
    return clips


def _espeak() -> str:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SourceUnavailable(f"speech: espeak-ng is not installed: {HOW_TO_GET}")
    return espeak


def espeak_version(espeak: str) -> str:
    result = subprocess.run([espeak, "--version"], capture_output=True, text=True, timeout=60)
    return result.stdout.strip().split("  Data at")[0]


def installed_variants(espeak: str) -> set[str]:
    """The voice variants this espeak-ng has (it falls back silently to the default voice for a missing one)."""
    result = subprocess.run([espeak, "--voices=variant"], capture_output=True, text=True, timeout=60)
    return set(re.findall(r"!v/(\S+)", result.stdout))


def _wav_samples(data: bytes) -> np.ndarray:
    """The int16 samples of espeak-ng's streamed wav (its header's sizes are placeholders)."""
    at = data.find(b"data", 12)
    if data[:4] != b"RIFF" or at < 0:
        raise ValueError(f"espeak-ng wrote no wav data ({len(data)} bytes)")
    body = data[at + 8 :]
    return np.frombuffer(body[: len(body) - len(body) % 2], dtype="<i2")


def trim(samples: np.ndarray, rate: float, threshold: float = 1e-3) -> np.ndarray:
    """``samples`` (float) without the silence (``|x| <= threshold``) at either end beyond ``MARGIN_S``."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples[:0]
    margin = round(MARGIN_S * rate)
    return samples[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def synthesize(espeak: str, voice: str, speed: int, pitch: int, text: str) -> np.ndarray:
    """One clip: int16 at 16 kHz, trimmed (see the module docstring)."""
    import soxr

    command = [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(AMPLITUDE), "--stdout", "--stdin"]
    result = subprocess.run(command, input=text.encode(), capture_output=True, timeout=120, check=False)
    if result.returncode != 0:
        raise ValueError(f"espeak-ng {voice} failed (exit {result.returncode}): {result.stderr.decode()[-300:]}")
    audio = trim(_wav_samples(result.stdout).astype(np.float32) / 32768.0, ESPEAK_RATE)
    if audio.size < ESPEAK_RATE // 10:
        raise ValueError(f"espeak-ng {voice} said nothing for {text!r}")
    out = soxr.resample(audio, ESPEAK_RATE, RATE, quality="HQ")
    return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)


def _check_tools() -> str:
    espeak = _espeak()
    try:
        import soxr  # noqa: F401
    except ImportError as error:
        raise SourceUnavailable(f"speech: soxr is not installed (resampling): {HOW_TO_GET}") from error
    missing = sorted({v for group in VARIANTS.values() for v in group} - installed_variants(espeak))
    if missing:
        raise SourceUnavailable(f"speech: this espeak-ng lacks the voice variants {', '.join(missing)}: {HOW_TO_GET}")
    return espeak


def prepare_speech(folder: Path, workers: int | None = None, clips_per_voice: dict[str, int] | None = None) -> Path:
    """Generate the source into ``folder`` (see the module docstring) unless it is there; returns ``folder``.

    ``workers``: espeak-ng processes at a time (default: the usable cores); ``clips_per_voice``: fewer clips for
    tests (default ``CLIPS_PER_VOICE``). A folder prepared with another version or plan is generated again."""
    counts = {**CLIPS_PER_VOICE, **(clips_per_voice or {})}
    if (folder / MANIFEST).is_file():
        manifest = _read(folder)
        if manifest.get("version") == VERSION and manifest.get("clips_per_voice") == counts:
            read_manifest(folder)
            return folder
    espeak = _check_tools()
    sentences, sentence_files = read_sentences()
    clips = plan(sentences, counts)
    names = {v.id: v.name for v in voices()}
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = workers or cores
    splits = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:  # each job waits on its own espeak-ng process
        for split, entries in clips.items():
            jobs = [(espeak, names[c["voice"]], c["speed"], c["pitch"], c["text"]) for c in entries]
            audio = list(pool.map(lambda job: synthesize(*job), jobs))
            offset = 0
            for entry, clip in zip(entries, audio):
                entry.update(start=offset, length=int(clip.size))
                offset += int(clip.size)
            path = folder / f"{split}.npy"
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{split}.", suffix=".npy")
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, np.concatenate(audio))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            splits[split] = {"file": path.name, "sha256": sha256_file(path), "size": path.stat().st_size}
            splits[split].update(voices=[v.id for v in split_voices(split)], clips=entries)
    manifest = {
        "source": "speech",
        "name": NAME,
        "version": VERSION,
        "rate": RATE,
        "generator": espeak_version(espeak),
        "amplitude": AMPLITUDE,
        "clips_per_voice": counts,
        "sentences": {"origin": f"Debian fortunes-min: {FORTUNES}", "files": sentence_files, "count": len(sentences)},
        "voices": [
            {"id": v.id, "name": v.name, "accent": v.accent, "variant": v.variant, "split": v.split} for v in voices()
        ],
        "generation_s": round(time.perf_counter() - start, 1),
        "splits": splits,
    }
    write_json_atomic(manifest, folder / MANIFEST)
    return folder


def _corrupt(folder: Path, problem: str) -> SourceCorrupt:
    return SourceCorrupt(
        f"speech cache in {folder} is corrupt: {problem}. Delete the folder (rm -r {folder}) and prepare it again: "
        f"{HOW_TO_GET}"
    )


def _read(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise SourceUnavailable(f"speech ({NAME}) is not prepared in {folder}: {HOW_TO_GET}")
    try:
        return read_json(path, "the speech cache manifest")
    except JSONFileError as error:
        raise _corrupt(folder, str(error)) from error


_VERIFIED: set[tuple[str, int, int, str]] = set()  # (path, size, mtime_ns, sha256) checked in this process


def read_manifest(folder: Path, splits: tuple[str, ...] = SPLITS) -> dict:
    """The manifest of a prepared folder, with the files of ``splits`` checked against their sha256."""
    manifest = _read(folder)
    if manifest.get("version") != VERSION:
        raise SourceUnavailable(
            f"speech in {folder} was generated by another fsq (version {manifest.get('version')}, this one reads "
            f"{VERSION}): run `fsq data prepare speech` again"
        )
    for split in splits:
        entry = manifest.get("splits", {}).get(split)
        if entry is None:
            raise _corrupt(folder, f"{MANIFEST} has no {split!r} split")
        path = folder / entry["file"]
        if not path.is_file():
            raise _corrupt(folder, f"{entry['file']} is missing")
        stat = path.stat()
        key = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns, entry["sha256"])
        if key in _VERIFIED:
            continue
        if stat.st_size != entry["size"]:
            raise _corrupt(folder, f"{entry['file']} has {stat.st_size} bytes, expected {entry['size']}")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise _corrupt(folder, f"{entry['file']} has sha256 {actual}, expected {entry['sha256']}")
        _VERIFIED.add(key)
    return manifest
