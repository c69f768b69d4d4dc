"""Token export for Stage II: shards of token grids in the smallest integer type, labels, and a manifest.

``export_tokens(run_dir, split, out_dir)`` tokenizes a split with a trained tokenizer (EMA weights; a run dir, or a
bundle that records its training config: a folder, a shipped name, a hub repo id) and writes
``shard_00000.safetensors`` ... (``tokens`` (n, *grid): (n, h, w) for images, (n, t) audio, (n, t, h, w) video;
``labels`` (n,) int64 when the data has labels) and
``manifest.json`` (codebook size, the grid's shape, dtype, counts, sha256 of each shard, the tokenizer run and step).
``load_tokens(out_dir)`` reads them back as int64, verifying the checksums and the grids' shape.

Codes that are not one small index per position (a residual quantizer's stages, a wide FSQ code) are exported
through a :class:`~fsq.generation.token_layout.TokenLayout` (``stages``, ``groups``): the grid gains an axis, the
codebook size is the layout's vocabulary, and the manifest records ``token_layout`` (and the tokenizer's own
``tokenizer_codebook_size``) so that the tokens decode.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from fsq import checkpoint as ckpt
from fsq import hub, rundir, storage
from fsq.config import TokenizerExperiment, from_dict, read_run_config
from fsq.counts import check_count, check_optional_count
from fsq.data.loader import SkipLog, iterate_batches
from fsq.data.signals import kind_of_dims, to_unit
from fsq.data.windows import WindowedItems
from fsq.generation.token_layout import TokenLayout, layout_for
from fsq.io import read_format_json, write_json_atomic
from fsq.models.autoencoder import Tokenizer
from fsq.progress import progress
from fsq.quantizers.finite import check_pending
from fsq.quantizers.registry import family_of
from fsq.stages.tokenizer import item_transform, load_run, open_split


def smallest_dtype(codebook_size: int) -> torch.dtype:
    """uint8 up to 256 codes, int16 up to 2**15, int32 up to 2**31, else int64."""
    for dtype, limit in ((torch.uint8, 2**8), (torch.int16, 2**15), (torch.int32, 2**31)):
        if codebook_size <= limit:
            return dtype
    return torch.int64


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_tokenizer(source: str | Path) -> tuple[TokenizerExperiment, Tokenizer, int, str]:
    """(config, tokenizer in eval mode, step, where it came from) of a tokenizer run dir, or of a tokenizer bundle
    (a folder, a shipped name such as ``mnist-fsq``, a hub repo id) whose ``metadata.config`` holds the config it
    was trained with (``fsq export`` writes it): the data to tokenize is that config's. A shipped bundle named by its
    name comes from that name (not a path of this machine)."""
    path = Path(source)
    if (path / rundir.CONFIG).is_file() and hub.bundle_format(path) is None:
        cfg = read_run_config(path)
        if not isinstance(cfg, TokenizerExperiment):
            raise ValueError(f"{source} is a {cfg.stage} run, not a tokenizer run")
        model, step = load_run(path)
        return cfg, model, step, str(path.resolve())
    directory = hub.resolve(source)
    metadata = hub.read_bundle_config(directory, "fsq-tokenizer").get("metadata", {})
    if not isinstance(metadata.get("config"), dict) or metadata["config"].get("stage") != TokenizerExperiment.stage:
        raise ValueError(
            f"{source}: this tokenizer bundle does not record the config it was trained with (metadata.config), so "
            "it cannot say which data to tokenize; tokenize with its run dir, or export the run with `fsq export`"
        )
    cfg = from_dict(TokenizerExperiment, metadata["config"])
    origin = str(source) if hub.is_shipped_name(source) else str(directory.resolve())  # a shipped name: by its name
    return cfg, Tokenizer.from_pretrained(directory), int(metadata.get("step", 0)), origin


def export_tokens(
    run_dir: str | Path,
    split: str,
    out_dir: str | Path,
    *,
    shard_size: int = 10_000,
    batch_size: int = 256,
    limit: int | None = None,
    workers: int | None = None,
    show_progress: bool | None = None,
    stages: int | None = None,
    groups: int = 1,
    windows: bool = False,
) -> dict[str, Any]:
    """Tokenize ``split`` of the run's data source (its first ``limit`` images); returns the manifest.

    ``stages`` / ``groups``: the token layout (:func:`tokenizer_layout`; the defaults give one token per index, all
    stages of a residual quantizer). ``windows``: every whole crop of each clip of a time signal (the tokenizer's
    ``data.length``, side by side; :class:`~fsq.data.windows.WindowedItems`), not only its centred one.

    The split is streamed in batches (centre crops for streamed sources, decoded in ``workers`` DataLoader
    workers, default ``data.workers``), so memory is bounded by ``shard_size`` token grids; unreadable images are
    left out and listed in the manifest's ``skipped``. An export that fails (a full disk: any writer's error, with
    the space left) removes the shards it wrote, and ``out_dir`` when it created it.
    """
    shard_size = check_count("shard_size (--shard-size)", shard_size)
    batch_size = check_count("batch_size", batch_size)
    check_optional_count("limit", limit)
    check_optional_count("workers", workers, 0)
    with storage.new_files(out_dir, what="token shards"):
        sizes = {"shard_size": shard_size, "batch_size": batch_size}
        return _write_tokens(
            run_dir,
            split,
            out_dir,
            **sizes,
            limit=limit,
            workers=workers,
            show_progress=show_progress,
            stages=stages,
            groups=groups,
            windows=windows,
        )


@torch.no_grad()
def _write_tokens(
    run_dir: str | Path,
    split: str,
    out_dir: str | Path,
    *,
    shard_size: int = 10_000,
    batch_size: int = 256,
    limit: int | None = None,
    workers: int | None = None,
    show_progress: bool | None = None,
    stages: int | None = None,
    groups: int = 1,
    windows: bool = False,
) -> dict[str, Any]:
    """:func:`export_tokens` without the clean-up of a failed write."""
    cfg, model, step, origin = open_tokenizer(run_dir)
    try:
        layout = tokenizer_layout(model.spec, stages, groups)
    except ValueError as error:
        raise ValueError(f"{origin}: {error}") from None
    items = open_split(cfg, split, limit)
    if windows:
        if cfg.data.length is None:
            raise ValueError(
                f"{origin}: windows cut clips of a time signal into crops of the tokenizer's data.length, and this "
                f"tokenizer has none (its data: {cfg.data.source}); leave windows off"
            )
        items = WindowedItems(items, cfg.data.length)
    workers = cfg.data.workers if workers is None else workers
    transform = item_transform(cfg, items, train=False)
    dtype = smallest_dtype(layout.vocabulary)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, Any]] = []
    tokens: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    log = SkipLog(items.source)

    def write_shard() -> None:
        check_pending(model)  # a quantizer's deferred NaN/Inf check raises before its tokens are written
        tensors = {"tokens": torch.cat(tokens)[:shard_size]}
        if items.has_labels:
            tensors["labels"] = torch.cat(labels)[:shard_size]
        path = out_dir / f"shard_{len(shards):05d}.safetensors"
        ckpt.save_safetensors_atomic(tensors, path)
        shards.append({"file": path.name, "count": int(tensors["tokens"].shape[0]), "sha256": _sha256(path)})
        rest = torch.cat(tokens)[shard_size:], (torch.cat(labels)[shard_size:] if items.has_labels else None)
        tokens[:] = [rest[0]] if len(rest[0]) else []
        labels[:] = [rest[1]] if rest[1] is not None and len(rest[1]) else []

    batches = iterate_batches(items, transform, range(len(items)), batch_size, workers=workers, log=log)
    total = -(-len(items) // batch_size)
    batches = progress(batches, total=total, desc=f"tokenizing {split}", enabled=show_progress, unit="batch")
    for _, images, batch_labels, valid in batches:  # streamed: memory bounded by the shard size
        if not bool(valid.any()):
            continue
        tokens.append(layout.to_tokens(model.tokenize(to_unit(images[valid]))).to(dtype))
        labels.append(batch_labels[valid].long())
        while sum(len(t) for t in tokens) >= shard_size:
            write_shard()
    if tokens:
        write_shard()
    manifest = {
        "format": "fsq-tokens",
        "version": 1,
        "tokenizer_run": origin,
        "tokenizer_step": step,
        "source": cfg.data.source,
        "split": split,
        "codebook_size": layout.vocabulary,
        **model.spec.quantizer.report(),  # "quantizer" (its kind) and "levels" (None without levels)
        "token_grid": list(layout.grid(model.spec.grid_shape)),
        **layout_record(layout, model.codebook_size),
        "windows": {"length": cfg.data.length, "hop": cfg.data.length} if windows else None,
        "dtype": str(dtype).removeprefix("torch."),
        "num_images": sum(s["count"] for s in shards),
        "skipped": sorted(log.skipped),
        "has_labels": items.has_labels,
        "class_names": items.class_names,
        "shards": shards,
    }
    if model.spec.dims != 2:  # audio, video: the kind and rate of the signals the grids come from
        manifest["signal"] = kind_of_dims(model.spec.dims).name
        manifest["rate"] = getattr(items, "rate", None)
    write_json_atomic(manifest, out_dir / "manifest.json")
    return manifest


def tokenizer_layout(spec: Any, stages: int | None = None, groups: int = 1) -> TokenLayout:
    """The token layout of a tokenizer (its :class:`~fsq.models.autoencoder.TokenizerSpec`) for ``stages`` and
    ``groups`` (:func:`fsq.generation.token_layout.layout_for`; its quantizer is built to ask its codebook size and
    stages); a ValueError naming the quantizer for what cannot be laid out."""
    quantizer = spec.quantizer.build(channel_axis=1)
    per_token = family_of(quantizer).indices_per_token(quantizer)
    num_stages = getattr(quantizer, "num_stages", None)
    describe = f"its quantizer ({spec.quantizer.describe()})"
    if per_token != 1 and num_stages != per_token:
        raise ValueError(f"{describe} gives {per_token} indices per token position, not as stages a layout keeps")
    return layout_for(
        int(quantizer.codebook_size),
        levels=spec.quantizer.report().get("levels"),
        num_stages=num_stages,
        stages=stages,
        groups=groups,
        grid_rank=len(spec.grid_shape),
        describe=describe,
    )


def layout_record(layout: TokenLayout, codebook_size: int) -> dict[str, Any]:
    """What a manifest records of a layout: nothing for tokens that are the indices, else ``token_layout`` and the
    tokenizer's ``tokenizer_codebook_size``."""
    if layout.recorded is None:
        return {}
    return {"token_layout": layout.recorded, "tokenizer_codebook_size": codebook_size}


