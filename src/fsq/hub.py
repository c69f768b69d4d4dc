"""Where a pretrained model comes from: a bundle folder, a name shipped in the package, or a hub repo id.

A *bundle* is a folder of safetensors weights and JSON, nothing pickled, written by ``save_pretrained`` or
``fsq export``. Its ``config.json`` names the format: ``fsq-tokenizer`` (:class:`fsq.Tokenizer`),
``fsq-maskgit`` (a MaskGIT, its tokenizer in ``tokenizer/`` and its sampling defaults) or ``fsq-uvim`` (a UViM
oracle, its language model and the task's settings). A ``README.md`` model card may sit beside it.

:func:`resolve` turns what a user typed into a local bundle folder:

* an existing folder is used as it is;
* a *shipped* name (``mnist-fsq``, ``mnist-maskgit-fsq``) is a bundle inside the installed package
  (``fsq/pretrained/<name>/``, package data): it loads offline, right after install;
* a local-looking path (:func:`looks_local`: ``runs/x``, ``./x``, ``a/b/c``, a first folder that exists here)
  that does not exist is a "no such run dir or bundle" error, never a hub lookup;
* anything else shaped like ``org/name`` is a Hugging Face hub repo id, fetched with ``huggingface_hub`` (the ``hub``
  extra; imported only here and only then) into its cache; ``local_files_only=True`` never touches the network.

:func:`push_folder` uploads a bundle folder to a hub repo (``push_to_hub`` of the model classes). This module
imports no torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from fsq.io import read_json

CONFIG = "config.json"
CARD = "README.md"
FORMATS = ("fsq-tokenizer", "fsq-maskgit", "fsq-uvim")
# what a bundle may hold: fetched from the hub, never anything else (no pickles)
BUNDLE_PATTERNS = ["*.json", "*.safetensors", "*.md", "*/*.json", "*/*.safetensors"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def shipped_root() -> Path:
    """The folder of the bundles shipped in the package (``fsq/pretrained``)."""
    return Path(str(files("fsq").joinpath("pretrained")))


def is_shipped_name(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a shipped bundle by its name (no local folder of that name): :func:`resolve`
    takes such a name to ``fsq/pretrained``."""
    return not Path(name_or_path).is_dir() and str(name_or_path) in shipped_names()


def shipped_names() -> list[str]:
    """Names of the shipped bundles (folders of ``fsq/pretrained`` that hold a ``config.json``)."""
    root = shipped_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG).is_file())


def is_repo_id(text: str) -> bool:
    """Whether ``text`` is shaped like a hub repo id ``org/name`` (one slash, no leading ``.`` or ``/``)."""
    return bool(_REPO_ID.match(text)) and ".." not in text


# fsq's own output folders: `runs/x` is always a path (the default run dirs live there), never a hub repo id
LOCAL_ROOTS = ("runs",)


def looks_local(text: str) -> bool:
    """Whether ``text`` is meant as a local path: it exists, starts with ``.``, ``/`` or ``~``, ends with ``/``,
    has more than one ``/`` or a backslash, starts with a folder that exists here, or with fsq's ``runs/``.
    Only what is none of these and shaped ``org/name`` is looked up on the hub (:func:`resolve`)."""
    if Path(text).exists() or text.startswith((".", "/", "~")) or text.endswith("/") or "\\" in text:
        return True
    parts = text.split("/")
    return len(parts) > 2 or (len(parts) == 2 and (parts[0] in LOCAL_ROOTS or Path(parts[0]).is_dir()))


