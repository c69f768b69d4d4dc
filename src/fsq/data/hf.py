"""Local Hugging Face ``datasets`` as a map-style image collection, read without the network.

``hf:PATH`` names a directory on disk, one of:

- a dataset saved with ``save_to_disk`` (``load_from_disk``): a ``DatasetDict`` (``split`` picks one of its
  splits; ``all`` joins them) or a single ``Dataset`` (``split`` must be ``all``);
- a folder of ``.parquet`` files: ``split="all"`` reads them all, otherwise the files whose names start with the
  split (``train-00000-of-00004.parquet``) or that sit in a ``{split}/`` sub-folder;
- anything else is read as an ``imagefolder`` (images in class sub-folders, optionally under ``train/``, ``test/``
  ...; the labels are the folder names).

The image column is the first column of the ``Image`` feature type, the label the first ``ClassLabel`` column (or
an integer ``label``/``labels`` column). Images are read as encoded bytes and decoded by
:func:`fsq.data.images.decode_image`, so pixels follow the same 8-bit rules as image folders. Rows are read on
demand from the memory-mapped Arrow files, in DataLoader workers. ``HF_DATASETS_OFFLINE`` and ``HF_HUB_OFFLINE``
are set to 1 (unless already set) before ``datasets`` is imported, so a hub name fails at once instead of
retrying over the network; ``imagefolder`` and parquet caches go to ``cache_dir`` (default: ``datasets``' own).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from fsq.data.images import _DECODE_ERRORS, decode_image
from fsq.data.items import ImageItems, UnreadableItem
from fsq.io import read_json


def _datasets():
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError as error:
        raise ValueError("hf: sources need the `datasets` package: pip install 'fsq-toolkit[data]'") from error
    return datasets


# fsq's split names and the Hugging Face ones (imagefolder names a val/ folder's split "validation")
SPLIT_ALIASES = {"val": "validation", "validation": "val"}


def _split_name(split: str, available: list[str]) -> str:
    """``split`` itself when the dataset has it, else its alias (``val`` <-> ``validation``) when that exists."""
    alias = SPLIT_ALIASES.get(split)
    return alias if split not in available and alias in available else split


def _pick_split(datasets: Any, loaded: Any, split: str, path: str) -> Any:
    if isinstance(loaded, datasets.DatasetDict):
        if split == "all":
            return datasets.concatenate_datasets([loaded[name] for name in sorted(loaded)])
        split = _split_name(split, list(loaded))
        if split not in loaded:
            raise ValueError(f"hf:{path} has splits {sorted(loaded)}, not {split!r} (or use 'all')")
        return loaded[split]
    if split != "all":
        raise ValueError(f"hf:{path} is a single dataset without splits: use split 'all', not {split!r}")
    return loaded


def load_local(path: str, split: str, cache_dir: str | None = None) -> Any:
    """The ``datasets.Dataset`` of ``split`` at ``path`` (see the module docstring)."""
    datasets = _datasets()
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"hf:{path}: not a directory (only local Hugging Face datasets are read)")
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        return _pick_split(datasets, _load_from_disk(datasets, root), split, path)
    parquet = sorted(root.rglob("*.parquet"))
    if parquet:
        if split != "all":
            parquet = [p for p in parquet if p.name.startswith(split) or split in p.relative_to(root).parts[:-1]]
        if not parquet:
            raise ValueError(f"hf:{path} holds no parquet files of split {split!r}")
        files = {"data": [str(p) for p in parquet]}
        return datasets.load_dataset("parquet", data_files=files, split="data", cache_dir=cache_dir)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(root), cache_dir=cache_dir)
    return _pick_split(datasets, loaded, split, path)


def _load_from_disk(datasets: Any, root: Path) -> Any:
    """``datasets.load_from_disk``, with its JSON files checked first and a damaged Arrow file named: ``datasets``
    reports a broken ``dataset_dict.json`` or ``state.json`` and a truncated ``.arrow`` file without its path."""
    folders = [root]
    if (root / "dataset_dict.json").is_file():
        listing = read_json(root / "dataset_dict.json", "a saved DatasetDict's split list", required={"splits": list})
        folders = [root / str(name) for name in listing["splits"]]
    for folder in folders:
        read_json(folder / "state.json", "a saved Dataset's state", required={"_data_files": list})
        if (folder / "dataset_info.json").is_file():
            read_json(folder / "dataset_info.json", "a saved Dataset's features")
    try:
        return datasets.load_from_disk(str(root))
    except Exception as error:  # pyarrow's and datasets' errors name no file: find the one that fails to open
        broken = _broken_arrow(folders)
        where = f"{broken[0]} is damaged or cut short ({broken[1]})" if broken else f"{type(error).__name__}: {error}"
        raise ValueError(f"hf:{root}: cannot load the saved dataset: {where}") from error


def _broken_arrow(folders: list[Path]) -> tuple[Path, str] | None:
    """The first ``.arrow`` file of ``folders`` that pyarrow cannot read through, with pyarrow's reason."""
    import pyarrow as pa

    for folder in folders:
        for entry in read_json(folder / "state.json")["_data_files"]:
            path = folder / str(entry.get("filename", "")) if isinstance(entry, dict) else folder
            try:
                with pa.memory_map(str(path)) as source:
                    pa.ipc.open_stream(source).read_all()
            except (OSError, pa.ArrowException) as error:
                return path, str(error)
    return None


