"""Panoptic segmentation as a UViM task: a semantic class and an instance slot per pixel.

As in UViM's COCO panoptic setup (big_vision ``configs/proj/uvim/vqvae_coco_panoptic.py``), each pixel gets a
semantic class and an instance id, predicted as two independent per-pixel classifications. The classes are the
scenes' ``CLASS_NAMES`` (``fsq.data.scenes``): things = sphere, box, cylinder, cone; stuff = ground, sky. The
renderer numbers the instances of an image 1..n from near to far and gives stuff instance 0, so its ids are
already a canonical ordering (UViM reorders COCO's ids into one as preprocessing); ``max_instances`` bounds them.

    oracle input    one-hot semantic class (num_classes channels) followed by one-hot instance slot
                    (max_instances + 1 channels, slot 0 = stuff / no instance): (B, num_classes + max_instances + 1,
                    H, W); ids above max_instances are a ValueError (raise max_instances)
    loss            softmax cross-entropy of the semantic class, mean over all pixels, plus softmax cross-entropy
                    of the instance slot, mean over *thing* pixels only: stuff pixels carry no instance (decoding
                    sets it to 0 from the class), and counting them would dilute the instance term by the share of
                    ground and sky (most of an image); 0 for a batch without thing pixels
    decode          argmax class and argmax slot; the instance is set to 0 wherever the class is stuff
    metrics         ``panoptic_quality``: pq, sq, rq overall and over things / stuff, the class counts, and
                    ``pq_<class name>`` for each class present (fractions in [0, 1])
    baseline        "one segment per class present": the ground-truth classes, instance 1 on every thing pixel
                    (all instances of a class in an image merged into one segment), 0 on stuff
    context         the RGB image
    visualize       a fixed palette colour per (class, instance) segment blended 50 % with the image, with the
                    segment boundaries darkened
"""

from __future__ import annotations

import colorsys
import functools

import torch
import torch.nn.functional as F

from fsq.data.scenes import CLASS_NAMES, OBJECT_CLASSES
from fsq.metrics.dense import panoptic_quality
from fsq.tasks.base import Task

THING_CLASSES = tuple(CLASS_NAMES.index(name) for name in OBJECT_CLASSES)
BOUNDARY_DARKEN = 0.4  # boundary pixels keep this fraction of their overlay colour


@functools.lru_cache(maxsize=4)
def segment_palette(size: int) -> torch.Tensor:
    """(size, 3) float colours in [0, 1], fixed: hues spaced by the golden ratio, alternating brightness."""
    colors = [colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.75, 1.0 if k % 2 else 0.7) for k in range(size)]
    return torch.tensor(colors, dtype=torch.float32)


