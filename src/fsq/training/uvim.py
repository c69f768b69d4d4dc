"""UViM training: Stage I (the restricted oracle) then Stage II (the language model), in one run dir.

``run_dir/config.yaml`` holds the experiment; ``run_dir/oracle/`` and ``run_dir/lm/`` are the two stages, each with
its own ``metrics.jsonl`` and ``checkpoints/``. A stage whose last checkpoint is at its final step is done and is
skipped; an interrupted one resumes from its newest checkpoint exactly (batches, code dropout and the label drop
are functions of the seed and the step; weights, optimizer and RNG state are restored). Stage II learns to predict
the codes the frozen oracle assigns to the training targets (computed once, before the first Stage II step).
Under torchrun each rank takes its share of every global batch and DDP averages the gradients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq import checkpoint as ckpt
from fsq import distributed
from fsq.config import UViMExperiment, from_dict, read_yaml
from fsq.models.uvim import LanguageModelSpec, OracleSpec, UViMLanguageModel, UViMOracle
from fsq.tracking import MetricsWriter
from fsq.training.optim import lr_at
from fsq.training.sampler import StepBatchSampler
from fsq.training.state import (
    autocast,
    progress_bar,
    reduce_window,
    resolved_hash,
    rng_state,
    set_rng_state,
    start_run,
)
from fsq.training.tokenizer import NonFiniteLossError


def build_task(cfg: UViMExperiment):
    """The task object of a config (:mod:`fsq.tasks`)."""
    from fsq.tasks import get_task

    t = cfg.task
    options = {
        "depth": {"bins": t.depth_bins, "max_depth": t.max_depth},
        "panoptic": {"max_instances": t.max_instances},
    }.get(t.name, {})
    return get_task(t.name, **options)


def load_data(cfg: UViMExperiment, split: str) -> dict[str, torch.Tensor]:
    """The task's (image, target) pairs of a split, in memory."""
    from fsq.data.dense import load_task_data

    d = cfg.data
    return load_task_data(
        cfg.task.name,
        split,
        d.train_size if split == "train" else d.eval_size,
        image_size=d.image_size,
        seed=cfg.train.seed,
        scene_config_overrides=(
            {"min_objects": d.min_objects, "max_objects": d.max_objects} if cfg.task.name != "colorization" else None
        ),
        cache_dir=d.cache_dir,
    )


def select(data: dict[str, torch.Tensor], index: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v[index].to(device) for k, v in data.items()}


def oracle_spec(cfg: UViMExperiment, task) -> OracleSpec:
    m, q = cfg.model, cfg.quantizer
    return OracleSpec(
        image_size=cfg.data.image_size,
        target_channels=task.output_channels,
        context_channels=task.context_channels,
        output_channels=task.output_channels,
        patch=m.patch,
        width=m.width,
        encoder_depth=m.encoder_depth,
        decoder_depth=m.decoder_depth,
        heads=m.heads,
        mlp_dim=m.mlp_dim,
        dropout=m.dropout,
        code_grid=m.code_grid,
        use_context=m.use_context,
        code_dropout=m.code_dropout,
        quantizer=q.kind,
        levels=list(q.levels),
        codebook_size=q.codebook_size,
        vq_dim=q.dim,
        vq_recipe=q.recipe,
    )


def lm_spec(cfg: UViMExperiment, task, codebook_size: int) -> LanguageModelSpec:
    m = cfg.lm
    return LanguageModelSpec(
        image_size=cfg.data.image_size,
        context_channels=task.context_channels,
        codebook_size=codebook_size,
        sequence_length=cfg.model.code_grid**2,
        patch=m.patch,
        width=m.width,
        encoder_depth=m.encoder_depth,
        decoder_depth=m.decoder_depth,
        heads=m.heads,
        mlp_dim=m.mlp_dim,
        dropout=m.dropout,
    )


def load_stage(stage_dir: Path, cls: type[nn.Module], spec_cls: type) -> tuple[nn.Module, int]:
    """A stage's newest weights and step (UViM keeps no EMA)."""
    hint = " (train it with `fsq train uvim`)"
    return ckpt.load_latest_model(stage_dir, lambda spec: cls(spec_cls(**spec)), use_ema=False, hint=hint)


def load_uvim_run(run_dir: str | Path) -> tuple[UViMExperiment, UViMOracle, UViMLanguageModel, int]:
    """(config, oracle, language model, Stage II step) of a finished (or checkpointed) UViM run."""
    run_dir = Path(run_dir)
    cfg = from_dict(UViMExperiment, read_yaml(run_dir / "config.yaml"))
    oracle, _ = load_stage(run_dir / "oracle", UViMOracle, OracleSpec)
    lm, step = load_stage(run_dir / "lm", UViMLanguageModel, LanguageModelSpec)
    return cfg, oracle, lm, step


def _generator(seed: int, step: int, stage: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7 + stage) % 2**63)


def _optimizer(model: nn.Module, o) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "position" not in n and "embed." not in n]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2))


