"""What every prepared data source shares: the two errors a missing or damaged cache raises, and file checksums.

A source is fetched or generated once into ``<cache>/<name>/`` (:mod:`fsq.data.sources`: the images;
:mod:`fsq.data.speech`: synthetic speech; :mod:`fsq.data.videos`: real videos) and checked against the sha256 its
manifest records whenever it is read. The errors are defined in :mod:`fsq.data.source_errors` (the same classes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fsq.data.source_errors import SourceCorrupt, SourceUnavailable

__all__ = ["SourceCorrupt", "SourceUnavailable", "sha256_file"]


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