def bundle_format(directory: str | Path) -> str | None:
    """The ``format`` a folder's ``config.json`` names (``None`` without one, or when it is not JSON)."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        return None
    try:
        data = read_json(path, top=None)
    except (OSError, ValueError):
        return None
    return data.get("format") if isinstance(data, dict) else None


def resolve(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    token: str | None = None,
) -> Path:
    """The local folder of a bundle: ``name_or_path`` itself, a shipped bundle, or a downloaded hub repo.

    Raises ``FileNotFoundError`` (naming the shipped models) when it is none of these.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    text = str(name_or_path)
    if is_shipped_name(text):
        return shipped_root() / text
    if looks_local(text):
        raise FileNotFoundError(
            f"no run dir or bundle at {text}: not a folder here (a local path, so the hub is not asked; a hub repo "
            f"id is org/name with no local folder of that org; shipped: {', '.join(shipped_names()) or 'none'})"
        )
    if is_repo_id(text):
        try:
            return download(
                text, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
            )
        except (ModuleNotFoundError, ValueError):
            raise
        except Exception as error:  # offline, no such repo, no access: one clear line instead of a traceback
            raise FileNotFoundError(
                f"{text!r} is no local folder, and the hub could not provide it as a repo id "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
            ) from error
    raise FileNotFoundError(
        f"{text!r} is not a folder, not a shipped model (shipped: {', '.join(shipped_names()) or 'none'}) and "
        "not a hub repo id (org/name)"
    )


def _hub() -> Any:
    """The ``huggingface_hub`` module, or a ``ModuleNotFoundError`` that names the extra to install."""
    try:
        import huggingface_hub
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "loading from or pushing to the Hugging Face hub needs huggingface_hub: pip install 'fsq-toolkit[hub]'",
            name="huggingface_hub",
        ) from error
    return huggingface_hub


def download(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    token: str | None = None,
) -> Path:
    """Fetch a bundle's files (JSON, safetensors, the card) from a hub repo; returns the local snapshot folder."""
    folder = _hub().snapshot_download(
        repo_id=repo_id,
        revision=revision,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        local_files_only=local_files_only,
        token=token,
        allow_patterns=BUNDLE_PATTERNS,
    )
    if bundle_format(folder) not in FORMATS:
        raise ValueError(f"hub repo {repo_id} holds no fsq bundle (its config.json names none of {FORMATS})")
    return Path(folder)


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload an fsq bundle",
) -> str:
    """Upload a bundle folder to a hub model repo (created when missing); returns the repo's URL."""
    api = _hub().HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message, repo_type="model")
    return str(url)


def write_bundle_config(directory: str | Path, config: dict[str, Any], card: str | None = None) -> None:
    """A bundle's ``config.json`` and, when given, its model card ``README.md`` (the end of every save_pretrained)."""
    from fsq.io import write_json_atomic, write_text_atomic

    write_json_atomic(config, Path(directory) / CONFIG)
    if card is not None:
        write_text_atomic(card, Path(directory) / CARD)


def push_bundle(
    save: Callable[[str], None], repo_id: str, *, private: bool = False, token: str | None = None, what: str
) -> str:
    """``save(folder)`` a bundle into a temporary folder and upload it to ``repo_id`` (every push_to_hub)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        save(folder)
        return push_folder(folder, repo_id, private=private, token=token, commit_message=f"Upload fsq {what}")


def tokenizer_bundle(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """(folder, ``config.json``) of the tokenizer in a bundle folder: the folder itself for an ``fsq-tokenizer``
    bundle, its ``tokenizer/`` for an ``fsq-maskgit`` one (a MaskGIT bundle carries its tokenizer)."""
    directory = Path(directory)
    if bundle_format(directory) == "fsq-maskgit":
        directory = directory / "tokenizer"
    return directory, read_bundle_config(directory, "fsq-tokenizer")


def read_bundle_config(directory: str | Path, expected: str) -> dict[str, Any]:
    """A bundle's ``config.json``, which must name the format ``expected``."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{directory} holds no {CONFIG}: not an fsq bundle (write one with `fsq export`)")
    data = read_json(path, "the bundle's config", top=None)
    found = data.get("format") if isinstance(data, dict) else None
    if found != expected:
        raise ValueError(f"{directory} is an {found or 'unknown'} bundle, not an {expected} bundle")
    return data
