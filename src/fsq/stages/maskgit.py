"""Stage II: a class-conditional MaskGIT on the token grids of a Stage I tokenizer.

Per step (FSQ paper sec. 4.2 / App. A.4.2, ``maskgit_class_cond_config.py``): one masking ratio for the whole
global batch (cosine schedule, at least ``masking.min_ratio`` of the tokens masked), positions uniform without
replacement, ``masking.label_drop`` of the labels replaced by MASK (for classifier-free guidance), cross-entropy
with label smoothing on the masked positions only; AdamW with weight decay on matrices only (:mod:`fsq.optim`).
Tokens come from a ``fsq tokenize`` folder or are exported once into ``run_dir/tokens``; the tokenizer is embedded
into ``run_dir/tokenizer`` at the start (the run dir stays usable when moved). Masks and label drops
are drawn for the global batch from a (seed, step) generator and each rank takes its rows
(:meth:`fsq.distributed.DistInfo.rows`), so N ranks train as one process would and a resumed run continues
exactly. Frame prediction (``masking.condition_frames``, video token grids): the leading latent frames are never
masked, so the model always sees them and the loss never scores them (:mod:`fsq.generation.conditioning`); the
masking ratio is drawn over the other positions.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsq import checkpoint as ckpt
from fsq import rundir
from fsq.config import MaskGITExperiment, TokenizerExperiment, dump_yaml, read_run_config, resume_hash, spec_from
from fsq.data.loader import StepLoader
from fsq.data.speech import labels_are_voices
from fsq.data.tensors import TensorItems
from fsq.data.transforms import ItemTransform
from fsq.distributed import DistInfo
from fsq.generation.conditioning import conditioned_training_mask, given_positions
from fsq.generation.mask_schedule import training_mask_count
from fsq.generation.token_layout import TokenLayout
from fsq.hub import bundle_format, is_shipped_name, read_bundle_config
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.models.maskgit import MaskGIT, MaskGITSpec, masked_token_loss
from fsq.optim import ModelEMA, adamw
from fsq.quantizers.registry import family_of
from fsq.stages.base import LoadedRun, Phase, RunPhase, Stage, StepOutput
from fsq.stages.tokenizer import load_run as load_tokenizer_run
from fsq.stages.tokens import export_tokens, load_tokens, open_tokenizer, tokenizer_layout


def is_tokenizer_bundle(source: str) -> bool:
    """Whether ``data.tokenizer`` names a tokenizer bundle (a shipped name, or a bundle folder) rather than a run."""
    path = Path(source)
    if (path / rundir.CONFIG).is_file() and bundle_format(path) is None:
        return False
    return bundle_format(path) == "fsq-tokenizer" or is_shipped_name(source)


def _check_tokenizer_run(cfg: MaskGITExperiment) -> None:
    """``data.tokenizer`` must name a trained Stage I run or a tokenizer bundle (a clear error with the command
    that trains it)."""
    if not cfg.data.tokenizer:
        raise ValueError("data.tokenizer must name the Stage I run dir or tokenizer bundle (it decodes the samples)")
    if is_tokenizer_bundle(cfg.data.tokenizer):
        return  # read (and its training config checked) when embedded
    if ckpt.latest_checkpoint(cfg.data.tokenizer) is None:
        base = cfg.data.tokenizer.removesuffix("_smoke")
        if base != cfg.data.tokenizer and is_tokenizer_bundle(base):  # smoke_maskgit's link to a bundle's "smoke run"
            raise FileNotFoundError(
                f"data.tokenizer={cfg.data.tokenizer}: the smoke overlay names the smoke run of the config's "
                f"tokenizer, but {base} is a tokenizer bundle (nothing to train): add data.tokenizer={base}"
            )
        how = cfg.data.tokenizer_config or "CONFIG"
        if Path(cfg.data.tokenizer).name.endswith("_smoke"):  # smoke_maskgit.yaml's link: the smoke tokenizer
            how += " smoke"
        raise FileNotFoundError(
            f"data.tokenizer={cfg.data.tokenizer} holds no trained tokenizer; train it first: "
            f"fsq train tokenizer {how} --run-dir {cfg.data.tokenizer}"
        )


def embed_tokenizer(cfg: MaskGITExperiment, run_dir: Path) -> Path:
    """Copy the Stage I tokenizer into ``RUN/tokenizer/`` (once): its EMA weights and spec as a tokenizer bundle
    (``Tokenizer.save_pretrained``, provenance in ``metadata``) and its run's ``config.yaml`` (data source, image
    size: what evaluation needs; for a bundle, the training config it records). The run dir then samples and
    evaluates wherever it is moved, from any directory.
    """
    target = run_dir / rundir.TOKENIZER
    if (target / "config.json").is_file():
        return target
    _check_tokenizer_run(cfg)
    tokenizer_cfg, model, step, origin = open_tokenizer(cfg.data.tokenizer)  # a run dir (EMA weights) or a bundle
    tmp = run_dir / f".{rundir.TOKENIZER}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, metadata={"run": origin, "step": step, "weights": "ema"})
    (tmp / rundir.CONFIG).write_text(dump_yaml(tokenizer_cfg))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def run_tokenizer(run_dir: str | Path, cfg: MaskGITExperiment) -> tuple[Tokenizer, int, TokenizerExperiment, str]:
    """(tokenizer, its step, its run config, the Stage I run it came from) of a MaskGIT run: the copy embedded in
    ``RUN/tokenizer/``, or for runs older than that copy ``data.tokenizer`` (a path relative to where it was
    trained)."""
    embedded = Path(run_dir) / rundir.TOKENIZER
    if (embedded / "config.json").is_file():
        metadata = read_bundle_config(embedded, "fsq-tokenizer").get("metadata", {})
        tokenizer_cfg = read_run_config(embedded)
        if not isinstance(tokenizer_cfg, TokenizerExperiment):
            raise ValueError(f"{embedded} holds a {tokenizer_cfg.stage} config, not a tokenizer's")
        origin = str(metadata.get("run", embedded.resolve()))
        return Tokenizer.from_pretrained(embedded), int(metadata.get("step", 0)), tokenizer_cfg, origin
    try:
        _check_tokenizer_run(cfg)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{run_dir} embeds no tokenizer ({rundir.TOKENIZER}/: it was trained before fsq embedded one) and "
            f"{error}; run from the directory it was trained in, or set data.tokenizer in its config.yaml"
        ) from None
    tokenizer_cfg = read_run_config(cfg.data.tokenizer)
    if not isinstance(tokenizer_cfg, TokenizerExperiment):
        raise ValueError(f"data.tokenizer={cfg.data.tokenizer} is a {tokenizer_cfg.stage} run, not a tokenizer run")
    model, step = load_tokenizer_run(cfg.data.tokenizer)
    return model, step, tokenizer_cfg, str(Path(cfg.data.tokenizer).resolve())


def training_tokens(cfg: MaskGITExperiment, run_dir: Path, dist: DistInfo) -> tuple[torch.Tensor, Any, dict]:
    """(tokens (N, *grid), labels or None, manifest) of the training split: ``data.tokens`` or exported once.

    The tokenizer is embedded into the run dir first (:func:`embed_tokenizer`); a run dir that holds both its
    tokenizer and its tokens resumes without ``data.tokenizer`` (it may have been moved).
    """
    folder = Path(cfg.data.tokens) if cfg.data.tokens else run_dir / "tokens" / cfg.data.train_split
    if not (run_dir / rundir.TOKENIZER / "config.json").is_file():
        _check_tokenizer_run(cfg)  # on every rank: a clear error, not a rank waiting for a failed rank 0

    def prepare() -> None:
        embed_tokenizer(cfg, run_dir)
        if cfg.data.tokens is None and not (folder / "manifest.json").is_file():
            d = cfg.data
            export_tokens(
                d.tokenizer,
                d.train_split,
                folder,
                limit=d.train_limit,
                stages=d.stages,
                groups=d.groups,
                windows=d.windows,
            )

    dist.on_main(prepare, None)  # every rank, always: the other ranks read what rank 0 wrote
    tokens, labels, manifest = load_tokens(folder)
    check_tokens_match_tokenizer(run_dir, folder, manifest, cfg.data.stages, cfg.data.groups, cfg.data.windows)
    if manifest["split"] != cfg.data.train_split:
        raise ValueError(
            f"{folder} holds the {manifest['split']!r} split, not data.train_split={cfg.data.train_split!r}"
        )
    if cfg.data.train_limit is not None:
        tokens = tokens[: cfg.data.train_limit]
        labels = labels[: cfg.data.train_limit] if labels is not None else None
    return tokens, labels, manifest


def num_classes_of(cfg: MaskGITExperiment, labels: torch.Tensor | None, manifest: dict) -> int:
    """The number of classes the model conditions on (0: unconditional)."""
    if not cfg.masking.class_conditional:
        return 0
    if labels is None:
        raise ValueError("masking.class_conditional=true but the tokens have no labels (set it to false)")
    names = manifest.get("class_names")
    return len(names) if names else int(labels.max()) + 1


def maskgit_spec(
    cfg: MaskGITExperiment,
    codebook_size: int,
    grid: list[int],
    num_classes: int,
    token_layout: dict | None = None,
) -> MaskGITSpec:
    """The spec: the ``model`` section by name; codebook size, token grid (2-D as height and width, as before; 1-D
    and 3-D as ``grid``), classes and token layout come from the tokens."""
    two_d = len(grid) == 2
    return spec_from(
        MaskGITSpec,
        cfg.model,
        codebook_size=codebook_size,
        num_classes=num_classes,
        grid_height=grid[0] if two_d else None,
        grid_width=grid[1] if two_d else None,
        grid=None if two_d else list(grid),
        token_layout=token_layout,
    )


def check_tokens_match_tokenizer(
    run_dir: Path, folder: Path, manifest: dict, stages: int | None = None, groups: int = 1, windows: bool = False
) -> None:
    """A ValueError naming the token folder and both grids when its tokens are not the embedded tokenizer's grid
    in the layout ``data.stages`` / ``data.groups`` give, naming both layouts when they differ, or saying how the
    clips were cut when that is not ``data.windows``'s way."""
    config = read_bundle_config(run_dir / rundir.TOKENIZER, "fsq-tokenizer")
    spec = TokenizerSpec.from_dict(config["spec"])
    layout = tokenizer_layout(spec, stages, groups)
    expected = layout.grid(spec.grid_shape)
    if tuple(manifest["token_grid"]) != expected:
        raise ValueError(
            f"{folder / 'manifest.json'}: token grids of shape {tuple(manifest['token_grid'])}, but the tokenizer "
            f"({run_dir / rundir.TOKENIZER}) makes grids of shape {expected} (data.stages={stages}, "
            f"data.groups={groups}): tokens of another tokenizer, or of another layout"
        )
    recorded, wanted = manifest.get("token_layout"), layout.recorded
    if recorded != wanted:
        raise ValueError(
            f"{folder / 'manifest.json'}: tokens in the layout {recorded}, but data.stages={stages}, "
            f"data.groups={groups} give {wanted} for this tokenizer: export them again with the same settings"
        )
    cut = manifest.get("windows")  # absent in manifests written before windows existed: centred crops
    if bool(cut) != windows:
        had = f"every window of {cut['length']} samples of each clip" if cut else "one centred crop of each clip"
        raise ValueError(
            f"{folder / 'manifest.json'}: tokens of {had}, but data.windows={str(windows).lower()}: export them "
            f"again with{'' if windows else 'out'} --windows, or set data.windows={str(bool(cut)).lower()}"
        )


