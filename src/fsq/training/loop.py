"""The one training loop, for every stage and phase; stages supply their batches and explicit step functions
(:mod:`fsq.stages`).

Per step: the learning rate from the schedule, the phase's batch of the step split into ``train.accumulate``
micro-batches, the step function on each under autocast, the non-finite check and backward (the gradient
all-reduce only on the last micro-batch), gradient clipping, the optimizer step, the EMA update, then the phase's
critic (the GAN discriminator) on the same micro-batches the same way; every ``log_every`` steps the window's means
over steps and ranks go to ``metrics.jsonl`` and TensorBoard; every ``checkpoint_every`` steps (and at the end)
rank 0 writes an atomic checkpoint. A run dir that holds a checkpoint resumes from it exactly: weights, EMA,
optimizers and RNG state come back, and the phases give the batch of every step from ``(seed, step)``. Under
torchrun every trainable module is DDP-wrapped and each rank computes its share of the global batch; everything
that depends on the rank goes through :mod:`fsq.distributed`.

``hooks`` are called before every step with ``(phase name, step)``: a public seam for callbacks, and for tests
that interrupt a run at a chosen step.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsq import checkpoint as ckpt
from fsq import distributed, rundir
from fsq.config import ConfigError, resume_hash
from fsq.optim import lr_at
from fsq.quantizers.finite import check_pending
from fsq.stages.base import Batch, Critic, NonFiniteLossError, Phase, Stage, StepFunction
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
    ``"eval"``: what ``evaluate(run_dir, cfg=cfg, trained=trained)`` returned (``trained``: what the stage's
    phases returned, its trained models, so nothing is loaded twice).
    """
    run_dir = Path(run_dir)
    dist = setup_process(cfg)
    check_run_dir(cfg, run_dir)  # another config's run is refused before any work
    with owned_run_dir(run_dir, dist, "training", undo_failed_start=True):  # a failed start leaves nothing
        check_run_dir(cfg, run_dir)  # again, now that no one else can write it
        t = cfg.train
        if t.batch_size % (dist.world_size * t.accumulate):
            raise ValueError(
                f"train.batch_size={t.batch_size} must be a multiple of ranks x train.accumulate "
                f"({dist.world_size} x {t.accumulate})"
            )
        started: list[str] = []

        def run(phase: Phase) -> None:
            if not started:  # data and model built: a config that cannot build has failed before any write
                dist.on_main(partial(write_run_dir, cfg, run_dir, dist.world_size), None)
            started.append(phase.name)
            run_phase(phase, cfg, dist, hooks)

        trained = stage.phases(cfg, run_dir, dist, run)
        final = stage.final_step(cfg)
        result: dict[str, Any] = {"run_dir": str(run_dir), "step": final}
        if evaluate is not None and cfg.train.eval_at_end and not rundir.has_eval(run_dir, final):
            result["eval"] = evaluate(run_dir, cfg=cfg, trained=trained)
            if dist.is_main and result["eval"]:  # to TensorBoard (and W&B): numbers, images, histograms
                histograms = stage.histograms(cfg, run_dir, trained) if stage.histograms else None
                publish_evaluation(run_dir, final, result["eval"], histograms=histograms, wandb_mode=wandb_mode())
        elif dist.is_main and rundir.has_eval(run_dir, final):
            print(evaluation_found(run_dir, final), flush=True)
        distributed.barrier()
    return result


