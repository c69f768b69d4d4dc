"""Metrics of UViM's dense prediction tasks: depth (RMSE, AbsRel, log10, delta < 1.25^k) and panoptic quality.

Depth follows UViM's NYU Depth v2 evaluator (big_vision ``evaluators/proj/uvim/nyu_depth.py``): every metric is
computed per image over its valid pixels and then averaged over images; ``rmse`` is that per-image RMSE (the
number UViM and the FSQ paper report). ``rmse_global`` is the RMSE of all valid pixels pooled, given alongside
because the two are easily confused; they differ whenever images have different numbers of valid pixels or
different error levels.

Panoptic quality follows Kirillov et al. 2019 as the COCO ``panopticapi`` ``pq_compute`` implements it:
    segment  = the pixels of one image with one (semantic class, instance id) pair; for a stuff class all pixels of
               the class in the image (instance ids ignored); pixels with ``void_label`` belong to no segment.
    match    = a predicted and a ground-truth segment of the same class with IoU > 0.5 (unique by construction),
               where IoU = |P n G| / (|P u G| - |P n void|): predicted pixels on ground-truth void leave the union.
    TP, FN   = matched / unmatched ground-truth segments; FP = unmatched predicted segments, except those whose
               pixels lie mostly (> 50 %) on ground-truth void.
    per class: PQ = sum IoU(TP) / (TP + FP/2 + FN/2), SQ = sum IoU(TP) / TP (0 without TP), RQ = TP / (TP + FP/2 + FN/2)
    overall  = the mean of the per-class values over the classes present (TP + FP + FN > 0), so the overall SQ is
               the mean of per-class SQ, not PQ / RQ; counts are summed over all images first (dataset-level PQ).
COCO "crowd" ground-truth regions are not modelled: mark them void to ignore them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.distributed as dist

DELTA_BASE = 1.25
MATCH_IOU = 0.5  # a match needs IoU strictly above this
VOID_FP_FRACTION = 0.5  # an unmatched prediction more than this fraction on void is not a false positive
STAT_NAMES = ("tp", "fp", "fn", "iou_sum")  # the rows of PanopticAccumulator.state_tensor()


# -------------------------------------------------------------------------------------------------------- depth
def _depth_maps(x: torch.Tensor, name: str) -> torch.Tensor:
    """(N, H, W) view of an (N, 1, H, W) or (N, H, W) tensor."""
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"depth_metrics: {name} must be (N, 1, H, W) or (N, H, W), got shape {tuple(x.shape)}")
    return x


def depth_metrics(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> dict[str, float]:
    """Depth errors over the valid pixels, per image then averaged over images (UViM's NYU evaluator).

    Args:
        pred, target: (N, 1, H, W) or (N, H, W) depths of equal shape (any real dtype; computed in float64).
        valid: bool mask of the same shape; default ``target > 0`` (so NaN or zero targets count as missing).
            UViM's NYU protocol is ``valid = (target > 1e-3) & (target < 10)`` on the 426x560 eval crop.

    Returns:
        ``rmse``: per-image sqrt(mean (p - t)^2), averaged over images (the number UViM / the FSQ paper report);
        ``rmse_global``: sqrt of the mean (p - t)^2 over all valid pixels of all images pooled;
        ``abs_rel``: mean |p - t| / t; ``log10``: mean |log10 p - log10 t|;
        ``delta1``, ``delta2``, ``delta3``: fraction of pixels with max(p / t, t / p) < 1.25, 1.25^2, 1.25^3;
        (these four per image, then averaged over images), and ``num_images`` / ``num_pixels`` counted.
        Images without a valid pixel are left out of the averages (``num_images`` says how many remained).
        To combine batches, weight each batch's per-image means by ``num_images`` and ``rmse_global ** 2`` by
        ``num_pixels``.

    Raises:
        ValueError: shapes that differ or are not depth maps; a non-bool mask; no valid pixel at all; a valid
            pixel whose prediction or target is NaN / infinite or not positive (ratios and logs need p, t > 0:
            clamp predictions to the task's minimum depth first, as UViM's bin decoder does by construction).
    """
    p, t = _depth_maps(pred, "pred"), _depth_maps(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"depth_metrics: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if p.is_complex() or t.is_complex() or p.dtype == torch.bool or t.dtype == torch.bool:
        raise ValueError(f"depth_metrics: pred and target must be real depths, got {p.dtype} and {t.dtype}")
    p, t = p.double(), t.double()
    if valid is None:
        v = t > 0
    else:
        if valid.dtype != torch.bool:
            raise ValueError(f"depth_metrics: valid must be a bool mask, got {valid.dtype}")
        v = _depth_maps(valid, "valid")
        if v.shape != t.shape:
            raise ValueError(
                f"depth_metrics: valid shape {tuple(valid.shape)} does not match target {tuple(target.shape)}"
            )
    for name, x in (("pred", p), ("target", t)):
        if not torch.isfinite(x[v]).all():
            raise ValueError(f"depth_metrics: {name} has NaN or infinite values at valid pixels")
        if not (x[v] > 0).all():
            raise ValueError(
                f"depth_metrics: {name} has values <= 0 at valid pixels (min {x[v].min().item():.4g}); relative "
                "errors, delta and log10 need positive depths"
                + (": clamp predictions to the minimum depth" if name == "pred" else ": exclude them with valid")
            )
    count = v.sum(dim=(1, 2))
    if int(count.sum()) == 0:
        raise ValueError("depth_metrics: no valid pixel (valid mask / target > 0 is empty)")
    # Invalid pixels get p = t = 1 so nothing there can produce NaN; the mask then removes them from every sum.
    p, t = torch.where(v, p, 1.0), torch.where(v, t, 1.0)
    ratio = torch.maximum(p / t, t / p)

    def per_image_mean(x: torch.Tensor) -> torch.Tensor:
        return torch.where(v, x, 0.0).sum(dim=(1, 2))[count > 0] / count[count > 0]

    squared = (p - t).square()
    out = {
        "rmse": per_image_mean(squared).sqrt().mean().item(),
        "rmse_global": math.sqrt(torch.where(v, squared, 0.0).sum().item() / int(count.sum())),
        "abs_rel": per_image_mean((p - t).abs() / t).mean().item(),
        "log10": per_image_mean((p.log10() - t.log10()).abs()).mean().item(),
    }
    for k in (1, 2, 3):
        out[f"delta{k}"] = per_image_mean((ratio < DELTA_BASE**k).double()).mean().item()
    out["num_images"] = int((count > 0).sum())
    out["num_pixels"] = int(count.sum())
    return out


# ----------------------------------------------------------------------------------------------------- panoptic
def _segment_keys(
    semantic: torch.Tensor, instance: torch.Tensor, is_thing: torch.Tensor, void_label: int | None, radix: int
) -> torch.Tensor:
    """int64 segment id of every pixel: ``(image * C + class) * radix + instance`` (instance 0 for stuff), -1 void."""
    num_classes = is_thing.numel()
    void = semantic == void_label if void_label is not None else torch.zeros_like(semantic, dtype=torch.bool)
    cls = torch.where(void, 0, semantic).long()
    thing = is_thing[cls] & ~void
    inst = torch.where(thing, instance.long(), 0)
    image = torch.arange(semantic.shape[0], device=semantic.device).view(-1, 1, 1)
    return torch.where(void, -1, (image * num_classes + cls) * radix + inst)


class PanopticAccumulator:
    """Streams panoptic-quality counts over batches; :meth:`compute` gives dataset-level PQ / SQ / RQ.

    Args:
        num_classes: semantic classes ``0 .. num_classes - 1`` (``void_label`` may be one of them or outside).
        thing_classes: the classes whose segments are (class, instance id) pairs; every other class is stuff.
        void_label: semantic value of unlabelled pixels, in ground truth (ignored) and predictions (no segment).

    Under ``torch.distributed``, call :meth:`all_reduce` on every rank before :meth:`compute`, or all-reduce
    :meth:`state_tensor` yourself and rebuild with :meth:`from_state_tensor`.
    """

    def __init__(self, num_classes: int, thing_classes: Iterable[int], void_label: int | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        things = sorted({int(c) for c in thing_classes})
        bad = [c for c in things if not 0 <= c < num_classes]
        if bad:
            raise ValueError(f"thing_classes {bad} are outside 0..{num_classes - 1}")
        if void_label is not None and void_label in things:
            raise ValueError(f"void_label {void_label} cannot also be a thing class")
        self.num_classes = num_classes
        self.thing_classes = tuple(things)
        self.void_label = void_label
        self._is_thing = torch.zeros(num_classes, dtype=torch.bool)
        self._is_thing[things] = True
        self._state = torch.zeros(len(STAT_NAMES), num_classes, dtype=torch.float64)

    # ---------------------------------------------------------------------------------------------- counting
    def _check(self, pred_semantic, pred_instance, gt_semantic, gt_instance) -> None:
        tensors = {
            "pred_semantic": pred_semantic,
            "pred_instance": pred_instance,
            "gt_semantic": gt_semantic,
            "gt_instance": gt_instance,
        }
        shapes = {name: tuple(x.shape) for name, x in tensors.items()}
        if len(set(shapes.values())) != 1 or pred_semantic.ndim != 3:
            raise ValueError(f"panoptic quality needs four (N, H, W) tensors of one shape, got {shapes}")
        for name, x in tensors.items():
            if x.is_floating_point() or x.is_complex():
                raise ValueError(f"{name} must be an integer tensor, got {x.dtype}")
        for prefix, semantic, instance in (("pred", pred_semantic, pred_instance), ("gt", gt_semantic, gt_instance)):
            values = semantic[self._labelled(semantic)]
            bad = values[(values < 0) | (values >= self.num_classes)]
            if bad.numel():
                raise ValueError(
                    f"{prefix}_semantic has values outside 0..{self.num_classes - 1} that are not "
                    f"void_label={self.void_label}: {sorted(set(bad.tolist()))[:8]}"
                )
            ids = instance[self._thing_pixels(semantic)]
            if ids.numel() and ids.min() < 0:
                raise ValueError(f"{prefix}_instance has negative ids on thing pixels")

    def _labelled(self, semantic: torch.Tensor) -> torch.Tensor:
        if self.void_label is None:
            return torch.ones_like(semantic, dtype=torch.bool)
        return semantic != self.void_label

    def _thing_pixels(self, semantic: torch.Tensor) -> torch.Tensor:
        """Pixels of thing classes (``semantic`` already checked to be a class or void)."""
        labelled = self._labelled(semantic)
        return labelled & self._is_thing.to(semantic.device)[torch.where(labelled, semantic, 0).long()]

    def batch_statistics(
        self,
        pred_semantic: torch.Tensor,
        pred_instance: torch.Tensor,
        gt_semantic: torch.Tensor,
        gt_instance: torch.Tensor,
    ) -> torch.Tensor:
        """(4, num_classes) float64 counts of one batch, rows ``STAT_NAMES`` = (TP, FP, FN, sum of TP IoUs)."""
        self._check(pred_semantic, pred_instance, gt_semantic, gt_instance)
        device = gt_semantic.device
        is_thing = self._is_thing.to(device)
        thing_ids = [
            inst[self._thing_pixels(sem)] for sem, inst in ((pred_semantic, pred_instance), (gt_semantic, gt_instance))
        ]
        radix = 1 + max([int(ids.max()) for ids in thing_ids if ids.numel()], default=0)
        gt_key = _segment_keys(gt_semantic, gt_instance, is_thing, self.void_label, radix).flatten()
        pred_key = _segment_keys(pred_semantic, pred_instance, is_thing, self.void_label, radix).flatten()

        gt_ids, gt_inv, gt_area = torch.unique(gt_key, return_inverse=True, return_counts=True)
        pred_ids, pred_inv, pred_area = torch.unique(pred_key, return_inverse=True, return_counts=True)
        pair, inter = torch.unique(gt_inv * len(pred_ids) + pred_inv, return_counts=True)
        gi, pj = pair // len(pred_ids), pair % len(pred_ids)
        gt_void, pred_void = gt_ids[gi] < 0, pred_ids[pj] < 0
        # Pixels of each predicted segment that lie on ground-truth void.
        on_void = torch.zeros(len(pred_ids), dtype=torch.int64, device=device)
        on_void.index_add_(0, pj[gt_void], inter[gt_void])

        # Candidate pairs: both labelled, same image and class (the key without its instance digit).
        same = ~gt_void & ~pred_void & (gt_ids[gi] // radix == pred_ids[pj] // radix)
        gi, pj, inter = gi[same], pj[same], inter[same]
        union = gt_area[gi] + pred_area[pj] - inter - on_void[pj]
        iou = inter.double() / union.double()
        match = iou > MATCH_IOU
        gt_matched = torch.zeros(len(gt_ids), dtype=torch.bool, device=device)
        pred_matched = torch.zeros(len(pred_ids), dtype=torch.bool, device=device)
        gt_matched[gi[match]] = True
        pred_matched[pj[match]] = True

        def class_of(ids: torch.Tensor) -> torch.Tensor:
            return (ids // radix) % self.num_classes

        c = self.num_classes
        tp = torch.bincount(class_of(gt_ids[gi[match]]), minlength=c)
        iou_sum = torch.bincount(class_of(gt_ids[gi[match]]), weights=iou[match], minlength=c)
        fn = torch.bincount(class_of(gt_ids[(gt_ids >= 0) & ~gt_matched]), minlength=c)
        mostly_void = on_void.double() > VOID_FP_FRACTION * pred_area.double()
        fp = torch.bincount(class_of(pred_ids[(pred_ids >= 0) & ~pred_matched & ~mostly_void]), minlength=c)
        return torch.stack([tp.double(), fp.double(), fn.double(), iou_sum.double()]).cpu()

    def update(
        self,
        pred_semantic: torch.Tensor,
        pred_instance: torch.Tensor,
        gt_semantic: torch.Tensor,
        gt_instance: torch.Tensor,
    ) -> None:
        """Add one batch of (N, H, W) integer maps (on any device); segments never span images."""
        self._state += self.batch_statistics(pred_semantic, pred_instance, gt_semantic, gt_instance)

    def reset(self) -> None:
        self._state.zero_()

    # ---------------------------------------------------------------------------------------------- DDP state
    def state_tensor(self) -> torch.Tensor:
        """A copy of the raw sums, (4, num_classes) float64 on CPU, rows ``STAT_NAMES``; sum it over ranks."""
        return self._state.clone()

    @classmethod
    def from_state_tensor(
        cls, state: torch.Tensor, *, thing_classes: Iterable[int], void_label: int | None = None
    ) -> PanopticAccumulator:
        """An accumulator holding ``state`` (e.g. an all-reduced :meth:`state_tensor`); num_classes from its shape."""
        if state.ndim != 2 or state.shape[0] != len(STAT_NAMES):
            raise ValueError(f"state must be ({len(STAT_NAMES)}, num_classes), got {tuple(state.shape)}")
        acc = cls(state.shape[1], thing_classes, void_label)
        acc._state = state.detach().to("cpu", torch.float64).clone()
        return acc

    def all_reduce(self, group=None) -> None:
        """Sum the counts over all ranks (a no-op without an initialised process group). Call on every rank."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else "cpu"
        state = self._state.to(device)
        dist.all_reduce(state, group=group)
        self._state = state.cpu()

    # ---------------------------------------------------------------------------------------------- results
    def compute(self) -> dict:
        """PQ / SQ / RQ overall, over things and over stuff (NaN where no class of the kind is present), the
        number of present classes ``n`` / ``n_things`` / ``n_stuff``, and ``per_class`` {class id: {pq, sq, rq,
        tp, fp, fn}} for every class but ``void_label`` (zeros for classes that never appeared)."""
        per_class: dict[int, dict[str, float | int]] = {}
        for c in range(self.num_classes):
            if c == self.void_label:
                continue
            tp, fp, fn, iou_sum = self._state[:, c].tolist()
            denom = tp + 0.5 * fp + 0.5 * fn
            per_class[c] = {
                "pq": iou_sum / denom if denom else 0.0,
                "sq": iou_sum / tp if tp else 0.0,
                "rq": tp / denom if denom else 0.0,
                "tp": int(tp),
                "fp": int(fp),
                "fn": int(fn),
            }
        out: dict = {}
        kinds = {"": lambda c: True, "_things": lambda c: c in self.thing_classes}
        kinds["_stuff"] = lambda c: c not in self.thing_classes
        for suffix, keep in kinds.items():
            present = [s for c, s in per_class.items() if keep(c) and s["tp"] + s["fp"] + s["fn"] > 0]
            for metric in ("pq", "sq", "rq"):
                out[metric + suffix] = sum(s[metric] for s in present) / len(present) if present else math.nan
            out["n" + suffix] = len(present)
        out["per_class"] = per_class
        return out


def panoptic_quality(
    pred_semantic: torch.Tensor,
    pred_instance: torch.Tensor,
    gt_semantic: torch.Tensor,
    gt_instance: torch.Tensor,
    *,
    num_classes: int,
    thing_classes: Iterable[int],
    void_label: int | None = None,
) -> dict:
    """Dataset-level panoptic quality of one batch of (N, H, W) integer maps (see the module docstring).

    Returns :meth:`PanopticAccumulator.compute`'s dict: ``pq``, ``sq``, ``rq``, ``pq_things`` ... ``rq_stuff``,
    ``n``, ``n_things``, ``n_stuff`` and ``per_class``. Values are fractions in [0, 1] (multiply by 100 for the
    "points" papers print).
    """
    acc = PanopticAccumulator(num_classes, thing_classes, void_label)
    acc.update(pred_semantic, pred_instance, gt_semantic, gt_instance)
    return acc.compute()