def check_judge_data(cfg: MaskGITExperiment, manifest: dict, num_classes: int) -> None:
    """A ValueError before training when ``eval.judge_data: reconstructions`` is set for a MaskGIT without a voice
    judge (only voice-conditioned MaskGITs over 1-D tokens of the ``speech`` source have one)."""
    voiced = labels_are_voices(manifest.get("source"), manifest.get("signal"), num_classes)
    if cfg.eval.judge_data != "clips" and not voiced:
        raise ValueError(
            f"eval.judge_data={cfg.eval.judge_data}: only the voice judge of a voice-conditioned MaskGIT over speech "
            f"tokens trains on reconstructions; these tokens are {manifest.get('signal', 'image')} tokens of "
            f"{manifest.get('source')!r}" + ("" if num_classes else " without class conditioning")
        )


def condition_positions(cfg: MaskGITExperiment, grid: list[int] | tuple[int, ...]) -> int:
    """The leading token positions ``masking.condition_frames`` gives (0: none); a ValueError naming the setting
    and the grid when the grid is not a video's or has no latent frame left to predict."""
    try:
        return given_positions(grid, cfg.masking.condition_frames)
    except ValueError as error:
        raise ValueError(f"masking.{error}") from None


def load_run(run_dir: str | Path, use_ema: bool = True) -> tuple[MaskGIT, int, MaskGITExperiment]:
    """The newest checkpoint's MaskGIT (EMA weights when present), its step and the run's config."""
    cfg = read_run_config(run_dir)
    if not isinstance(cfg, MaskGITExperiment):
        raise ValueError(f"{run_dir} is a {cfg.stage} run, not a MaskGIT run")
    build = lambda spec: MaskGIT(MaskGITSpec(**spec))  # noqa: E731

    def expected(saved: dict[str, Any]) -> dict[str, Any]:  # what the tokens decide comes from the checkpoint
        grid = saved.get("grid") or [saved.get("grid_height", 0), saved.get("grid_width", 0)]
        counts = (saved.get("codebook_size", 0), grid, saved.get("num_classes", 0))
        return maskgit_spec(cfg, *counts, saved.get("token_layout")).to_dict()

    model, step = ckpt.load_latest_model(
        run_dir, build, use_ema, expected_config_hash=resume_hash(cfg), expected_spec=expected
    )
    return model, step, cfg


