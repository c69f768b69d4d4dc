"""The one training loop, for every stage and phase; stages supply an explicit step function (:mod:`fsq.stages`).

Per step: the learning rate from the schedule, the stage's step function under autocast, the non-finite check,
backward, gradient clipping, the optimizer step, the EMA update and the stage's ``after_update`` (the GAN
discriminator); every ``log_every`` steps the window's means over steps and ranks go to ``metrics.jsonl`` and
TensorBoard; every ``checkpoint_every`` steps (and at the end) rank 0 writes an atomic checkpoint. A run dir that
holds a checkpoint resumes from it exactly: weights, EMA, optimizers and RNG state come back, and the stages draw
the batch of every step from ``(seed, step)``. Under torchrun the model is DDP-wrapped and each rank computes
its share of the global batch.

``hooks`` are called before every step with ``(phase name, step)``: a public seam for callbacks, and for tests
that interrupt a run at a chosen step.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsq import checkpoint as ckpt
from fsq import distributed, rundir
from fsq.config import ConfigError, resume_hash
from fsq.optim import lr_at
from fsq.quantizers.finite import check_pending
from fsq.stages.base import NonFiniteLossError, Phase, Stage
from fsq.tracking import MetricsWriter, publish_evaluation
from fsq.training.banner import evaluation_found, start_banner
from fsq.training.state import (
    autocast,
    check_run_dir,
    owned_run_dir,
    progress_bar,
    reduce_window,
    rng_state,
    set_rng_state,
    setup_process,
    write_run_dir,
)

StepHook = Callable[[str, int], None]


def wandb_mode() -> str | None:
    """``FSQ_WANDB`` (``offline`` or ``online``): mirror the run's logs to Weights & Biases; unset: no W&B."""
    return os.environ.get("FSQ_WANDB") or None


Evaluate = Callable[..., dict[str, Any]]


def train(
    stage: Stage, cfg: Any, run_dir: str | Path, evaluate: Evaluate | None = None, hooks: Sequence[StepHook] = ()
) -> dict[str, Any]:
    """Train (or resume) every phase of ``stage`` in ``run_dir``, then evaluate the final step once.

    Returns ``{"run_dir", "step"}`` and, when ``train.eval_at_end`` and the final step has no evaluation yet,
    ``"eval"``: what ``evaluate(run_dir, cfg=cfg, **kept)`` returned (``kept``: the trained models the phases
    left for it, so nothing is loaded twice).
    """
    run_dir = Path(run_dir)
    info = setup_process(cfg)
    check_run_dir(cfg, run_dir)  # another config's run is refused before any work
    with owned_run_dir(run_dir, info, "training", undo_failed_start=True):  # a failed start leaves nothing
        check_run_dir(cfg, run_dir)  # again, now that no one else can write it
        kept: dict[str, Any] = {}
        phases = stage.phases(cfg, run_dir, info, kept)
        first = next(phases)  # data and model built: a config that cannot build fails here, before any write
        if info.is_main:
            write_run_dir(cfg, run_dir, info.world_size)
        distributed.barrier()
        for phase in itertools.chain([first], phases):
            run_phase(phase, cfg, info, hooks)
        final = stage.final_step(cfg)
        result: dict[str, Any] = {"run_dir": str(run_dir), "step": final}
        if evaluate is not None and cfg.train.eval_at_end and not rundir.has_eval(run_dir, final):
            result["eval"] = evaluate(run_dir, cfg=cfg, **kept)
            if info.is_main and result["eval"]:  # to TensorBoard (and W&B): numbers, images, histograms
                histograms = stage.histograms(cfg, run_dir, kept) if stage.histograms else None
                publish_evaluation(run_dir, final, result["eval"], histograms=histograms, wandb_mode=wandb_mode())
        elif info.is_main and rundir.has_eval(run_dir, final):
            print(evaluation_found(run_dir, final), flush=True)
        distributed.barrier()
    return result


