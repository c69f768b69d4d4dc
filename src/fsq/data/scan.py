"""Listing the files of an image folder: symbolic links followed once per real folder, unreadable folders named.

``scan_folder(root)`` walks ``root`` recursively (names starting with ``.`` are ignored) and returns every file
once, sorted by path relative to ``root``. The rules:

- Symbolic links to folders are followed, but each real folder (``os.path.realpath``) is read once: a link
  cycle or a link back to ``root`` ends there instead of looping, and the link is listed in ``duplicates``
  ("same folder as ..."). Folders reached without a link are read first, so the plain path of a
  folder wins over a link to it; among links, the first found (sorted walk) wins.
- A file reached by several paths (symbolic links to the same real file, or a file inside a folder that is also
  reached through a link) counts once, by the same rule: the path without links wins, else the first in sorted
  order; the others are listed in ``duplicates`` ("same file as ..."). Hard links are separate files.
- A folder that cannot be read (permission denied, vanished, too many link levels) is listed in ``unreadable``
  with the reason; its files are not seen. Folders end in ``/`` in both lists (``./`` is ``root`` itself).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Scan:
    """What ``scan_folder`` found: ``files`` (sorted by relative path), ``folders`` read, and what it passed over.

    ``unreadable`` and ``duplicates`` hold ``(relative path, reason)`` pairs in the order found.
    """

    files: list[Path] = field(default_factory=list)
    folders: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)


def scan_folder(root: str | os.PathLike) -> Scan:
    """Every non-hidden file under ``root``, each real folder and real file once (see the module docstring)."""
    root = Path(root)
    scan = Scan()
    seen_folders = {os.path.realpath(root): "./"}
    links: list[Path] = []  # symbolic links to folders, followed after the folders reached without links
    found: list[tuple[bool, str, str, Path]] = []  # (reached through a link, relative path, real path, path)

    def rel(path: Path, folder: bool = False) -> str:
        name = path.relative_to(root).as_posix()
        return name + "/" if folder else name

    def walk(start: Path, through_link: bool) -> None:
        stack = [start]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as error:
                scan.unreadable.append((rel(folder, True), f"cannot read folder: {error.strerror or error}"))
                continue
            scan.folders += 1
            real_folder = os.path.realpath(folder)
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(folder, entry.name)
                try:
                    is_link, is_folder = entry.is_symlink(), entry.is_dir()
                except OSError as error:
                    scan.unreadable.append((rel(path), f"cannot read: {error.strerror or error}"))
                    continue
                if is_folder and is_link:
                    links.append(path)
                elif is_folder:
                    real = os.path.join(real_folder, entry.name)
                    if _first_visit(scan, seen_folders, real, rel(path, True)):
                        subfolders.append(path)
                else:
                    real = os.path.realpath(path) if is_link else os.path.join(real_folder, entry.name)
                    found.append((through_link or is_link, rel(path), real, path))
            stack.extend(reversed(subfolders))

    walk(root, through_link=False)
    while links:
        link = links.pop(0)
        if _first_visit(scan, seen_folders, os.path.realpath(link), rel(link, True)):
            walk(link, through_link=True)
    kept: dict[str, tuple[bool, str, str, Path]] = {}
    for item in sorted(found):
        if item[2] in kept:
            scan.duplicates.append((item[1], f"same file as {kept[item[2]][1]}"))
        else:
            kept[item[2]] = item
    scan.files = sorted((item[3] for item in kept.values()), key=rel)
    return scan


def _first_visit(scan: Scan, seen: dict[str, str], real: str, name: str) -> bool:
    """Record folder ``real`` (reached as ``name``) as seen; ``False`` (and a duplicate noted) if it was already."""
    if real in seen:
        scan.duplicates.append((name, f"same folder as {seen[real]} (already scanned)"))
        return False
    seen[real] = name
    return True