def _step_generator(seed: int, step: int) -> torch.Generator:
    """The masking randomness of one step, drawn for the global batch (so N ranks mask as one process would)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**63)


@dataclass
class TrainedMaskGIT:
    """What training hands to evaluation: the MaskGIT it evaluates (the EMA weights when there are) and its step."""

    model: MaskGIT
    step: int


def phases(cfg: MaskGITExperiment, run_dir: Path, dist: DistInfo, run: RunPhase) -> TrainedMaskGIT:
    """One phase: the MaskGIT on the training split's tokens."""
    device = dist.device
    tokens, labels, manifest = training_tokens(cfg, run_dir, dist)
    num_tokens = math.prod(tokens.shape[1:])
    given = condition_positions(cfg, manifest["token_grid"])  # frame prediction: leading latent frames, never masked
    counts = (manifest["codebook_size"], manifest["token_grid"], num_classes_of(cfg, labels, manifest))
    spec = maskgit_spec(cfg, *counts, manifest.get("token_layout"))
    check_judge_data(cfg, manifest, spec.num_classes)
    torch.manual_seed(cfg.train.seed)
    model = MaskGIT(spec).to(device)
    ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    o, m = cfg.optim, cfg.masking
    loader = StepLoader(
        TensorItems(tokens, labels, source=f"the {cfg.data.train_split} tokens"),
        ItemTransform("none"),
        global_batch=cfg.train.batch_size,
        seed=cfg.train.seed,
        stop=cfg.train.steps,
        rank=dist.rank,
        world_size=dist.world_size,
    )

    def batch(step: int) -> dict[str, Any]:
        """This rank's token grids and labels of ``step``, and their masks and label drops: drawn for the global
        batch from ``(seed, step)`` (the same stream on every rank), this rank's rows taken by the seam."""
        grids, grid_labels = loader.batch(step)
        shared = _step_generator(cfg.train.seed, step)
        count = training_mask_count(num_tokens - given, min_ratio=m.min_ratio, method=m.schedule, generator=shared)
        mask = dist.rows(conditioned_training_mask(cfg.train.batch_size, num_tokens, given, count, generator=shared))
        drop = dist.rows(torch.rand(cfg.train.batch_size, generator=shared)) < m.label_drop
        return {
            "tokens": grids.flatten(1),
            "labels": grid_labels if spec.num_classes else None,
            "mask": mask,
            "drop": drop,
            "mask_ratio": count / (num_tokens - given),
        }

    def step_fn(network: nn.Module, micro: dict[str, Any], step: int) -> StepOutput:
        batch, mask = micro["tokens"].to(device), micro["mask"].to(device)
        batch_labels = micro["labels"].to(device) if micro["labels"] is not None else None
        inputs = torch.where(mask, torch.full_like(batch, model.mask_id), batch)
        if batch_labels is not None and m.label_drop > 0:
            batch_labels = torch.where(micro["drop"].to(device), torch.full_like(batch_labels, -1), batch_labels)
        logits = network(inputs, batch_labels, positions=mask)  # the masked positions' logits alone
        loss = masked_token_loss(logits, batch, mask, m.label_smoothing)
        with torch.no_grad():
            accuracy = (logits.detach().argmax(-1) == batch[mask]).float().mean()
        return StepOutput(loss, {"masked_accuracy": accuracy, "mask_ratio": micro["mask_ratio"]})

    phase = Phase(
        name="train",
        run_dir=run_dir,
        model=model,
        optimizer=adamw(model, o.lr, (o.beta1, o.beta2), o.weight_decay),
        optim=o,
        steps=cfg.train.steps,
        batch=batch,
        loss=step_fn,
        spec=spec.to_dict(),
        ema=ema,
        postfix=("loss", "masked_accuracy"),
    )
    run(phase)
    return TrainedMaskGIT(phase.trained, cfg.train.steps)  # type: ignore[arg-type]