def run_phase(phase: Phase, cfg: Any, dist: distributed.DistInfo, hooks: Sequence[StepHook] = ()) -> None:
    """Train one phase from its newest checkpoint (or from scratch) to ``phase.steps``."""
    t, o, device = cfg.train, phase.optim, dist.device
    start = ckpt.load_newest(phase.run_dir, lambda folder: restore(folder, phase, cfg, device)) or 0
    if start == 0 and getattr(t, "init_from", None):
        initialize_from(phase, t.init_from)
    if start > phase.steps:
        raise ConfigError(
            f"{phase.run_dir} holds a checkpoint of step {start}, past this config's {phase.name} steps "
            f"({phase.steps}): a shorter run cannot resume from it (raise the step count, or use a new run dir)"
        )
    if dist.is_main:
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
    network = dist.wrap(phase.model)
    if compiles(t.compile, device):
        network = torch.compile(network)  # type: ignore[assignment]
    critic = phase.critic
    critic_network = dist.wrap(critic.model) if critic is not None else None
    in_autocast = partial(autocast, t.precision, device)
    if dist.is_main:
        phase.run_dir.mkdir(parents=True, exist_ok=True)
    writer = MetricsWriter(phase.run_dir, resume_step=start, wandb_mode=wandb_mode()) if dist.is_main else None
    progress = progress_bar(phase.steps, start, f"{cfg.name} {phase.name}", dist.is_main and t.progress)
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
            batches = micro_batches(phase.batch(step), micros)
            loss, values, passed = accumulate_gradients(
                phase.loss, network, batches, step, phase.name, in_autocast, scaler
            )
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
            if critic is not None and critic_network is not None and step >= critic.start:
                scale = lr / o.lr if o.lr > 0 else 0.0  # the critic follows the model's schedule
                values.update(train_critic(critic, critic_network, passed, step, scale, phase.name))
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
                        writer.log_images(step + 1, phase.images(passed))
                if progress is not None:
                    progress.set_postfix({k: f"{logged[k]:.4g}" for k in phase.postfix if k in logged})
            if progress is not None:
                progress.update(1)
            if (step + 1) % t.checkpoint_every == 0 or step + 1 == phase.steps:
                check_pending(phase.model)  # a quantizer's deferred NaN/Inf check must not pass into a checkpoint
                dist.on_main(partial(save, phase, cfg, step + 1, device), None)
    except NonFiniteLossError as error:  # say truly what is left: the newest checkpoint, or none
        raise NonFiniteLossError(f"{error} {ckpt.intact_after_failure(phase.run_dir)}") from None
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    phase.model.eval()


def micro_batches(batch: Batch, micros: int) -> list[Batch]:
    """``batch`` split into ``micros`` equal micro-batches along dim 0 (every tensor of a tuple / dict; anything
    else goes to each micro-batch as it is)."""
    if micros == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        if batch.shape[0] % micros:
            raise ValueError(f"a batch of {batch.shape[0]} does not split into {micros} equal micro-batches")
        return list(batch.chunk(micros))
    if isinstance(batch, dict):
        parts = {key: micro_batches(value, micros) for key, value in batch.items()}
        return [{key: part[i] for key, part in parts.items()} for i in range(micros)]
    if isinstance(batch, (tuple, list)):
        columns = [micro_batches(value, micros) for value in batch]
        return [type(batch)(column[i] for column in columns) for i in range(micros)]
    return [batch] * micros


def accumulate_gradients(
    loss_fn: StepFunction,
    network: nn.Module,
    batches: Sequence[Batch],
    step: int,
    name: str,
    context: Callable[[], AbstractContextManager[Any]],
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, dict[str, Any], list[dict[str, torch.Tensor]]]:
    """Forward (in ``context()``: autocast) and backward of the step's micro-batches, each loss scaled by
    ``1 / len(batches)``, the gradient all-reduce only on the last (:func:`fsq.distributed.synced`); returns the
    mean loss, the mean of each logged value and what each micro-batch's step passed on."""
    micros = len(batches)
    total = torch.zeros((), dtype=torch.float64)
    sums: dict[str, float] = {}
    passed: list[dict[str, torch.Tensor]] = []
    for micro, batch in enumerate(batches):
        with distributed.synced(network, sync=micro == micros - 1):
            with context():
                out = loss_fn(network, batch, step)
            if not torch.isfinite(out.loss):
                raise NonFiniteLossError(
                    f"{name}: non-finite loss ({out.loss.detach().item()}) at step {step}; lower optim.lr or "
                    "check the data."
                )
            scaled = out.loss / micros
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += float(out.loss.detach()) / micros
        for key, value in out.logged.items():
            sums[key] = sums.get(key, 0.0) + float(value) / micros
        passed.append(out.passed)
    return total, sums, passed


def train_critic(
    critic: Critic, network: nn.Module, passed: list[dict[str, torch.Tensor]], step: int, scale: float, phase: str
) -> dict[str, Any]:
    """One optimizer step of a phase's critic (the GAN discriminator) at ``critic.lr * scale``: its step function on
    what the model's step passed on for each micro-batch, gradients accumulated and averaged over ranks as the
    model's (no autocast); returns the mean of each logged value."""
    for group in critic.optimizer.param_groups:
        group["lr"] = critic.lr * scale
    critic.optimizer.zero_grad(set_to_none=True)
    _, values, _ = accumulate_gradients(critic.loss, network, passed, step, f"{phase} {critic.name}", nullcontext)
    critic.optimizer.step()
    return values


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
    torch_state: dict[str, Any] = {"optimizer": phase.optimizer.state_dict(), "rng": rng_state(device)}
    if phase.critic is not None:
        weights[phase.critic.name] = phase.critic.model.state_dict()
        torch_state[phase.critic.optimizer_name] = phase.critic.optimizer.state_dict()
    state = {"config_hash": resume_hash(cfg), "spec": phase.spec, "stage": phase.name}
    return ckpt.save_checkpoint(phase.run_dir, step, weights, torch_state, state, keep_last=cfg.train.keep_last)