def check_grid(file: Path | str, tokens: torch.Tensor, grid: list[int] | tuple[int, ...]) -> None:
    """A ValueError naming ``file`` and both shapes unless ``tokens`` is (N, *grid)."""
    if tuple(tokens.shape[1:]) != tuple(grid):
        raise ValueError(
            f"{file}: token grids of shape {tuple(tokens.shape[1:])} (tokens {tuple(tokens.shape)}), but the grid "
            f"expected is {tuple(grid)}: tokens of another tokenizer, or a changed file"
        )


def load_tokens(directory: str | Path) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """(tokens int64 (N, *grid), labels int64 (N,) or None, manifest), checksums and the grids' shape (the
    manifest's ``token_grid``: ``[h, w]`` for images, ``[t]`` for audio, ``[t, h, w]`` for video) verified."""
    directory = Path(directory)
    manifest = read_format_json(directory / "manifest.json", "fsq-tokens", "export tokens with `fsq tokenize`")
    if not manifest.get("shards"):
        raise ValueError(
            f"{directory / 'manifest.json'} lists no token grids: the {manifest.get('split')!r} split of "
            f"{manifest.get('source')!r} gave 0 images ({len(manifest.get('skipped', []))} skipped as unreadable); "
            "nothing to train on"
        )
    tokens, labels = [], []
    for shard in manifest["shards"]:
        file = directory / shard["file"]
        if _sha256(file) != shard["sha256"]:
            raise ckpt.CheckpointError(f"{file} does not match its checksum in the manifest (corrupt or changed)")
        tensors = ckpt.load_safetensors(file)
        check_grid(file, tensors["tokens"], manifest["token_grid"])
        tokens.append(tensors["tokens"].long())
        if "labels" in tensors:
            labels.append(tensors["labels"])
    return torch.cat(tokens), (torch.cat(labels) if labels else None), manifest