class HFItems(ImageItems):
    """A local Hugging Face dataset's images and labels (see the module docstring)."""

    def __init__(
        self,
        path: str,
        split: str = "all",
        *,
        channels: int = 3,
        limit: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        datasets = _datasets()
        ds = load_local(path, split, cache_dir)
        features = ds.features
        images = [name for name, f in features.items() if isinstance(f, datasets.Image)]
        if not images:
            raise ValueError(f"hf:{path} has no column of the Image feature type (columns: {list(features)})")
        self.image_column = images[0]
        labels = [name for name, f in features.items() if isinstance(f, datasets.ClassLabel)]
        if not labels:
            labels = [
                n for n in ("label", "labels") if n in features and "int" in str(getattr(features[n], "dtype", ""))
            ]
        self.label_column = labels[0] if labels else None
        self.class_names = None
        if self.label_column is not None and isinstance(features[self.label_column], datasets.ClassLabel):
            self.class_names = list(features[self.label_column].names)
        ds = ds.cast_column(self.image_column, datasets.Image(decode=False))
        if limit is not None:
            ds = ds.select(range(min(limit, len(ds))))
        if len(ds) == 0:
            raise ValueError(f"hf:{path} split {split!r} is empty")
        columns = [self.image_column] + ([self.label_column] if self.label_column else [])
        self.ds = ds.select_columns(columns)
        self.source, self.split, self.channels = path, split, channels
        self.has_labels = self.label_column is not None
        self.skipped = []

    def __len__(self) -> int:
        return len(self.ds)

    def read(self, index: int) -> torch.Tensor:
        cell = self.ds[index][self.image_column]
        try:
            if cell.get("bytes"):
                return decode_image(io.BytesIO(cell["bytes"]), channels=self.channels)
            if cell.get("path"):
                return decode_image(Path(cell["path"]), channels=self.channels)
            raise ValueError("the row holds neither image bytes nor a path")
        except _DECODE_ERRORS as error:
            raise UnreadableItem(self.name(index), str(error)) from error

    def label(self, index: int) -> int:
        if self.label_column is None:
            return -1
        value = self.ds[index][self.label_column]
        return -1 if value is None else int(value)

    def name(self, index: int) -> str:
        return f"hf:{self.source}[{self.split}][{index}]"

    def fingerprint(self, count: int) -> str:
        return f"{self.ds._fingerprint}-{count}"