def run_phase(phase: Phase, cfg: Any, info: distributed.DistInfo, hooks: Sequence[StepHook] = ()) -> None:
    """Train one phase from its newest checkpoint (or from scratch) to ``phase.steps``."""
    t, o, device = cfg.train, phase.optim, info.device
    start = ckpt.load_newest(phase.run_dir, lambda folder: restore(folder, phase, cfg, device)) or 0
    if start > phase.steps:
        raise ConfigError(
            f"{phase.run_dir} holds a checkpoint of step {start}, past this config's {phase.name} steps "
            f"({phase.steps}): a shorter run cannot resume from it (raise the step count, or use a new run dir)"
        )
    if info.is_main:
        print(start_banner(cfg, phase.name, phase.run_dir, phase.model, device, start, phase.steps), flush=True)
    if start == phase.steps:
        phase.model.eval()
        return
    micros = t.accumulate
    if micros > 1 and not phase.accumulates:
        raise ConfigError(f"{phase.name}: this stage does not support train.accumulate > 1 (got {micros})")
    ema_warmup = phase.ema is not None and ema_warmup_on(t.ema_warmup, phase.ema.decay, phase.steps, phase.name)
    scaler = grad_scaler(t.precision, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = t.tf32
        if t.channels_last:
            phase.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it
    network: nn.Module = phase.model
    if info.enabled:
        device_ids = [device.index] if device.type == "cuda" else None
        network = nn.parallel.DistributedDataParallel(phase.model, device_ids=device_ids)
    if compiles(t.compile, device):
        network = torch.compile(network)  # type: ignore[assignment]
    if info.is_main:
        phase.run_dir.mkdir(parents=True, exist_ok=True)
    writer = MetricsWriter(phase.run_dir, resume_step=start, wandb_mode=wandb_mode()) if info.is_main else None
    progress = progress_bar(phase.steps, start, f"{cfg.name} {phase.name}", info.is_main and t.progress)
    window: dict[str, float] = {}
    tick = time.perf_counter()
    phase.model.train()
    try:
        for step in range(start, phase.steps):
            for hook in hooks:
                hook(phase.name, step)
            lr = lr_at(step, base_lr=o.lr, total_steps=phase.steps, warmup_steps=o.warmup_steps, schedule=o.schedule)
            for group in phase.optimizer.param_groups:
                group["lr"] = lr
            phase.optimizer.zero_grad(set_to_none=True)
            loss, values = accumulate_gradients(phase, network, step, micros, t.precision, device, scaler)
            if scaler is not None:
                scaler.unscale_(phase.optimizer)
            if o.grad_clip:
                torch.nn.utils.clip_grad_norm_(phase.model.parameters(), o.grad_clip)
            if scaler is not None:
                scaler.step(phase.optimizer)
                scaler.update()
            else:
                phase.optimizer.step()
            if phase.ema is not None:
                phase.ema.update(phase.model, step if ema_warmup else None)
            if phase.after_update is not None:
                values.update(phase.after_update(step, lr))
            values = {"loss": float(loss), **{k: float(v) for k, v in values.items()}, "_steps": 1.0}
            for key, value in values.items():
                window[key] = window.get(key, 0.0) + value
            if (step + 1) % t.log_every == 0 or step + 1 == phase.steps:
                logged = reduce_window(window, device)
                if phase.window_metrics is not None:
                    logged.update(phase.window_metrics())
                logged["lr"] = phase.optimizer.param_groups[0]["lr"]
                logged["sec_per_step"] = (time.perf_counter() - tick) / max(1.0, window.get("_steps", 1.0))
                tick, window = time.perf_counter(), {}
                if writer is not None:
                    writer.log(step + 1, logged)
                    if phase.images is not None:  # pictures at the log cadence (the tokenizer: reconstructions)
                        writer.log_images(step + 1, phase.images())
                if progress is not None:
                    progress.set_postfix({k: f"{logged[k]:.4g}" for k in phase.postfix if k in logged})
            if progress is not None:
                progress.update(1)
            if (step + 1) % t.checkpoint_every == 0 or step + 1 == phase.steps:
                check_pending(phase.model)  # a quantizer's deferred NaN/Inf check must not pass into a checkpoint
                if info.is_main:
                    save(phase, cfg, step + 1, device)
                distributed.barrier()
    except NonFiniteLossError as error:  # say truly what is left: the newest checkpoint, or none
        raise NonFiniteLossError(f"{error} {ckpt.intact_after_failure(phase.run_dir)}") from None
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    phase.model.eval()


def accumulate_gradients(
    phase: Phase,
    network: nn.Module,
    step: int,
    micros: int,
    precision: str,
    device: torch.device,
    scaler: torch.amp.GradScaler | None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Forward and backward of the step's ``micros`` micro-batches (each loss scaled by ``1 / micros``, DDP's
    all-reduce only on the last); returns the mean loss and the mean of each logged value."""
    total = torch.zeros((), dtype=torch.float64)
    sums: dict[str, float] = {}
    for micro in range(micros):
        sync = micro == micros - 1 or not isinstance(network, nn.parallel.DistributedDataParallel)
        with nullcontext() if sync else network.no_sync():  # type: ignore[operator]
            with autocast(precision, device):
                if phase.accumulates:
                    loss, values = phase.loss(network, step, micro, micros)  # type: ignore[call-arg]
                else:
                    loss, values = phase.loss(network, step)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"{phase.name}: non-finite loss ({loss.detach().item()}) at step {step}; lower optim.lr or "
                    "check the data."
                )
            scaled = loss / micros
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += float(loss.detach()) / micros
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + float(value) / micros
    return total, sums


def ema_warmup_on(setting: bool | None, decay: float, steps: int, name: str) -> bool:
    """Whether the EMA warms up (``train.ema_warmup``: true, false, or None: on when ``steps < 5 / (1 - decay)``);
    warns when it is off and the run is too short for the EMA to forget the initial weights
    (``steps < 1 / (1 - decay)``)."""
    on = setting if setting is not None else steps < 5.0 / (1.0 - decay)
    if not on and steps < 1.0 / (1.0 - decay):
        warnings.warn(
            f"{name}: EMA decay {decay} without warm-up over {steps} steps: the evaluated EMA weights still hold "
            f"{decay**steps:.0%} of the initial weights (set train.ema_warmup=true or a lower train.ema_decay)",
            stacklevel=2,
        )
    return on


def compiles(setting: bool | str, device: torch.device) -> bool:
    """Whether ``train.compile`` compiles on ``device``: true/false as given; ``auto`` on CUDA only."""
    return setting is True or (setting == "auto" and device.type == "cuda")


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 (CUDA only: fp16 autocast on the CPU is refused); None for fp32/bf16."""
    if precision != "fp16":
        return None
    if device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs CUDA (a GradScaler for fp16 gradients); use bf16 or fp32")
    return torch.amp.GradScaler("cuda")


def save(phase: Phase, cfg: Any, step: int, device: torch.device) -> Path:
    """Write the phase's checkpoint of ``step``: weights (model, EMA, further modules), optimizers, RNG, state."""
    weights = {"model": phase.model.state_dict()}
    if phase.ema is not None:
        weights["ema"] = phase.ema.state_dict()
    weights.update({name: module.state_dict() for name, module in phase.modules.items()})
    torch_state: dict[str, Any] = {"optimizer": phase.optimizer.state_dict(), "rng": rng_state(device)}
    torch_state.update({name: optimizer.state_dict() for name, optimizer in phase.optimizers.items()})
    state = {"config_hash": resume_hash(cfg), "spec": phase.spec, "stage": phase.name}
    return ckpt.save_checkpoint(phase.run_dir, step, weights, torch_state, state, keep_last=cfg.train.keep_last)


def restore(directory: Path, phase: Phase, cfg: Any, device: torch.device) -> int:
    """Load a checkpoint written by :func:`save` into the phase; returns its step."""
    names = ["model"] + (["ema"] if phase.ema is not None else []) + list(phase.modules)
    weights, torch_state, state = ckpt.load_checkpoint(directory, names, resume_hash(cfg))
    try:
        phase.model.load_state_dict(weights["model"], strict=True)
        if phase.ema is not None:
            phase.ema.load_state_dict(weights["ema"])
        for name, module in phase.modules.items():
            module.load_state_dict(weights[name], strict=True)
        phase.optimizer.load_state_dict(torch_state["optimizer"])
        for name, optimizer in phase.optimizers.items():
            optimizer.load_state_dict(torch_state[name])
    except (RuntimeError, KeyError, ValueError) as error:
        raise ckpt.CheckpointMismatch(f"{directory} does not fit this model/config: {error}") from error
    set_rng_state(torch_state["rng"], device)
    return int(state["step"])
