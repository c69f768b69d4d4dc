"""Sampling from a trained MaskGIT: token grids by the MaskGIT sampler, decoded by the Stage I tokenizer.

``generate`` draws token grids (batch ``b`` from a generator seeded by ``(seed, b)``, so results do not depend on
the device's RNG), ``decode`` turns them into images. :class:`MaskGITPipeline` holds a MaskGIT, its tokenizer and
its sampling defaults; it loads from a run dir, a bundle, a shipped name or a hub repo id and saves as a bundle
(``fsq export``). ``write_samples`` is ``fsq sample``: PNG grids per class and an ``.npz`` of images, tokens and
labels.

A MaskGIT bundle (safetensors + JSON, nothing pickled)::

    config.json        {"format": "fsq-maskgit", "version": 1, "spec": MaskGITSpec, "sampling": {...},
                        "class_names": [...] | null, "metadata": {provenance: run, step, config}}
    model.safetensors  the MaskGIT's weights (a run's EMA weights)
    tokenizer/         its tokenizer, a tokenizer bundle (``Tokenizer.save_pretrained``)
    README.md          the model card (``fsq export`` writes it)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsq import hub, rundir, storage
from fsq.bundles import build_section, load_into
from fsq.checkpoint import load_safetensors, save_safetensors_atomic
from fsq.clips import save_clips
from fsq.data.signal_files import write_wav
from fsq.generation import sample
from fsq.generation.conditioning import conditioned_initial, given_positions
from fsq.generation.token_layout import TokenLayout, layout_of
from fsq.grids import save_grid
from fsq.io import read_json
from fsq.models.autoencoder import Tokenizer
from fsq.models.maskgit import MaskGIT, MaskGITSpec
from fsq.progress import progress
from fsq.stages import maskgit


@torch.no_grad()
def generate_for_eval(
    model: MaskGIT,
    labels: torch.Tensor | None,
    settings: Any,
    guidance: float,
    device: torch.device | str,
    show_progress: bool | None = False,
) -> torch.Tensor:
    """The token grids an evaluation samples at one guidance weight: :func:`generate` with the sample count,
    decoding steps, temperatures, seed and batch size of ``settings`` (a MaskGIT config's ``eval`` section)."""
    return generate(
        model,
        labels,
        num=settings.num_samples,
        steps=settings.steps,
        choice_temperature=settings.choice_temperature,
        temperature=settings.temperature,
        guidance=guidance,
        seed=settings.seed,
        batch_size=settings.batch_size,
        device=device,
        show_progress=show_progress,
    )


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
    show_progress: bool | None = False,
    condition: torch.Tensor | None = None,
    condition_frames: int = 0,
) -> torch.Tensor:
    """``num`` token grids (num, h, w); batch ``b`` draws from a generator seeded by ``(seed, b)``;
    ``show_progress``: a progress bar over the batches (rank 0; None: on a terminal).

    Frame prediction: ``condition`` (num, t, h, w) token grids whose first ``condition_frames`` latent frames are
    given; the sampler keeps them and fills in the rest."""
    model = model.to(device).eval()
    spec = model.spec
    given = given_positions(spec.grid_shape, condition_frames)
    if given and (condition is None or tuple(condition.shape) != (num, *spec.grid_shape)):
        shape = None if condition is None else tuple(condition.shape)
        raise ValueError(
            f"condition_frames={condition_frames} needs condition token grids of shape {(num, *spec.grid_shape)}, "
            f"got {shape}"
        )
    out = []
    starts = range(0, num, batch_size)
    for b, start in enumerate(
        progress(starts, total=len(starts), desc="sampling", enabled=show_progress, unit="batch")
    ):
        n = min(batch_size, num - start)
        batch_labels = labels[start : start + n].to(device) if labels is not None else None
        if given and condition is not None:
            initial = conditioned_initial(condition[start : start + n], given, model.mask_id).to(device)
        else:
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
    return torch.cat(out).view(num, *spec.grid_shape)