def run_stage(
    cfg: UViMExperiment,
    stage_dir: Path,
    name: str,
    model: nn.Module,
    optim_cfg,
    steps: int,
    num_items: int,
    loss_fn: Callable[[nn.Module, torch.Tensor, int], tuple[torch.Tensor, dict[str, float]]],
    info: distributed.DistInfo,
) -> None:
    """One explicit training loop (either stage): resume, DDP, schedule, clip, log, checkpoint."""
    device = info.device
    optimizer = _optimizer(model, optim_cfg)
    start = 0
    latest = ckpt.latest_checkpoint(stage_dir)
    if latest is not None:
        weights, torch_state, state = ckpt.load_checkpoint(latest, ["model"], resolved_hash(cfg))
        try:
            model.load_state_dict(weights["model"], strict=True)
            optimizer.load_state_dict(torch_state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise ckpt.CheckpointError(f"{latest} does not fit this model/config: {error}") from error
        set_rng_state(torch_state["rng"], device)
        start = int(state["step"])
    if start >= steps:
        return
    network: nn.Module = model
    if info.enabled:
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = StepBatchSampler(
        num_items, cfg.train.batch_size, seed=cfg.train.seed, rank=info.rank, world_size=info.world_size
    )
    if info.is_main:
        stage_dir.mkdir(parents=True, exist_ok=True)
    writer = MetricsWriter(stage_dir, resume_step=start) if info.is_main else None
    progress = progress_bar(steps, start, f"{cfg.name} {name}", info.is_main and cfg.train.progress)
    window: dict[str, float] = {}
    tick = time.perf_counter()
    model.train()
    try:
        for step in range(start, steps):
            lr = lr_at(
                step,
                base_lr=optim_cfg.lr,
                total_steps=steps,
                warmup_steps=optim_cfg.warmup_steps,
                schedule=optim_cfg.schedule,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(cfg.train.precision, device):
                loss, values = loss_fn(network, sampler.indices(step), step)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"{name}: non-finite loss at step {step}; the last checkpoint is intact")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if optim_cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), optim_cfg.grad_clip)
            optimizer.step()
            values = {"loss": float(loss.detach()), **values, "_steps": 1.0}
            for key, value in values.items():
                window[key] = window.get(key, 0.0) + value
            if (step + 1) % cfg.train.log_every == 0 or step + 1 == steps:
                logged = reduce_window(window, device)
                logged["lr"] = lr
                logged["sec_per_step"] = (time.perf_counter() - tick) / max(1.0, window.get("_steps", 1.0))
                tick, window = time.perf_counter(), {}
                if writer is not None:
                    writer.log(step + 1, logged)
                if progress is not None:
                    progress.set_postfix(loss=f"{logged['loss']:.4f}")
            if progress is not None:
                progress.update(1)
            if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == steps:
                if info.is_main:
                    torch_state = {"optimizer": optimizer.state_dict(), "rng": rng_state(device)}
                    state = {"config_hash": resolved_hash(cfg), "spec": model.spec.to_dict(), "stage": name}
                    ckpt.save_checkpoint(
                        stage_dir,
                        step + 1,
                        {"model": model.state_dict()},
                        torch_state,
                        state,
                        keep_last=cfg.train.keep_last,
                    )
                distributed.barrier()
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    model.eval()


@torch.no_grad()
def oracle_codes(oracle: UViMOracle, task, data: dict[str, torch.Tensor], device: torch.device, batch: int = 256):
    """Code indices (N, g, g) of every target in ``data`` under the (eval-mode) oracle."""
    oracle.eval()
    out = []
    for index in torch.arange(next(iter(data.values())).shape[0]).split(batch):
        b = select(data, index, device)
        out.append(oracle.encode(task.encode_target(b), task.context(b)).indices.cpu())
    return torch.cat(out)


def train_uvim(cfg: UViMExperiment, run_dir: str | Path) -> dict[str, Any]:
    """Train (or resume) both UViM stages in ``run_dir``; returns the final steps and, if run, the evaluation."""
    run_dir = Path(run_dir)
    info = start_run(cfg, run_dir)
    device = info.device
    task = build_task(cfg)
    train = load_data(cfg, "train")
    num = train["image"].shape[0]

    torch.manual_seed(cfg.train.seed)
    oracle = UViMOracle(oracle_spec(cfg, task)).to(device)

    def oracle_loss(network, index, step):
        batch = select(train, index, device)
        out, q = network(task.encode_target(batch), task.context(batch), _generator(cfg.train.seed, step, 1))
        task_loss = task.loss(out.float(), batch)
        return task_loss + q.aux_loss, {"task_loss": float(task_loss.detach()), "aux_loss": float(q.aux_loss)}

    run_stage(cfg, run_dir / "oracle", "oracle", oracle, cfg.optim, cfg.train.oracle_steps, num, oracle_loss, info)

    codes = oracle_codes(oracle, task, train, device).flatten(1)
    torch.manual_seed(cfg.train.seed + 1)
    lm = UViMLanguageModel(lm_spec(cfg, task, oracle.codebook_size)).to(device)

    def lm_loss(network, index, step):
        batch = select(train, index, device)
        target = codes[index].to(device)
        logits = network(task.context(batch), target).float()
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        accuracy = (logits.detach().argmax(-1) == target).float().mean()
        return loss, {"code_accuracy": float(accuracy)}

    run_stage(cfg, run_dir / "lm", "lm", lm, cfg.lm_optim, cfg.train.lm_steps, num, lm_loss, info)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "oracle_steps": cfg.train.oracle_steps,
        "lm_steps": cfg.train.lm_steps,
    }
    if cfg.train.eval_at_end and not (run_dir / "eval" / f"step_{cfg.train.lm_steps:06d}.json").exists():
        from fsq.evaluation.uvim import evaluate_uvim

        result["eval"] = evaluate_uvim(run_dir, cfg=cfg, oracle=oracle, lm=lm, train=train, device=device)
    distributed.barrier()
    return result
