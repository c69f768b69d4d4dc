"""The UViM task protocol, its shared checks, and the registry ``get_task(name, **options)``.

UViM (Kolesnikov et al. 2022; FSQ paper section 4.4) learns every dense task with one pipeline: a Stage I
oracle autoencodes the *target* (with the image as context) through a discrete code, and Stage II predicts
that code from the image. The tasks differ only in how a target becomes the oracle's per-pixel input, how the
oracle's per-pixel output is scored and decoded, and how predictions are measured; a ``Task`` says exactly that:

    encode_target(batch)        -> (B, output_channels, H, W) float: the ideal output, also the oracle's input
    loss(out, batch)            -> scalar: training loss of the oracle's (B, output_channels, H, W) output
    decode_prediction(out)      -> dict of prediction tensors (e.g. {"depth": (B, 1, H, W)})
    metrics(pred, batch)        -> dict of floats over a whole evaluation set
    baseline(batch, train_batch)-> a trivial prediction, in the format of decode_prediction
    context(batch)              -> (B, context_channels, H, W) float in [0, 1]: the image the model sees
    visualize(pred, batch)      -> (B, 3, H, W) uint8 pictures of the predictions

``decode_prediction(encode_target(batch))`` gives back the target up to the task's quantization. A batch is a
dict of tensors: ``"image"`` (B, 3, H, W) float in [0, 1] and the task's targets (``fsq.data.dense`` builds
them). Task objects hold only their options; they keep no state between calls.
"""

from __future__ import annotations

import abc
import importlib
import inspect

import torch

# name -> "module:Class"; resolved on use so that this module imports none of the task modules
_REGISTRY = {
    "depth": "fsq.tasks.depth:DepthTask",
    "colorization": "fsq.tasks.colorization:ColorizationTask",
    "panoptic": "fsq.tasks.panoptic:PanopticTask",
}


class Task(abc.ABC):
    """A UViM dense prediction task (see the module docstring for the protocol)."""

    name: str = ""
    output_channels: int = 0
    context_channels: int = 3
    options: dict  # the constructor's arguments, for configs and reports (each task sets its own)

    @abc.abstractmethod
    def encode_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abc.abstractmethod
    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abc.abstractmethod
    def decode_prediction(self, out: torch.Tensor) -> dict[str, torch.Tensor]: ...

    @abc.abstractmethod
    def metrics(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, float]: ...

    @abc.abstractmethod
    def baseline(
        self, batch: dict[str, torch.Tensor], train_batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]: ...

    @abc.abstractmethod
    def visualize(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def context(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The RGB image, (B, 3, H, W) float in [0, 1]."""
        return self.field(batch, "image", channels=3)

    # ---------------------------------------------------------------------------------------------- checks
    def field(self, batch: dict[str, torch.Tensor], key: str, *, channels: int | None = None) -> torch.Tensor:
        """``batch[key]``, checked: (B, channels, H, W) floating point if ``channels`` is given, else (B, H, W)
        integer; a missing key or a wrong shape / dtype is a ValueError that names the task and the key."""
        if key not in batch:
            raise ValueError(f"{self.name} task: the batch has no {key!r}; it has keys {sorted(batch)}")
        x = batch[key]
        if channels is not None:
            want, ok = f"(B, {channels}, H, W) float", x.ndim == 4 and x.shape[1] == channels and x.is_floating_point()
        else:
            want, ok = "(B, H, W) integer", x.ndim == 3 and not (x.is_floating_point() or x.dtype == torch.bool)
        if not ok:
            raise ValueError(f"{self.name} task: batch[{key!r}] must be {want}, got {x.dtype} {tuple(x.shape)}")
        return x

    def check_output(self, out: torch.Tensor, batch: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``out`` checked to be (B, output_channels, H, W) floating point (and of the batch's B, H, W if given)."""
        if not (isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[1] == self.output_channels):
            got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{self.name} task: outputs must be (B, {self.output_channels}, H, W), got {got}")
        if not out.is_floating_point():
            raise ValueError(f"{self.name} task: outputs must be floating point, got {out.dtype}")
        if batch is not None:
            image = self.field(batch, "image", channels=3)
            b, _, h, w = image.shape
            if (out.shape[0], *out.shape[2:]) != (b, h, w):
                raise ValueError(
                    f"{self.name} task: outputs {tuple(out.shape)} do not match the batch's images {tuple(image.shape)}"
                )
        return out

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in getattr(self, "options", {}).items())
        return f"{type(self).__name__}({options})"


def task_names() -> tuple[str, ...]:
    """The registered task names."""
    return tuple(_REGISTRY)


def get_task(name: str, **options) -> Task:
    """A new task object: ``get_task("depth", bins=128)``. Unknown names and options are ValueErrors that list
    the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; the tasks are {list(_REGISTRY)}")
    module, cls_name = _REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"{name} task has no option(s) {unknown}; its options are {valid}")
    return cls(**options)
