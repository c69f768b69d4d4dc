"""The two errors of a built-in data source (:mod:`fsq.data.sources`, :mod:`fsq.data.videos`): missing or corrupt.

Both are ``ValueError`` subclasses whose message says how to get, or how to repair, the source.
"""

from __future__ import annotations


class SourceUnavailable(ValueError):
    """A data source is not in the cache or cannot be fetched; the message says how to get it."""


class SourceCorrupt(ValueError):
    """A cached source fails its checksum; the message says which folder to delete before preparing again."""
