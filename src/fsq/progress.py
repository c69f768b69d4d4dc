"""Progress bars for long work besides training (evaluation, token export, sampling): tqdm with an ETA, on rank 0.

The training loop has its own bar (``train.progress``); these follow the same setting where a config is at hand.
Without tqdm (the core install) or on ranks other than 0 the iterable comes back unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    iterable: Iterable[T], *, total: int | None, desc: str, enabled: bool | None = True, unit: str = "it"
) -> Iterator[T]:
    """``iterable`` with a tqdm bar (``desc``, ``total`` steps, an ETA) on rank 0 when ``enabled`` (``None``: when
    stderr is a terminal, so that logs and error output stay free of bars)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or os.environ.get("RANK", "0") != "0":
        yield from iterable
        return
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        yield from iterable
        return
    with tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False) as bar:
        yield from bar
