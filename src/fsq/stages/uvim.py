"""UViM: Stage I (the restricted oracle) then Stage II (the language model), in one run dir.

``run_dir/oracle/`` and ``run_dir/lm/`` are the two phases, each with its own ``metrics.jsonl`` and
``checkpoints/``. A phase whose last checkpoint is at its final step is done and skipped; an interrupted one
resumes exactly (batches, code dropout and the label drop are functions of the seed and the step). Stage II
learns to predict the codes the frozen oracle assigns to the training targets (computed once, before its first
step). The task (depth, colorization, panoptic) is a :mod:`fsq.tasks` object: the stage never branches on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq import checkpoint as ckpt
from fsq import rundir
from fsq.config import ConfigError, UViMExperiment, read_run_config, resume_hash, spec_from, to_dict
from fsq.data.dense import load_task_data
from fsq.data.loader import StepLoader
from fsq.data.tensors import TensorItems
from fsq.data.transforms import ItemTransform
from fsq.distributed import DistInfo
from fsq.models.quantizer import QuantizerSpec
from fsq.models.uvim import LanguageModelSpec, OracleSpec, UViMLanguageModel, UViMOracle, code_keep_mask
from fsq.optim import adamw
from fsq.quantizers.registry import family_of
from fsq.stages.base import LoadedRun, Phase, RunPhase, Stage, StepOutput
from fsq.tasks import Task, get_task


def task_settings(cfg: UViMExperiment) -> dict[str, Any]:
    """The task's name and constructor options, ``{"name": ..., "options": {...}}`` (a UViM bundle stores them)."""
    t = cfg.task
    options: dict[str, dict[str, Any]] = {
        "depth": {"bins": t.depth_bins, "max_depth": t.max_depth},
        "panoptic": {"max_instances": t.max_instances},
    }
    return {"name": t.name, "options": options.get(t.name, {})}


def build_task(cfg: UViMExperiment) -> Task:
    """The task object of a config (:mod:`fsq.tasks`)."""
    settings = task_settings(cfg)
    return get_task(settings["name"], **settings["options"])


def load_data(cfg: UViMExperiment, split: str) -> dict[str, torch.Tensor]:
    """The task's (image, target) pairs of a split, in memory: drawn from ``data.seed`` (not ``train.seed``, so
    runs that differ only in their training seed see the same data)."""
    d = cfg.data
    return load_task_data(
        cfg.task.name,
        split,
        d.train_size if split == "train" else d.eval_size,
        image_size=d.image_size,
        seed=d.seed,
        scene_config_overrides=(
            {"min_objects": d.min_objects, "max_objects": d.max_objects} if cfg.task.name != "colorization" else None
        ),
        cache_dir=d.cache_dir,
    )


