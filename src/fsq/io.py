"""Atomic file writes and checked JSON reads (torch-free: reports and configs use them too).

Every file a run dir holds is written through a unique temporary name in the same folder and renamed into
place, so a crash never leaves a half-written file behind.

Every JSON file ``fsq`` reads (``meta.json``, bundle ``config.json``, checkpoint ``state.json``, manifests,
evaluations, study results, a Hugging Face dataset's ``dataset_dict.json``) goes through :func:`read_json`: a
missing, unreadable, non-UTF-8, truncated or malformed file, a top level of the wrong type, or a missing or
mistyped required key is a :class:`JSONFileError` (a ``ValueError``) naming the file, the line and column, and
what the file is; never a bare ``JSONDecodeError``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fsq.storage import storage_error, storage_reason


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` through a unique temporary file in the same folder, then rename (0644)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if storage_reason(error) is None:
            raise
        raise storage_error(error, path, "file") from error  # a full disk: the path and the space left


def write_json_atomic(data: Any, path: str | Path) -> None:
    """``data`` as indented, key-sorted JSON, written atomically."""
    write_text_atomic(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


class JSONFileError(ValueError):
    """A JSON file that cannot be used: the message names the file and what is wrong with it."""


def _type_names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # true/false is not a number here
    return isinstance(value, kinds) or (float in kinds and isinstance(value, int) and not isinstance(value, bool))


def parse_json(text: str | bytes, where: str, what: str = "") -> Any:
    """``text`` parsed as JSON; a :class:`JSONFileError` naming ``where`` (a path) and ``what`` when it is not."""
    label = f"{where} ({what})" if what else where
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise JSONFileError(
            f"{label} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno} (the file is damaged "
            "or was cut short; restore it or write it again)"
        ) from None
    except UnicodeDecodeError as error:
        raise JSONFileError(f"{label} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_json(
    path: str | Path,
    what: str = "",
    *,
    top: type | tuple[type, ...] | None = dict,
    required: dict[str, type | tuple[type, ...]] | None = None,
) -> Any:
    """The JSON content of ``path``, checked (see the module docstring).

    ``what`` says what the file is (for messages: "the run's start record"); ``top``: the type the top level must
    have (``None``: any); ``required``: keys the top-level object must hold, with their types. A missing file
    raises ``FileNotFoundError`` and an unreadable one ``OSError``, both naming the path.
    """
    path = Path(path)
    label = f"{path} ({what})" if what else str(path)
    try:
        data = parse_json(path.read_bytes(), str(path), what)
    except FileNotFoundError:
        raise FileNotFoundError(f"{label} does not exist") from None
    except IsADirectoryError:
        raise JSONFileError(f"{label} is a folder, not a JSON file") from None
    except OSError as error:
        raise OSError(f"cannot read {label}: {error.strerror or error}") from None
    if top is not None and not _is(data, top):
        raise JSONFileError(f"{label} must hold {_type_names(top)} at its top level, not {type(data).__name__}")
    for key, kind in (required or {}).items():
        if key not in data:
            raise JSONFileError(f"{label} has no {key!r} entry")
        if not _is(data[key], kind):
            got = type(data[key]).__name__
            raise JSONFileError(f"{label}: {key!r} must be {_type_names(kind)}, not {got} ({data[key]!r:.60})")
    return data


def read_json_lines(path: str | Path, what: str = "") -> list[Any]:
    """The rows of a JSON-lines file (blank lines skipped); a damaged line is named by its number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except UnicodeDecodeError as error:
        raise JSONFileError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    return [parse_json(line, f"{path} line {n}", what) for n, line in enumerate(lines, 1) if line.strip()]


def read_format_json(path: str | Path, expected_format: str, missing_hint: str) -> dict[str, Any]:
    """Read a JSON file whose ``format`` field must be ``expected_format`` (saved tokenizers, token manifests)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} holds no {path.name}: {missing_hint}")
    data = read_json(path)
    if data.get("format") != expected_format:
        raise ValueError(f"{path} is not an {expected_format} file (format={data.get('format')!r})")
    return data