def level_histograms(cfg: MaskGITExperiment, run_dir: Path, trained: TrainedMaskGIT | None) -> dict[str, Any]:
    """The level (0 .. L_i - 1) each training token takes on each code channel, over the first 2000 token grids
    (``levels/channel_i``); empty for a tokenizer without per-channel levels (VQ)."""
    tokenizer, *_ = run_tokenizer(run_dir, cfg)
    quantizer = tokenizer.quantizer
    level_digits = family_of(quantizer).level_digits
    folder = Path(cfg.data.tokens) if cfg.data.tokens else run_dir / "tokens" / cfg.data.train_split
    if level_digits is None or not (folder / "manifest.json").is_file():
        return {}
    tokens, _, manifest = load_tokens(folder)
    layout = manifest.get("token_layout")
    indices = TokenLayout.from_dict(layout).to_indices(tokens[:2000]) if layout else tokens[:2000]
    digits = level_digits(quantizer, indices)
    return {f"levels/channel_{c}": digits[:, c].numpy() for c in range(digits.shape[1])}


def loaded_run(run_dir: Path, use_ema: bool = True) -> LoadedRun:
    """The registry's view of :func:`load_run`: the run's config, step, ``maskgit`` and its ``tokenizer``."""
    model, step, cfg = load_run(run_dir, use_ema)
    tokenizer = run_tokenizer(run_dir, cfg)[0]
    return LoadedRun(Path(run_dir), cfg, step, {"maskgit": model, "tokenizer": tokenizer})


