"""Stage II sample quality of a class-conditional video MaskGIT, judged frame by frame by the MNIST class judge.

A Moving MNIST clip is labelled by the class of its first digit, and each frame shows two digits; the judge
(:mod:`fsq.evaluation.classifier`, a small CNN trained on single MNIST digits) sees one whole frame at a time. So
its agreement with a clip's label is well below 100% even on real clips: every number here is printed beside the
same number for real held-out clips, which is the reference a perfect generator would reach.

- ``agreement``: the share of sampled frames the judge assigns to the class the clip was conditioned on (classes
  in equal shares), and ``agreement_per_frame`` over frame positions; ``real_agreement``: the same on as many real
  held-out clips (their first digit's class).
- ``judge_fd``: the Frechet distance between the judge's penultimate features of the sampled frames and of the real
  frames (not FID: a stand-in computed in the judge's feature space, comparable only under the same judge).
- ``codes_used`` / ``code_cap``: distinct codes in the sampled token grids, of the codes countable from them.

The judge is trained on MNIST at ``JUDGE_SIZE`` px (its digits span about 11 px, near the 14 px digits of 32 px
Moving MNIST frames) and cached; frames are judged at their own size (the judge pools any size to a 3x3 grid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fsq.data.signals import to_unit
from fsq.evaluation.classifier import load_or_train_classifier, penultimate_features, predict
from fsq.generation.token_layout import layout_of
from fsq.inference.sampling import class_labels, decode, generate
from fsq.metrics.image import fid_from_features
from fsq.metrics.video import frames_as_images
from fsq.quantizers.stats import CodebookUsage
from fsq.stages.maskgit import load_run as load_maskgit
from fsq.stages.tokenizer import load_run as load_tokenizer
from fsq.stages.tokenizer import open_split

JUDGE_SOURCE, JUDGE_SIZE = "mnist", 16


def frame_agreement(judge: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T) booleans: whether the judge assigns each frame of (B, C, T, H, W) clips in ``[0, 1]`` to its clip's
    label."""
    b, _, t = clips.shape[:3]
    predicted = predict(judge, frames_as_images(clips).float()).view(b, t)  # type: ignore[arg-type]
    return predicted == labels.view(b, 1).to(predicted.device)


def judge_samples(
    judge: torch.nn.Module, samples: torch.Tensor, labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor
) -> dict[str, Any]:
    """The judged numbers of sampled clips (conditioned on ``labels``) against real clips (``real_labels``), all
    (B, C, T, H, W) in ``[0, 1]``."""
    if samples.shape[1:] != real.shape[1:]:
        raise ValueError(f"sampled clips {tuple(samples.shape)} and real clips {tuple(real.shape)} differ in shape")
    ok, real_ok = frame_agreement(judge, samples, labels), frame_agreement(judge, real, real_labels)
    fake_features = penultimate_features(judge, frames_as_images(samples).float())  # type: ignore[arg-type]
    real_features = penultimate_features(judge, frames_as_images(real).float())  # type: ignore[arg-type]
    return {
        "agreement": ok.double().mean().item(),
        "agreement_per_frame": ok.double().mean(0).tolist(),
        "real_agreement": real_ok.double().mean().item(),
        "real_agreement_per_frame": real_ok.double().mean(0).tolist(),
        "judge_fd": fid_from_features(real_features, fake_features),
        "num_samples": int(samples.shape[0]),
        "num_real": int(real.shape[0]),
    }


@torch.no_grad()
def evaluate_video_samples(
    maskgit_dir: str | Path, *, num_samples: int, seed: int = 0, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Sample ``num_samples`` clips (classes in equal shares, no guidance) from a class-conditional video MaskGIT
    run, decode them with its tokenizer and judge them frame by frame against as many real held-out clips of the
    tokenizer's data (centred time crops, as its evaluation)."""
    device = torch.device(device)
    model, step, cfg = load_maskgit(maskgit_dir)
    if not model.spec.num_classes:
        raise ValueError(f"{maskgit_dir}: an unconditional MaskGIT; the judge scores class-conditional samples")
    tokenizer, _ = load_tokenizer(cfg.data.tokenizer)
    from fsq.config import read_run_config
    from fsq.stages.tokenizer import item_transform

    tok_cfg = read_run_config(cfg.data.tokenizer)
    labels = class_labels(num_samples, model.spec.num_classes)
    assert labels is not None
    e = cfg.eval
    tokens = generate(
        model,
        labels,
        num=num_samples,
        steps=e.steps,
        choice_temperature=e.choice_temperature,
        temperature=e.temperature,
        seed=seed,
        batch_size=e.batch_size,
        device=device,
    )
    samples = decode(tokenizer, tokens, e.batch_size, device, layout_of(model.spec))
    held_out = open_split(tok_cfg, tok_cfg.data.eval_split, num_samples)
    transform = item_transform(tok_cfg, held_out, train=False)
    real = to_unit(torch.stack([transform(held_out.read(i)) for i in range(len(held_out))]))
    real_labels = torch.tensor([held_out.label(i) for i in range(len(held_out))])
    if (real_labels < 0).any():
        raise ValueError(f"{tok_cfg.data.source}: held-out clips without labels cannot be judged by class")
    judge, record = load_or_train_classifier(JUDGE_SOURCE, JUDGE_SIZE, cache_dir=tok_cfg.data.cache_dir)
    usage = CodebookUsage(model.spec.codebook_size)
    usage.update(tokens)
    summary = usage.summary()
    return {
        "step": step,
        **judge_samples(judge, samples, labels, real, real_labels),
        "judge": f"{JUDGE_SOURCE} {JUDGE_SIZE} px CNN, test accuracy {record['test_accuracy']:.4f} on single digits",
        "decoding_steps": e.steps,
        "guidance": 0.0,
        "codes_used": summary.codes_used,
        "code_cap": min(model.spec.codebook_size, summary.tokens),
    }
