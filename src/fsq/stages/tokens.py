"""Token export for Stage II: shards of token grids in the smallest integer type, labels, and a manifest.

``export_tokens(run_dir, split, out_dir)`` tokenizes a split with a trained tokenizer (EMA weights) and writes
``shard_00000.safetensors`` ... (``tokens`` (n, h, w), ``labels`` (n,) int64 when the data has labels) and
``manifest.json`` (codebook size, grid, dtype, counts, sha256 of each shard, the tokenizer run and step).
``load_tokens(out_dir)`` reads them back as int64, verifying the checksums.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from fsq import checkpoint as ckpt
from fsq.config import TokenizerExperiment, read_run_config
from fsq.io import read_format_json, write_json_atomic
from fsq.stages.tokenizer import load_run, load_split


def smallest_dtype(codebook_size: int) -> torch.dtype:
    """uint8 up to 256 codes, int16 up to 2**15, int32 up to 2**31, else int64."""
    for dtype, limit in ((torch.uint8, 2**8), (torch.int16, 2**15), (torch.int32, 2**31)):
        if codebook_size <= limit:
            return dtype
    return torch.int64


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@torch.no_grad()
def export_tokens(
    run_dir: str | Path,
    split: str,
    out_dir: str | Path,
    *,
    shard_size: int = 10_000,
    batch_size: int = 256,
    limit: int | None = None,
) -> dict[str, Any]:
    """Tokenize ``split`` of the run's data source (its first ``limit`` images); returns the manifest."""
    cfg = read_run_config(run_dir)
    if not isinstance(cfg, TokenizerExperiment):
        raise ValueError(f"{run_dir} is a {cfg.stage} run, not a tokenizer run")
    model, step = load_run(run_dir)
    data = load_split(cfg, split, limit)
    dtype = smallest_dtype(model.codebook_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, Any]] = []
    for shard_index, start in enumerate(range(0, data.images.shape[0], shard_size)):
        images = data.images[start : start + shard_size]
        tokens = torch.cat([model.tokenize(batch.float().div(255)) for batch in images.split(batch_size)]).to(dtype)
        tensors = {"tokens": tokens}
        if data.labels is not None:
            tensors["labels"] = data.labels[start : start + shard_size].long()
        path = out_dir / f"shard_{shard_index:05d}.safetensors"
        ckpt.save_safetensors_atomic(tensors, path)
        shards.append({"file": path.name, "count": int(tokens.shape[0]), "sha256": _sha256(path)})
    manifest = {
        "format": "fsq-tokens",
        "version": 1,
        "tokenizer_run": str(Path(run_dir).resolve()),
        "tokenizer_step": step,
        "source": cfg.data.source,
        "split": split,
        "codebook_size": model.codebook_size,
        "quantizer": model.spec.quantizer,
        "levels": model.spec.levels if model.spec.quantizer == "fsq" else None,
        "token_grid": [model.spec.token_grid, model.spec.token_grid],
        "dtype": str(dtype).removeprefix("torch."),
        "num_images": sum(s["count"] for s in shards),
        "has_labels": data.labels is not None,
        "class_names": data.class_names,
        "shards": shards,
    }
    write_json_atomic(manifest, out_dir / "manifest.json")
    return manifest


def load_tokens(directory: str | Path) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """(tokens int64 (N, h, w), labels int64 (N,) or None, manifest), checksums verified."""
    directory = Path(directory)
    manifest = read_format_json(directory / "manifest.json", "fsq-tokens", "export tokens with `fsq tokenize`")
    tokens, labels = [], []
    for shard in manifest["shards"]:
        file = directory / shard["file"]
        if _sha256(file) != shard["sha256"]:
            raise ckpt.CheckpointError(f"{file} does not match its checksum in the manifest (corrupt or changed)")
        tensors = ckpt.load_safetensors(file)
        tokens.append(tensors["tokens"].long())
        if "labels" in tensors:
            labels.append(tensors["labels"])
    return torch.cat(tokens), (torch.cat(labels) if labels else None), manifest