def describe(cfg: MaskGITExperiment, metadata: dict[str, Any]) -> str:
    """The model card's first paragraph: what the MaskGIT is and the tokenizer it embeds."""
    what = "A class-conditional MaskGIT"
    if cfg.masking.condition_frames:  # MAGVIT's frame prediction
        what = f"A frame-prediction MaskGIT (the first {cfg.masking.condition_frames} latent frame(s) given)"
    return (
        f"{what} (Stage II: a bidirectional transformer over token grids) with the tokenizer "
        f"it was trained on (from the run `{Path(str(metadata.get('tokenizer_run', '?'))).name}`, step "
        f"{metadata.get('tokenizer_step', '?')}) embedded in `tokenizer/`."
    )


def card_notes(run_dir: Path) -> list[str]:
    """The model card's note on the data: the tokens of which images the embedded tokenizer made."""
    embedded = run_dir / rundir.TOKENIZER
    tokenizer_cfg = read_run_config(embedded) if embedded.is_dir() else None
    if tokenizer_cfg is None:
        return []
    d = tokenizer_cfg.data
    return [
        f"Tokens of `{d.source}` ({d.train_split} split) at {d.image_size} px, by the embedded tokenizer "
        f"(trained on `{d.source}`, {d.train_split} split; evaluated on its {d.eval_split} split).",
        "",
    ]


USAGE = (
    "```bash\nfsq sample {ref} --out samples/    # a PNG grid per class and samples.npz\n```\n\n"
    "```python\nfrom fsq.inference.sampling import MaskGITPipeline\n\n"
    "pipeline = MaskGITPipeline.from_pretrained({ref})\n"
    "images = pipeline.sample({labels})  # {labels_meaning}, float in [0, 1]\n```"
)

STAGE = Stage(
    schema=MaskGITExperiment,
    phases=phases,
    final_step=lambda cfg: cfg.train.steps,
    load_run=loaded_run,
    evaluate="fsq.evaluation.maskgit:evaluate_maskgit",
    export="fsq.inference.sampling:MaskGITPipeline.from_run",
    usage=USAGE,
    describe=describe,
    card_notes=card_notes,
    histograms=level_histograms,
)