def select(data: dict[str, torch.Tensor], index: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    """The rows ``index`` of every tensor of a batch dict, on ``device``."""
    return {k: v[index].to(device) for k, v in data.items()}


def on_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Every tensor of a batch dict on ``device``."""
    return {k: v.to(device) for k, v in batch.items()}


CODES = "oracle_codes"  # the language model's loader: the oracle's codes of each pair, beside the pair


def oracle_spec(cfg: UViMExperiment, task: Task) -> OracleSpec:
    """The oracle's spec: the ``model`` section by name, channels from the task, the ``quantizer`` section."""
    return spec_from(
        OracleSpec,
        cfg.model,
        image_size=cfg.data.image_size,
        target_channels=task.output_channels,
        context_channels=task.context_channels,
        output_channels=task.output_channels,
        quantizer=QuantizerSpec(**to_dict(cfg.quantizer)),
        center_image=True,  # new models read the image in [-1, 1] (fsq.models.uvim)
    )


def lm_spec(cfg: UViMExperiment, task: Task, codebook_size: int) -> LanguageModelSpec:
    """The language model's spec: the ``lm`` section by name; the vocabulary is the oracle's codebook."""
    return spec_from(
        LanguageModelSpec,
        cfg.lm,
        image_size=cfg.data.image_size,
        context_channels=task.context_channels,
        codebook_size=codebook_size,
        sequence_length=cfg.model.code_grid**2,
        center_image=True,
    )


def _load_phase(
    phase_dir: Path,
    cls: type[nn.Module],
    spec_of: Callable[[dict[str, Any]], Any],
    config_hash: str,
    expected: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[nn.Module, int]:
    """A phase's newest weights and step (UViM keeps no EMA), written under the run's config (and, given
    ``expected``, with the spec the config builds)."""
    hint = " (train it with `fsq train uvim`)"
    build = lambda spec: cls(spec_of(spec))  # noqa: E731
    return ckpt.load_latest_model(
        phase_dir, build, use_ema=False, hint=hint, expected_config_hash=config_hash, expected_spec=expected
    )


def load_run(run_dir: str | Path) -> tuple[UViMExperiment, UViMOracle, UViMLanguageModel, int]:
    """(config, oracle, language model, Stage II step) of a finished (or checkpointed) UViM run."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if not isinstance(cfg, UViMExperiment):
        raise ValueError(f"{run_dir} is a {cfg.stage} run, not a UViM run")
    task = build_task(cfg)
    expected_oracle = lambda saved: oracle_spec(cfg, task).to_dict()  # noqa: E731
    oracle, _ = _load_phase(run_dir / "oracle", UViMOracle, OracleSpec.from_dict, resume_hash(cfg), expected_oracle)
    expected_lm = lambda saved: lm_spec(cfg, task, saved.get("codebook_size", 0)).to_dict()  # noqa: E731
    lm, step = _load_phase(
        run_dir / "lm", UViMLanguageModel, LanguageModelSpec.from_dict, resume_hash(cfg), expected_lm
    )
    return cfg, oracle, lm, step  # type: ignore[return-value]


def _check_image_input(phase_dir: Path) -> None:
    """Refuse to resume a phase whose checkpoint read the image in ``[0, 1]`` (a spec without ``center_image``,
    written before it existed): its weights would go on, or the language model learn codes, under the other range."""
    latest = ckpt.latest_checkpoint(phase_dir)
    if latest is not None and not ckpt.read_state(latest, None, "").get("spec", {}).get("center_image", False):
        raise ConfigError(
            f"{phase_dir}: trained by an older fsq that fed the image in [0, 1]; this version feeds it in [-1, 1] "
            "and cannot continue it. Use a new run dir (the old models still load and evaluate as trained)."
        )


def _generator(seed: int, step: int, stage: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7 + stage) % 2**63)


@torch.no_grad()
def oracle_codes(
    oracle: UViMOracle, task: Task, data: dict[str, torch.Tensor], device: torch.device, batch: int = 256
) -> torch.Tensor:
    """Code indices (N, g, g) of every target in ``data`` under the (eval-mode) oracle."""
    oracle.eval()
    out = []
    for index in torch.arange(next(iter(data.values())).shape[0]).split(batch):
        b = select(data, index, device)
        out.append(oracle.encode(task.encode_target(b), task.context(b)).indices.cpu())
    return torch.cat(out)


@dataclass
class TrainedUViM:
    """What training hands to evaluation: the oracle, the language model (at ``step``) and the training data (for
    the task's trivial baseline)."""

    oracle: UViMOracle
    lm: UViMLanguageModel
    train: dict[str, torch.Tensor]
    step: int


def phases(cfg: UViMExperiment, run_dir: Path, dist: DistInfo, run: RunPhase) -> TrainedUViM:
    """Two phases: the oracle on the training targets, then the language model on the oracle's codes (computed
    once the oracle is trained)."""
    device = dist.device
    task = build_task(cfg)
    train = load_data(cfg, "train")

    def loader(data: dict[str, torch.Tensor], steps: int) -> StepLoader:
        """This rank's rows of ``data`` at each step (the same rows for both phases: one seed)."""
        return StepLoader(
            TensorItems(data, source=f"the {cfg.task.name} training pairs"),
            ItemTransform("none"),
            global_batch=cfg.train.batch_size,
            seed=cfg.train.seed,
            stop=steps,
            rank=dist.rank,
            world_size=dist.world_size,
        )

    oracle_loader = loader(train, cfg.train.oracle_steps)

    oracle_done = ckpt.latest_checkpoint(run_dir / "oracle")
    if ckpt.latest_checkpoint(run_dir / "lm") is not None and (
        oracle_done is None or rundir.step_of(oracle_done.name) != cfg.train.oracle_steps
    ):
        raise ConfigError(
            f"{run_dir}: the language model was trained on the codes of the oracle at its step "
            f"{rundir.step_of(oracle_done.name) if oracle_done else 0}; training the oracle to "
            f"train.oracle_steps={cfg.train.oracle_steps} now would leave the pair mismatched. Use a new run dir."
        )
    for phase_dir in (run_dir / "oracle", run_dir / "lm"):
        _check_image_input(phase_dir)
    torch.manual_seed(cfg.train.seed)
    oracle = UViMOracle(oracle_spec(cfg, task)).to(device)

    def oracle_batch(step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """This rank's (image, target) pairs of ``step`` and the code positions code dropout keeps for them: drawn
        for the global batch from ``(seed, step)`` (the same on every rank), this rank's rows taken by the seam."""
        keep = None
        if oracle.spec.code_dropout:
            generator = _generator(cfg.train.seed, step, 1)
            keep = dist.rows(code_keep_mask(cfg.train.batch_size, oracle.spec.code_grid**2, generator))
        return on_device(oracle_loader.batch(step)[0], device), keep

    def oracle_step(
        network: nn.Module, pairs: tuple[dict[str, torch.Tensor], torch.Tensor | None], step: int
    ) -> StepOutput:
        batch, keep = pairs
        out, q = network(task.encode_target(batch), task.context(batch), keep=keep)
        task_loss = task.loss(out.float(), batch)
        logged = {"task_loss": task_loss.detach(), "aux_loss": q.aux_loss.detach()}
        quantizer = oracle.quantizer  # e.g. an EMA VQ's codebook splits of this step
        for key, value in family_of(quantizer).step_metrics(quantizer).items():
            logged[key] = torch.tensor(value)
        return StepOutput(task_loss + q.aux_loss, logged)

    o = cfg.optim
    run(
        Phase(
            name="oracle",
            run_dir=run_dir / "oracle",
            model=oracle,
            optimizer=adamw(oracle, o.lr, (o.beta1, o.beta2), o.weight_decay),
            optim=o,
            steps=cfg.train.oracle_steps,
            batch=oracle_batch,
            loss=oracle_step,
            spec=oracle.spec.to_dict(),
        )
    )

    codes = oracle_codes(oracle, task, train, device).flatten(1)
    if CODES in train:
        raise ValueError(f"the {cfg.task.name} training pairs already hold a tensor named {CODES!r}")
    lm_loader = loader({**train, CODES: codes}, cfg.train.lm_steps)
    torch.manual_seed(cfg.train.seed + 1)
    lm = UViMLanguageModel(lm_spec(cfg, task, oracle.codebook_size)).to(device)

    def lm_batch(step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """This rank's (image, target) pairs of ``step`` and the oracle's codes of their targets."""
        rows = lm_loader.batch(step)[0]
        target = rows.pop(CODES)
        return on_device(rows, device), target.to(device)

    def lm_step(network: nn.Module, pairs: tuple[dict[str, torch.Tensor], torch.Tensor], step: int) -> StepOutput:
        batch, target = pairs
        logits = network(task.context(batch), target).float()
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        accuracy = (logits.detach().argmax(-1) == target).float().mean()
        return StepOutput(loss, {"code_accuracy": accuracy})

    lo = cfg.lm_optim
    run(
        Phase(
            name="lm",
            run_dir=run_dir / "lm",
            model=lm,
            optimizer=adamw(lm, lo.lr, (lo.beta1, lo.beta2), lo.weight_decay),
            optim=lo,
            steps=cfg.train.lm_steps,
            batch=lm_batch,
            loss=lm_step,
            spec=lm.spec.to_dict(),
        )
    )
    return TrainedUViM(oracle, lm, train, cfg.train.lm_steps)


def loaded_run(run_dir: Path, use_ema: bool = True) -> LoadedRun:
    """The registry's view of :func:`load_run`: the run's config, Stage II step, ``oracle`` and ``lm`` (UViM keeps
    no EMA: ``use_ema`` changes nothing)."""
    cfg, oracle, lm, step = load_run(run_dir)
    return LoadedRun(Path(run_dir), cfg, step, {"oracle": oracle, "lm": lm})


def describe(cfg: UViMExperiment, metadata: dict[str, Any]) -> str:
    """The model card's first paragraph: the task, the oracle's quantizer and the image size."""
    return (
        f"A UViM model for `{cfg.task.name}` (Stage I: a restricted oracle with {cfg.quantizer.kind.upper()}; "
        f"Stage II: a language model of its codes) on {cfg.data.image_size} px images."
    )


USAGE = (
    "```bash\nfsq predict {ref} photo.png --out predictions/\n```\n\n"
    "```python\nimport torch\nfrom fsq.inference.prediction import UViMPredictor\n\n"
    "predictor = UViMPredictor.from_pretrained({ref})\n"
    "images = torch.rand(2, 3, {size}, {size})  # your images: float (B, 3, H, W) in [0, 1]\n"
    "prediction, codes = predictor.predict(images)\n```"
)

STAGE = Stage(
    schema=UViMExperiment,
    phases=phases,
    final_step=lambda cfg: cfg.train.lm_steps,
    load_run=loaded_run,
    evaluate="fsq.evaluation.uvim:evaluate_uvim",
    export="fsq.inference.prediction:UViMPredictor.from_run",
    usage=USAGE,
    describe=describe,
)
