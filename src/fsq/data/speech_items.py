"""The ``speech`` source (synthetic speech, :mod:`fsq.data.speech`) as loader items: one split's clips, read from
its int16 file in the cache when asked, labelled by voice.

The split file is memory-mapped, and opened again in each process that reads it (a DataLoader worker never
receives a copy of the samples), so memory stays flat however many clips a split holds. A clip is float32
``(1, T)`` in ``[0, 1]`` (``0.5`` is silence) at 16 kHz, or resampled (``soxr``) to ``rate`` when ``resample``;
another rate without ``resample`` is an error naming both. Labels are voice ids: indices into ``class_names``, the
names of every voice of the source (``val`` and ``test`` clips carry voices that no ``train`` clip has).

Clips shorter than the time crop (``min_length``) are left out when the split is listed and named in ``skipped``
(with ``on_error="raise"``: an error naming the first one and the shortest length); a split none of whose clips is
long enough is an error saying how long the longest is.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq.data.items import ImageItems
from fsq.data.resample import resample_audio
from fsq.data.signals import AUDIO, check_rate
from fsq.data.sources import cache_dir as default_cache_dir
from fsq.data.speech import NAME, SPLITS, read_manifest


class SpeechItems(ImageItems):
    """One split of the prepared speech source (see the module docstring); ``limit`` keeps its first clips."""

    kind = AUDIO

    def __init__(
        self,
        split: str,
        *,
        cache_dir: str | os.PathLike | None = None,
        rate: float | None = None,
        min_length: int | None = None,
        channels: int | None = None,
        on_error: str = "skip",
        limit: int | None = None,
        resample: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"speech has splits {', '.join(SPLITS)}, got split {split!r}")
        if channels not in (None, 1):
            raise ValueError(f"speech ({NAME}) is mono: data.channels={channels}, set it to 1 or leave it unset")
        folder = default_cache_dir(cache_dir) / "speech"
        manifest = read_manifest(folder, (split,))
        entry = manifest["splits"][split]
        self.file_rate = float(manifest["rate"])
        self.resample = bool(resample and rate is not None and rate != self.file_rate)
        if not self.resample:
            check_rate("speech", AUDIO, self.file_rate, rate)
        self.rate = float(rate) if rate is not None else self.file_rate
        voices = manifest["voices"]
        self.class_names = [v["name"] for v in voices]
        self.has_labels, self.channels = True, 1
        self.source, self.split, self.path = "speech", split, folder / entry["file"]
        clips = entry["clips"]
        names = [f"{split}/{k:04d} ({voices[c['voice']]['name']})" for k, c in enumerate(clips)]
        lengths = [self._length(c["length"]) for c in clips]
        keep = [k for k, n in enumerate(lengths) if min_length is None or n >= min_length]
        short = [k for k in range(len(clips)) if min_length is not None and lengths[k] < min_length]
        if short and on_error == "raise":
            raise ValueError(
                f"speech ({split}): {len(short)} clips are shorter than the time crop data.length={min_length}, "
                f"the first {names[short[0]]} with {lengths[short[0]]} samples (the shortest has {min(lengths)}); "
                "lower data.length or set data.on_error=skip to leave them out"
            )
        if not keep:
            raise ValueError(
                f"speech ({split}): no clip is as long as the time crop data.length={min_length} (the longest has "
                f"{max(lengths)} samples at {self.rate:g} Hz); lower data.length"
            )
        self.skipped = [(names[k], f"{lengths[k]} samples, shorter than the time crop {min_length}") for k in short]
        if limit is not None:
            keep = keep[:limit]
        self.names = [names[k] for k in keep]
        self.starts = np.asarray([clips[k]["start"] for k in keep], dtype=np.int64)
        self.lengths = np.asarray([clips[k]["length"] for k in keep], dtype=np.int64)
        self.labels = torch.tensor([clips[k]["voice"] for k in keep], dtype=torch.int64)
        self.texts = [clips[k]["text"] for k in keep]
        self._sha256 = entry["sha256"]
        self._samples: np.ndarray | None = None
        self._pid = os.getpid()

    def _length(self, samples: int) -> int:
        """A clip's length at the served rate."""
        return max(1, round(samples * self.rate / self.file_rate)) if self.resample else samples

    def __getstate__(self) -> dict[str, Any]:  # workers map the file themselves
        state = dict(self.__dict__)
        state["_samples"] = None
        return state

    def _file(self) -> np.ndarray:
        if self._samples is None or self._pid != os.getpid():
            self._samples, self._pid = np.load(self.path, mmap_mode="r"), os.getpid()
        return self._samples

    def __len__(self) -> int:
        return len(self.names)

    def read(self, index: int) -> torch.Tensor:
        start = int(self.starts[index])
        audio = np.asarray(self._file()[start : start + int(self.lengths[index])], dtype=np.float32)[None] / 32768.0
        if self.resample:
            audio = np.clip(resample_audio(audio, self.file_rate, self.rate), -1.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(audio * 0.5 + 0.5, dtype=np.float32))

    def length(self, index: int) -> int:
        """Clip ``index``'s length in samples at the served rate, known without reading it."""
        return self._length(int(self.lengths[index]))

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def name(self, index: int) -> str:
        return self.names[index]

    def fingerprint(self, count: int) -> str:
        digest = hashlib.sha256(f"{self._sha256}:{self.split}:{self.rate}:{count}".encode())
        digest.update(",".join(self.names[:count]).encode())
        return digest.hexdigest()[:24]


def speech_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the speech source lives in the cache (``<cache>/speech``)."""
    return default_cache_dir(cache_dir) / "speech"
