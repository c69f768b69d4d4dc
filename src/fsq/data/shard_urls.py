"""Which shard files a ``wds:`` source names: brace patterns, globs, folders and remote URLs, nothing dropped silently.

The pattern (``{split}`` first replaced by the split name) is brace-expanded as WebDataset and ``braceexpand`` do:
``train-{0000..0002}.tar`` names three shards (zero padding kept), ``{a,b}`` alternatives, nested braces; braces
that are neither (``{x}``) stay literal. Each expanded name is then

- a remote URL: ``http://``, ``https://``, ``pipe:COMMAND`` (the shard is the command's standard output, as in
  WebDataset) or any other ``scheme://`` that ``fsspec`` knows (``s3://`` with ``s3fs``, ``gs://`` with ``gcsfs``,
  ...). A remote shard is fetched once, in full, into the shard cache (``CACHE/shards/``, a temporary name renamed
  when complete) and then read by random access like a local one, so workers, ranks and the exact step-addressed
  resume work the same; a cached shard is reused (delete it to fetch it again). Needs the disk space of the shards.
  A fetched shard that is not a whole tar file (cut short in transit, an error page) is not kept: it is reported
  and fetched again by the next run.
- a glob (``*``, ``?``, ``[``): every match, in sorted order;
- a folder: its ``*.tar`` files (``split="all"``), else its ``{split}*.tar`` files and those in its ``{split}/``;
- else one file.

What cannot be used is returned as ``(name, reason)`` problems, never dropped without a word: a dangling symbolic
link matched by a glob or found in a folder, a name of a brace pattern that does not exist, a remote shard that
cannot be fetched (HTTP errors, a command that fails). The caller skips and reports them, or raises.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$|^([A-Za-z])\.\.([A-Za-z])$")
FETCH_TIMEOUT_S = 60


def is_remote(name: str) -> bool:
    """Whether ``name`` is a URL to fetch (``pipe:``, ``http(s)://``, ``s3://``, ...) rather than a local path."""
    return name.startswith("pipe:") or (bool(_SCHEME.match(name)) and not name.startswith("file://"))


def _split_top(inner: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    return parts + [inner[start:]]


def _alternatives(inner: str) -> list[str] | None:
    """The options of one brace group (``a,b`` or ``0..9``), or ``None`` when the braces are literal."""
    parts = _split_top(inner)
    if len(parts) > 1:
        return parts
    match = _RANGE.match(inner)
    if match is None:
        return None
    if match.group(4):  # a letter range
        a, b = ord(match.group(4)), ord(match.group(5))
        return [chr(c) for c in (range(a, b + 1) if a <= b else range(a, b - 1, -1))]
    first, last, step_text = match.group(1), match.group(2), match.group(3)
    a, b, step = int(first), int(last), abs(int(step_text or 1)) or 1
    padded = any(len(t.lstrip("-")) > 1 and t.lstrip("-").startswith("0") for t in (first, last))
    width = max(len(first), len(last)) if padded else 0
    values = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
    return [f"{v:0{width}d}" for v in values]


def expand_braces(pattern: str) -> list[str]:
    """Every name a brace pattern stands for, in order (see the module docstring)."""
    depth, start = 0, -1
    for i, ch in enumerate(pattern):
        if ch == "{":
            start = i if depth == 0 else start
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                options = _alternatives(pattern[start + 1 : i])
                if options is not None:
                    head, tails = pattern[:start], expand_braces(pattern[i + 1 :])
                    return [head + x + tail for option in options for x in expand_braces(option) for tail in tails]
    return [pattern]


def _local(name: str, split: str, explicit: bool) -> tuple[list[Path], list[tuple[str, str]]]:
    """``(files, problems)`` of one expanded local name; ``explicit``: it came from a brace pattern."""
    name = name.removeprefix("file://")
    if any(ch in name for ch in "*?["):
        candidates = [Path(p) for p in glob.glob(name)]  # dangling links match too: lexists
    elif Path(name).is_dir():
        folder = Path(name)
        found = list(folder.glob("*.tar")) if split == "all" else [*folder.glob(f"{split}*.tar")]
        candidates = found + (list((folder / split).glob("*.tar")) if split != "all" else [])
    elif explicit or os.path.lexists(name):
        candidates = [Path(name)]
    else:
        return [], []
    files, problems = [], []
    for path in sorted(set(candidates)):
        if path.is_file():
            files.append(path)
        elif path.is_symlink() and not path.exists():
            problems.append((os.fspath(path), f"dangling symbolic link (its target {os.readlink(path)} is missing)"))
        elif not path.exists():
            problems.append((os.fspath(path), "no such shard file"))
        elif not path.is_dir():
            problems.append((os.fspath(path), "not a regular file"))
    return files, problems


def cached_name(url: str) -> str:
    """The file name of a remote shard in the cache: a hash of the URL, then its last path component."""
    base = url.rstrip("/").rsplit("/", 1)[-1] if not url.startswith("pipe:") else "pipe-" + url.split()[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base)[-80:] or "shard"
    return f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{base}"


@contextmanager
def _open_remote(url: str) -> Iterator[BinaryIO]:
    if url.startswith("pipe:"):
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(url[5:], shell=True, stdout=subprocess.PIPE, stderr=errors)  # noqa: S602
            assert process.stdout is not None
            try:
                yield process.stdout  # type: ignore[misc]
            finally:
                process.stdout.close()
                status = process.wait()
            if status != 0:
                errors.seek(0)
                tail = errors.read()[-500:].decode("utf-8", "replace").strip()
                raise OSError(f"the command exited with status {status}" + (f": {tail}" if tail else ""))
    elif url.startswith(("http://", "https://")):
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 (http(s) only)
            yield response
    else:
        try:
            import fsspec
        except ImportError as error:
            scheme = url.split("://")[0]
            raise OSError(f"reading {scheme}:// URLs needs fsspec: pip install 'fsq-toolkit[data]'") from error
        try:
            opened = fsspec.open(url, "rb")
        except (ImportError, ValueError) as error:  # unknown protocol, or its package (s3fs, gcsfs) missing
            raise OSError(str(error)) from error
        with opened as handle:
            yield handle


def fetch(url: str, cache: Path, check: Callable[[Path], str | None] | None = None) -> Path:
    """The local copy of the remote shard ``url`` in ``cache`` (fetched once; see the module docstring).

    Raises ``OSError`` (the reason; the caller names the URL) when it cannot be fetched in full (HTTP errors, a
    command that fails, a response shorter than its ``Content-Length``) or when ``check(file)`` names a problem (a
    shard that is not a whole tar file); nothing is left in the cache then, so the next run fetches it again.
    """
    target = cache / cached_name(url)
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out, _open_remote(url) as stream:
            shutil.copyfileobj(stream, out, 1 << 20)
            expected = getattr(stream, "headers", {}).get("Content-Length")
            if expected is not None and out.tell() != int(expected):
                raise OSError(f"the response ended after {out.tell()} of {expected} bytes")
        problem = check(Path(tmp)) if check is not None else None
        if problem is not None:
            raise OSError(f"the fetched shard is {problem}")
        os.replace(tmp, target)
    except (OSError, ValueError) as error:  # urllib's errors are OSErrors
        Path(tmp).unlink(missing_ok=True)
        detail = f"not found ({error})" if type(error) is FileNotFoundError else str(error)
        raise OSError(f"cannot fetch it: {detail}") from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def resolve_shards(
    path: str, split: str, cache: Path | None = None, check: Callable[[Path], str | None] | None = None
) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """``([(name, local file)], problems)`` of ``wds:PATH`` for ``split`` (see the module docstring): names are
    what the user named (a path or a URL), files are local (remote shards fetched into ``cache``, default
    ``CACHE/shards``, and kept there only when ``check`` finds no problem)."""
    pattern = path.replace("{split}", split)
    depth = 0
    for ch in pattern:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            break
    if depth:
        raise ValueError(f"unbalanced braces in the shard pattern {path!r} (expected e.g. train-{{0000..0099}}.tar)")
    names = expand_braces(pattern)
    explicit = len(names) > 1
    shards: dict[str, Path] = {}
    problems: list[tuple[str, str]] = []
    for name in names:
        if is_remote(name):
            if cache is None:
                from fsq.data.sources import cache_dir

                cache = cache_dir() / "shards"
            try:
                shards.setdefault(name, fetch(name, cache, check))
            except OSError as error:
                problems.append((name, str(error)))
            continue
        files, found = _local(name, split, explicit)
        shards.update((os.fspath(p), p) for p in files)
        problems += found
    ordered = sorted(shards.items()) if not any(is_remote(n) for n in shards) else list(shards.items())
    return ordered, problems
