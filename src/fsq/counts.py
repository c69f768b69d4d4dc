"""One check for every count and size a caller passes (shard sizes, batch sizes, limits, workers), torch-free.

A count that is not an integer, or is below its minimum, is refused with an error that names the option it came
from (``--shard-size``, ``shard_size``, ``data.workers``): a shard size of 0 must not write empty shards forever,
a limit of -1 must not silently drop the last item. :func:`check_count` serves library calls (``ValueError``);
:func:`count_arg` is the same rule as an ``argparse`` type (a usage error naming the option).
"""

from __future__ import annotations

import argparse
import numbers
from collections.abc import Callable


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int when it is an integer ``>= minimum``; else a ``ValueError`` naming ``name``. Bools and
    floats are refused (``True`` is not a count, ``2.5`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_optional_count(name: str, value: object, minimum: int = 1) -> int | None:
    """:func:`check_count`, with ``None`` (not set) passed through."""
    return None if value is None else check_count(name, value, minimum)


def count_arg(minimum: int = 1) -> Callable[[str], int]:
    """An ``argparse`` ``type=``: the text as an integer ``>= minimum`` (argparse names the option in its error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