class PanopticTask(Task):
    """Semantic class and instance id per pixel of a synthetic scene.

    Args:
        max_instances: the largest instance id a target may hold (instance channels = max_instances + 1).
    """

    name = "panoptic"

    def __init__(self, max_instances: int = 16):
        if isinstance(max_instances, bool) or not isinstance(max_instances, int) or max_instances < 1:
            raise ValueError(f"panoptic task: max_instances must be an int >= 1, got {max_instances!r}")
        self.max_instances = max_instances
        self.num_classes = len(CLASS_NAMES)
        self.thing_classes = THING_CLASSES
        self.output_channels = self.num_classes + max_instances + 1
        self.options = {"max_instances": max_instances}

    def _is_thing(self, semantic: torch.Tensor) -> torch.Tensor:
        is_thing = torch.zeros(self.num_classes, dtype=torch.bool, device=semantic.device)
        is_thing[list(self.thing_classes)] = True
        return is_thing[semantic]

    def _targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        semantic, instance = self.field(batch, "semantic"), self.field(batch, "instance")
        if semantic.shape != instance.shape:
            raise ValueError(f"panoptic task: semantic {tuple(semantic.shape)} vs instance {tuple(instance.shape)}")
        if semantic.numel() and (semantic.min() < 0 or semantic.max() >= self.num_classes):
            raise ValueError(f"panoptic task: semantic classes must be in 0..{self.num_classes - 1} ({CLASS_NAMES})")
        if instance.numel() and instance.min() < 0:
            raise ValueError("panoptic task: instance ids must be >= 0")
        if instance.numel() and instance.max() > self.max_instances:
            raise ValueError(
                f"panoptic task: an instance id {int(instance.max())} exceeds max_instances={self.max_instances}; "
                "raise max_instances (or render fewer objects per scene)"
            )
        return semantic.long(), instance.long()

    def encode_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        semantic, instance = self._targets(batch)
        one_hot = torch.cat(
            [F.one_hot(semantic, self.num_classes), F.one_hot(instance, self.max_instances + 1)], dim=-1
        )
        return one_hot.permute(0, 3, 1, 2).float()

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check_output(out, batch)
        semantic, instance = self._targets(batch)
        out = out.float()
        semantic_loss = F.cross_entropy(out[:, : self.num_classes], semantic)
        per_pixel = F.cross_entropy(out[:, self.num_classes :], instance, reduction="none")
        things = self._is_thing(semantic)
        instance_loss = (per_pixel * things).sum() / things.sum().clamp(min=1)
        return semantic_loss + instance_loss

    def decode_prediction(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_output(out)
        semantic = out[:, : self.num_classes].argmax(dim=1)
        instance = out[:, self.num_classes :].argmax(dim=1)
        return {"semantic": semantic, "instance": torch.where(self._is_thing(semantic), instance, 0)}

    def _pred(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        semantic = self.field(pred, "semantic")
        instance = self.field(pred, "instance")
        if semantic.shape != instance.shape or semantic.shape != self.field(batch, "semantic").shape:
            raise ValueError(
                f"panoptic task: pred semantic {tuple(semantic.shape)} / instance {tuple(instance.shape)} vs "
                f"batch semantic {tuple(batch['semantic'].shape)}"
            )
        return semantic.long(), instance.long()

    def metrics(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, float]:
        semantic, instance = self._pred(pred, batch)
        result = panoptic_quality(
            semantic, instance, *self._targets(batch), num_classes=self.num_classes, thing_classes=self.thing_classes
        )
        per_class = result.pop("per_class")
        for c, stats in per_class.items():
            if stats["tp"] + stats["fp"] + stats["fn"]:
                result[f"pq_{CLASS_NAMES[c]}"] = stats["pq"]
        return result

    def baseline(self, batch: dict[str, torch.Tensor], train_batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The trivial prediction: the training set's most frequent class at each pixel (the image is not looked
        at), one segment per class present (every thing pixel of a class in one instance)."""
        semantic, _ = self._targets(batch)
        train_semantic, _ = self._targets(train_batch)
        counts = F.one_hot(train_semantic, self.num_classes).sum(0)  # (H, W, C)
        mode = counts.argmax(-1).to(semantic.device)
        prior = mode.expand_as(semantic).clone()
        return {"semantic": prior, "instance": self._is_thing(prior).long()}

    def visualize(self, pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        semantic, instance = self._pred(pred, batch)
        image = self.context(batch).float()
        key = semantic * (self.max_instances + 1) + instance.clamp(min=0)
        palette = segment_palette(self.num_classes * (self.max_instances + 1)).to(image.device)
        overlay = 0.5 * palette[key % len(palette)].permute(0, 3, 1, 2) + 0.5 * image
        boundary = torch.zeros_like(key, dtype=torch.bool)
        boundary[:, :, 1:] |= key[:, :, 1:] != key[:, :, :-1]
        boundary[:, 1:, :] |= key[:, 1:, :] != key[:, :-1, :]
        overlay = torch.where(boundary.unsqueeze(1), overlay * BOUNDARY_DARKEN, overlay)
        return (overlay.clamp(0, 1) * 255).round().to(torch.uint8)
