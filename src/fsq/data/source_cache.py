"""What every prepared data source shares: the two errors a missing or damaged cache raises, and file checksums.

A source is fetched or generated once into ``<cache>/<name>/`` (:mod:`fsq.data.sources`: the images;
:mod:`fsq.data.speech`: synthetic speech) and checked against the sha256 its manifest records whenever it is read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class SourceUnavailable(ValueError):
    """A data source is not in the cache or cannot be fetched; the message says how to get it."""


class SourceCorrupt(ValueError):
    """A cached source fails its checksum; the message says which folder to delete before preparing again."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
