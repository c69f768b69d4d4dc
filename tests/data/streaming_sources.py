"""Small generated inputs for the streaming tests: an image folder, WebDataset shards and local HF datasets."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("cats", "dogs")


def make_folder(root: Path, train_per_class: int = 12, test_per_class: int = 4, seed: int = 0) -> Path:
    """``root/{train,test}/{cats,dogs}/NNN.png|jpg``: random RGB images of several sizes (not square)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                height, width = 18 + int(rng.integers(0, 10)), 20 + int(rng.integers(0, 14))
                base = np.linspace(0, 255, width, dtype=np.float64)[None, :, None] * (0.5 + 0.5 * k)
                pixels = np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
                suffix = ".jpg" if i % 5 == 4 else ".png"
                Image.fromarray(pixels).save(folder / f"{i:03d}{suffix}")
    return root


def make_shards(folder: Path, out: Path, per_shard: int = 10) -> Path:
    """WebDataset shards ``out/{split}-NNNNNN.tar`` of ``folder`` (``key.png``/``key.jpg`` + ``key.cls``)."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        files = sorted((folder / split).rglob("*.*"))
        for shard, start in enumerate(range(0, len(files), per_shard)):
            with tarfile.open(out / f"{split}-{shard:06d}.tar", "w") as tar:
                for n, path in enumerate(files[start : start + per_shard]):
                    key = f"{start + n:06d}"
                    label = str(CLASSES.index(path.parent.name)).encode()
                    for name, data in ((f"{key}{path.suffix}", path.read_bytes()), (f"{key}.cls", label)):
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
    return out


def make_hf_saved(folder: Path, out: Path) -> Path:
    """A ``DatasetDict`` (train, test) of ``folder`` saved with ``save_to_disk`` (image bytes embedded)."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(CLASSES))})
    splits = {}
    for split in ("train", "test"):
        files = sorted((folder / split).rglob("*.*"))
        rows = {"image": [str(p) for p in files], "label": [CLASSES.index(p.parent.name) for p in files]}
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(out))
    return out