def initialize_from(phase: Phase, source: str | Path) -> None:
    """Load weights into a fresh phase (``train.init_from``) as its model and its EMA: the newest checkpoint of the
    run dir ``source`` (its EMA weights when it has them, else its weights), or else the tokenizer bundle ``source``
    names (a folder ``fsq export`` or ``save_pretrained`` wrote, a shipped name such as ``photos64-fsq``, or a hub
    repo id), so that a recipe can fine-tune a shipped model. The model spec saved with the weights must be the
    phase's; the config may differ (that is the point: a fine-tune with another loss)."""
    folder = ckpt.latest_checkpoint(source) if Path(source).is_dir() else None
    if folder is not None:
        state = ckpt.read_state(folder, None, "")
        ckpt.check_spec(state.get("spec") or {}, phase.spec, folder, f"train.init_from's run ({phase.run_dir})")
        name = "ema" if (folder / "ema.safetensors").is_file() else "model"
        weights, origin = ckpt.load_safetensors(folder / f"{name}.safetensors"), folder
        what = f"{name} weights of step {state.get('step')}"
    else:
        origin, weights, what = _bundle_weights(phase, source)
    try:
        phase.model.load_state_dict(weights, strict=True)
        if phase.ema is not None:
            phase.ema.load_state_dict(weights)
    except RuntimeError as error:
        raise ckpt.CheckpointMismatch(f"train.init_from: {origin} does not fit this model: {error}") from error
    print(f"initialized from {origin} ({what})", flush=True)


def _bundle_weights(phase: Phase, source: str | Path) -> tuple[Path, dict[str, torch.Tensor], str]:
    """(folder, weights, description) of the tokenizer bundle ``source`` names (a MaskGIT bundle's tokenizer, as
    ``Tokenizer.from_pretrained`` reads it), its spec checked against the phase's; a :class:`ConfigError` when
    ``source`` is neither a run dir with a checkpoint nor such a bundle."""
    from fsq import hub

    try:
        directory, meta = hub.tokenizer_bundle(hub.resolve(source))
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(
            f"train.init_from={source}: no checkpoint there to start from, and no tokenizer bundle either (a run dir "
            f"`fsq train` wrote, a bundle folder, a shipped model name or a hub repo id): {error}"
        ) from None
    from fsq.models.autoencoder import TokenizerSpec
    from fsq.models.quantizer import nested_quantizer

    saved = nested_quantizer(meta.get("spec") or {}, {f.name for f in fields(TokenizerSpec)})  # fsq 0.1's flat keys
    differing = ckpt.spec_differences(saved, phase.spec)
    if differing:
        raise ConfigError(
            f"train.init_from={source}: the bundle's model ({directory}) is not the one this config builds "
            f"({'; '.join(differing[:5])}): set the model and quantizer sections to the bundle's"
        )
    return directory, ckpt.load_safetensors(directory / "model.safetensors"), "the bundle's weights"


def restore(directory: Path, phase: Phase, cfg: Any, device: torch.device) -> int:
    """Load a checkpoint written by :func:`save` into the phase; returns its step."""
    critic = phase.critic
    names = ["model"] + (["ema"] if phase.ema is not None else []) + ([critic.name] if critic is not None else [])
    weights, torch_state, state = ckpt.load_checkpoint(directory, names, resume_hash(cfg))
    try:
        phase.model.load_state_dict(weights["model"], strict=True)
        if phase.ema is not None:
            phase.ema.load_state_dict(weights["ema"])
        phase.optimizer.load_state_dict(torch_state["optimizer"])
        if critic is not None:
            critic.model.load_state_dict(weights[critic.name], strict=True)
            critic.optimizer.load_state_dict(torch_state[critic.optimizer_name])
    except (RuntimeError, KeyError, ValueError) as error:
        raise ckpt.CheckpointMismatch(f"{directory} does not fit this model/config: {error}") from error
    set_rng_state(torch_state["rng"], device)
    return int(state["step"])
