"""Sampling from a trained MaskGIT: token grids by the MaskGIT sampler, decoded by the Stage I tokenizer.

``generate`` draws token grids (batch ``b`` from a generator seeded by ``(seed, b)``, so results do not depend on
the device's RNG), ``decode`` turns them into images, ``write_samples`` is ``fsq sample``: PNG grids per class
and an ``.npz`` of images, tokens and labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq.generation import sample
from fsq.grids import save_grid
from fsq.models.maskgit import MaskGIT
from fsq.stages import maskgit, tokenizer


@torch.no_grad()
def generate(
    model: MaskGIT,
    labels: torch.Tensor | None,
    *,
    num: int,
    steps: int = 12,
    choice_temperature: float = 4.5,
    temperature: float = 1.0,
    guidance: float = 0.0,
    seed: int = 0,
    batch_size: int = 250,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``num`` token grids (num, h, w); batch ``b`` draws from a generator seeded by ``(seed, b)``."""
    model = model.to(device).eval()
    spec = model.spec
    out = []
    for b, start in enumerate(range(0, num, batch_size)):
        n = min(batch_size, num - start)
        batch_labels = labels[start : start + n].to(device) if labels is not None else None
        initial = torch.full((n, spec.num_tokens), model.mask_id, dtype=torch.long, device=device)
        result = sample(
            model.tokens_to_logits(batch_labels),
            initial,
            mask_id=model.mask_id,
            steps=steps,
            choice_temperature=choice_temperature,
            temperature=temperature,
            guidance=guidance,
            uncond_tokens_to_logits=model.tokens_to_logits(None) if guidance != 0 else None,
            generator=torch.Generator().manual_seed(seed * 100_003 + b),
        )
        out.append(result.tokens.cpu())
    return torch.cat(out).view(num, spec.grid_height, spec.grid_width)


@torch.no_grad()
def decode(tokenizer, tokens: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Images in [0, 1] (float32, CPU) of token grids."""
    tokenizer = tokenizer.to(device).eval()
    parts = [tokenizer.decode_indices(t.to(device)).float().clamp(0, 1).cpu() for t in tokens.split(batch_size)]
    return torch.cat(parts)


def class_labels(num: int, num_classes: int) -> torch.Tensor | None:
    """Labels cycling over the classes (equal counts), or None for an unconditional model."""
    return torch.arange(num) % num_classes if num_classes else None


def save_class_grid(images: torch.Tensor, labels: torch.Tensor | None, per_class: int, path: Path) -> None:
    """A PNG with one row per class (``per_class`` samples each; unlabelled: up to 10 rows), upscaled for viewing."""
    if labels is None:
        rows = [images[i * per_class : (i + 1) * per_class] for i in range(min(10, len(images) // per_class))]
    else:
        rows = [images[labels == c][:per_class] for c in sorted(set(labels.tolist()))]
    save_grid(rows, path, columns=per_class, fit=("width", 512))


@torch.no_grad()
def write_samples(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    classes: list[int] | None = None,
    num: int = 16,
    steps: int | None = None,
    guidance: float = 0.0,
    choice_temperature: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Path:
    """``num`` samples per class of a MaskGIT run: ``class_{c}.png`` grids and ``samples.npz`` (images, tokens, labels).

    Unset ``steps`` / ``choice_temperature`` take the run's ``eval`` settings. Returns the ``.npz`` path.
    """
    model, _, cfg = maskgit.load_run(run_dir)
    tokenizer_model, _ = tokenizer.load_run(cfg.data.tokenizer)
    device = torch.device(device)
    num_classes = model.spec.num_classes
    classes = list(range(num_classes)) if classes is None and num_classes else classes
    if classes and any(not 0 <= c < num_classes for c in classes):
        raise ValueError(f"classes must be in [0, {num_classes - 1}] for this model, got {classes}")
    labels = torch.tensor(classes).repeat_interleave(num) if classes else None
    total = num * len(classes) if classes else num
    tokens = generate(
        model,
        labels,
        num=total,
        steps=steps or cfg.eval.steps,
        choice_temperature=cfg.eval.choice_temperature if choice_temperature is None else choice_temperature,
        temperature=cfg.eval.temperature,
        guidance=guidance,
        seed=seed,
        batch_size=cfg.eval.batch_size,
        device=device,
    )
    images = decode(tokenizer_model, tokens, cfg.eval.batch_size, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_row = min(num, 10)
    groups: list[int | None] = list(classes) if classes else [None]
    for c in groups:
        chosen = images if c is None else images[labels == c]
        rows = [chosen[i : i + per_row] for i in range(0, chosen.shape[0], per_row)]
        grid_labels = torch.arange(len(rows)).repeat_interleave(per_row)[: chosen.shape[0]]
        save_class_grid(chosen, grid_labels, per_row, out_dir / (f"class_{c}.png" if c is not None else "samples.png"))
    path = out_dir / "samples.npz"
    uint8 = (images * 255).round().to(torch.uint8).numpy()
    arrays: dict[str, Any] = {"images": uint8, "tokens": tokens.numpy()}  # Any: savez_compressed has typed kwargs
    if labels is not None:
        arrays["labels"] = labels.numpy()
    tmp = out_dir / ".samples.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path