@torch.no_grad()
def decode(
    tokenizer, tokens: torch.Tensor, batch_size: int, device: torch.device, layout: TokenLayout | None = None
) -> torch.Tensor:
    """Images (or signals) in [0, 1] (float32, CPU) of token grids; ``layout``: how the tokens map to the
    tokenizer's indices (the MaskGIT spec's, :func:`fsq.generation.token_layout.layout_of`; None: they are)."""
    tokenizer = tokenizer.to(device).eval()
    indices = layout.to_indices(tokens) if layout is not None else tokens
    parts = [tokenizer.decode_indices(t.to(device)).float().clamp(0, 1).cpu() for t in indices.split(batch_size)]
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


@dataclass(frozen=True)
class SamplingDefaults:
    """How a MaskGIT samples unless told otherwise (a run's ``eval`` settings)."""

    steps: int = 12
    choice_temperature: float = 4.5
    temperature: float = 1.0
    guidance: float = 0.0
    batch_size: int = 250
    condition_frames: int = 0  # frame prediction: the leading latent frames given (``masking.condition_frames``)


def checked_sampling(settings: dict[str, Any]) -> SamplingDefaults:
    """The :class:`SamplingDefaults` of a bundle's ``sampling`` section, refusing values no sampler can use."""
    sampling = SamplingDefaults(**settings)
    for key in ("steps", "batch_size"):
        if getattr(sampling, key) < 1:
            raise ValueError(f"{key} is {getattr(sampling, key)}, must be >= 1")
    if sampling.condition_frames < 0:
        raise ValueError(f"condition_frames is {sampling.condition_frames}, must be >= 0")
    for key in ("choice_temperature", "temperature", "guidance"):
        if getattr(sampling, key) < 0:
            raise ValueError(f"{key} is {getattr(sampling, key)}, must be >= 0")
    return sampling


def run_metadata(cfg: Any, step: int, run_dir: str | Path) -> dict[str, Any]:
    """Provenance a bundle keeps: the stage, run name and dir, step, fsq version and the run's whole config."""
    from fsq import __version__

    return {
        "stage": cfg.stage,
        "run_name": cfg.name,
        "run": str(Path(run_dir).resolve()),
        "step": step,
        "fsq_version": __version__,
        "config": asdict(cfg),
    }


def is_run_dir(source: str | Path) -> bool:
    """Whether ``source`` is a run dir (it holds a ``config.yaml`` and is not a bundle)."""
    path = Path(source)
    return (path / rundir.CONFIG).is_file() and hub.bundle_format(path) is None


