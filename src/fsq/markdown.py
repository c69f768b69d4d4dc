"""Markdown tables, as every report, model card, README block and benchmark table of the project writes them: a
header line, a rule (``---`` per column, or ``---:`` to right-align), then a line per row, each ``| a | b |``.

>>> print("\\n".join(table(["codec", "bits/s"], [["opus-6k", "6209"]])))
| codec | bits/s |
|---|---|
| opus-6k | 6209 |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["row", "table"]


def row(cells: Iterable[object]) -> str:
    """One table line: the cells (``str`` of each) between pipes."""
    return "| " + " | ".join(map(str, cells)) + " |"


def table(head: Sequence[object], rows: Iterable[Iterable[object]] = (), *, align: str = "---") -> list[str]:
    """The lines of a table: ``head``, the rule (``align`` per column: ``---``, or ``---:`` for numbers aligned
    right), then one line per row of ``rows`` (rows may be added later with :func:`row`)."""
    if align not in ("---", "---:", ":---", ":---:"):
        raise ValueError(f"align must be ---, ---:, :--- or :---:, got {align!r}")
    return [row(head), "|" + f"{align}|" * len(head), *(row(r) for r in rows)]
