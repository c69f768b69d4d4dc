"""Atomic file writes and format-checked JSON reads (torch-free: reports and configs use them too).

Every file a run dir holds is written through a unique temporary name in the same folder and renamed into
place, so a crash never leaves a half-written file behind.
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


def read_format_json(path: str | Path, expected_format: str, missing_hint: str) -> dict[str, Any]:
    """Read a JSON file whose ``format`` field must be ``expected_format`` (saved tokenizers, token manifests)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} holds no {path.name}: {missing_hint}")
    data = json.loads(path.read_text())
    if data.get("format") != expected_format:
        raise ValueError(f"{path} is not an {expected_format} file (format={data.get('format')!r})")
    return data