@dataclass
class MaskGITPipeline:
    """A class-conditional MaskGIT with its tokenizer and sampling defaults: ``sample(classes)`` gives images.

    ``MaskGITPipeline.from_pretrained("mnist-maskgit-fsq")`` loads a shipped model (also: a run dir, a bundle
    folder, or a hub repo id with the ``hub`` extra); ``save_pretrained(dir)`` / ``push_to_hub(repo_id)`` write it.
    """

    model: MaskGIT
    tokenizer: Tokenizer
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    class_names: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.model.spec.num_classes

    @property
    def card_example(self) -> dict[str, Any]:
        """``fsq.inference.export.example_settings`` arguments: the class labels the card's example samples."""
        return {"num_classes": self.num_classes}

    @classmethod
    def from_run(cls, run_dir: str | Path) -> MaskGITPipeline:
        """A MaskGIT run's newest EMA weights, its (embedded) tokenizer and its ``eval`` sampling settings."""
        model, step, cfg = maskgit.load_run(run_dir)
        tokenizer, tokenizer_step, _, tokenizer_run = maskgit.run_tokenizer(run_dir, cfg)
        e = cfg.eval
        condition = cfg.masking.condition_frames
        sampling = SamplingDefaults(e.steps, e.choice_temperature, e.temperature, 0.0, e.batch_size, condition)
        folder = Path(cfg.data.tokens) if cfg.data.tokens else Path(run_dir) / "tokens" / cfg.data.train_split
        manifest = {}
        if (folder / "manifest.json").is_file():
            manifest = read_json(folder / "manifest.json", "the token manifest")
        metadata = {
            **run_metadata(cfg, step, run_dir),
            "tokenizer_run": tokenizer_run,
            "tokenizer_step": tokenizer_step,
            **({"rate": manifest["rate"]} if manifest.get("rate") else {}),  # audio, video: samples or frames a second
        }
        names = manifest.get("class_names")
        return cls(model, tokenizer, sampling, names, metadata)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        map_location: str | torch.device = "cpu",
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        token: str | None = None,
    ) -> MaskGITPipeline:
        """Load a run dir, a bundle folder, a shipped name or a hub repo id (safetensors only, nothing unpickled)."""
        if is_run_dir(name_or_path):
            return cls.from_run(name_or_path)
        directory = hub.resolve(
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        config = hub.read_bundle_config(directory, "fsq-maskgit")
        path, spec, settings = directory / hub.CONFIG, config.get("spec", {}), config.get("sampling", {})
        model = build_section(path, "spec", spec, MaskGITSpec, lambda: MaskGIT(MaskGITSpec(**spec)))
        weights = directory / "model.safetensors"
        load_into(model, load_safetensors(weights, map_location), weights, str(path))
        tokenizer = Tokenizer.from_pretrained(directory / "tokenizer", map_location)
        sampling = build_section(path, "sampling", settings, SamplingDefaults, lambda: checked_sampling(settings))
        return cls(model.eval(), tokenizer, sampling, config.get("class_names"), config.get("metadata", {}))

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> None:
        """Write the bundle: ``config.json``, ``model.safetensors``, ``tokenizer/`` and the card ``README.md``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_safetensors_atomic(self.model.state_dict(), directory / "model.safetensors")
        self.tokenizer.save_pretrained(directory / "tokenizer")
        config = {
            "format": "fsq-maskgit",
            "version": 1,
            "spec": self.model.spec.to_dict(),
            # condition_frames only where set: bundles of other MaskGITs stay as older fsq versions read them
            "sampling": {k: v for k, v in asdict(self.sampling).items() if k != "condition_frames" or v},
            "class_names": self.class_names,
            "metadata": self.metadata,
        }
        hub.write_bundle_config(directory, config, card)

    def push_to_hub(
        self, repo_id: str, *, private: bool = False, token: str | None = None, card: str | None = None
    ) -> str:
        """Save the bundle to a temporary folder and upload it to the hub repo ``repo_id``; returns its URL."""
        save = lambda folder: self.save_pretrained(folder, card=card)  # noqa: E731
        return hub.push_bundle(save, repo_id, private=private, token=token, what="MaskGIT")

    def to(self, device: torch.device | str) -> MaskGITPipeline:
        self.model.to(device)
        self.tokenizer.to(device)
        return self

    def generate(
        self,
        labels: torch.Tensor | None,
        num: int | None = None,
        *,
        steps: int | None = None,
        choice_temperature: float | None = None,
        temperature: float | None = None,
        guidance: float | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        show_progress: bool | None = False,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token grids (num, h, w), one per label (``labels=None``: ``num`` unconditional ones); unset settings
        take the pipeline's sampling defaults; ``show_progress``: a bar over the batches. A frame-prediction model
        (``sampling.condition_frames``) needs ``condition``: token grids (num, t, h, w) whose leading latent frames
        it keeps (:func:`fsq.inference.frame_prediction.predict_frames` does this from clips)."""
        d = self.sampling
        if d.condition_frames and condition is None:
            raise ValueError(
                f"this MaskGIT predicts frames (condition_frames={d.condition_frames}): give the token grids whose "
                "leading latent frames it continues (condition=...), or use fsq.inference.frame_prediction"
            )
        if labels is not None and (labels.ndim != 1 or ((labels < 0) | (labels >= self.num_classes)).any()):
            raise ValueError(f"labels must be a 1-D tensor of class ids in [0, {self.num_classes - 1}]")
        return generate(
            self.model,
            labels,
            num=len(labels) if labels is not None else int(num or 1),
            steps=steps or d.steps,
            choice_temperature=d.choice_temperature if choice_temperature is None else choice_temperature,
            temperature=d.temperature if temperature is None else temperature,
            guidance=d.guidance if guidance is None else guidance,
            seed=seed,
            batch_size=d.batch_size,
            device=device,
            show_progress=show_progress,
            condition=condition,
            condition_frames=d.condition_frames,
        )

    def decode(self, tokens: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """Images in [0, 1] (float32, CPU) of token grids."""
        layout = layout_of(self.model.spec)
        return decode(self.tokenizer, tokens, self.sampling.batch_size, torch.device(device), layout)

    def sample(self, labels: torch.Tensor | list[int] | None, num: int | None = None, **options: Any) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1]: one per label; ``options`` as :meth:`generate`."""
        labels = torch.as_tensor(labels, dtype=torch.long) if labels is not None else None
        device = options.get("device", "cpu")
        return self.decode(self.generate(labels, num, **options), device)


@torch.no_grad()
def write_samples(
    source: str | Path,
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
    """``num`` samples per class of a MaskGIT: ``class_{c}.png`` grids and ``samples.npz`` (images, tokens, labels);
    for video, ``class_{c}.png`` strips (a row per clip), ``class_{c}.gif`` and, with PyAV, ``class_{c}.mp4``
    (``samples.*`` for an unconditional model), at the frame rate of the tokenizer's data (10 fps if unknown); for
    audio with a known sample rate, ``class_{c}_{k}.wav`` per clip (16-bit PCM; ``sample_{k}.wav`` unconditional):
    for speech, ``c`` is the voice id.

    ``source``: a run dir, a bundle folder, a shipped name or a hub repo id (:meth:`MaskGITPipeline.from_pretrained`).
    Unset ``steps`` / ``choice_temperature`` take its sampling defaults (a run's ``eval`` settings). Returns the
    ``.npz`` path.
    """
    pipeline = MaskGITPipeline.from_pretrained(source)
    device = torch.device(device)
    num_classes = pipeline.num_classes
    classes = list(range(num_classes)) if classes is None and num_classes else classes
    if classes and any(not 0 <= c < num_classes for c in classes):
        raise ValueError(f"classes must be in [0, {num_classes - 1}] for this model, got {classes}")
    labels = torch.tensor(classes).repeat_interleave(num) if classes else None
    total = num * len(classes) if classes else num
    tokens = pipeline.generate(
        labels,
        total,
        steps=steps,
        choice_temperature=choice_temperature,
        guidance=guidance,
        seed=seed,
        device=device,
        show_progress=None,  # a bar on a terminal
    )
    images = pipeline.decode(tokens, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_row = min(num, 10)
    groups: list[int | None] = list(classes) if classes else [None]
    for c in groups if images.ndim == 4 else []:  # PNG grids of images (audio: the .npz alone)
        chosen = images if c is None else images[labels == c]
        rows = [chosen[i : i + per_row] for i in range(0, chosen.shape[0], per_row)]
        grid_labels = torch.arange(len(rows)).repeat_interleave(per_row)[: chosen.shape[0]]
        save_class_grid(chosen, grid_labels, per_row, out_dir / (f"class_{c}.png" if c is not None else "samples.png"))
    for c in groups if images.ndim == 5 else []:  # video: a PNG strip (a row per clip), a GIF and an MP4 per class
        chosen = images if c is None else images[labels == c]
        stem = out_dir / (f"class_{c}" if c is not None else "samples")
        save_clips(chosen, stem, fps=float(pipeline.metadata.get("rate") or 10.0), columns=per_row)
    rate = float(pipeline.metadata.get("rate") or 0)  # samples a second of the tokenizer's audio (0: unknown)
    for c in groups if images.ndim == 3 and rate > 0 else []:  # audio: a .wav per clip, named by its class (voice)
        chosen = images if c is None else images[labels == c]
        for k, clip in enumerate(chosen):
            name = f"class_{c}_{k:03d}.wav" if c is not None else f"sample_{k:03d}.wav"
            write_wav(out_dir / name, clip, round(rate))
    path = out_dir / "samples.npz"
    arrays: dict[str, Any] = {"tokens": tokens.numpy()}  # Any: savez_compressed has typed kwargs
    if images.ndim == 4:
        arrays["images"] = (images * 255).round().to(torch.uint8).numpy()
    else:  # audio (N, C, T) / video (N, C, T, H, W) in [0, 1]
        arrays["signals"] = images.float().numpy()
    if labels is not None:
        arrays["labels"] = labels.numpy()
    tmp = out_dir / ".samples.tmp.npz"
    with storage.writing(path, tmp, what="samples"):
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    return path
