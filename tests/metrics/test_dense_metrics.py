"""Dense-task metrics on hand-made cases: depth errors (per-image vs pooled RMSE) and panoptic quality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fsq.metrics.dense import STAT_NAMES, PanopticAccumulator, depth_metrics, panoptic_quality

# Panoptic test classes: 0 = "ground" (stuff), 1 = "object" (thing), 2 = "sky" (stuff), 3 = "animal" (thing).
NUM_CLASSES = 4
THINGS = (1, 3)
VOID = 255


def maps(*rows: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, H, W) semantic and instance maps from rows of "class:instance" tokens; "v" is void."""
    sem, inst = [], []
    for row in rows:
        cells = [cell.split(":") if cell != "v" else [str(VOID), "0"] for cell in row.split()]
        sem.append([int(c[0]) for c in cells])
        inst.append([int(c[1]) if len(c) > 1 else 0 for c in cells])
    return torch.tensor([sem]), torch.tensor([inst])


def pq(pred: tuple, gt: tuple, **kwargs) -> dict:
    kwargs = {"num_classes": NUM_CLASSES, "thing_classes": THINGS, "void_label": VOID} | kwargs
    return panoptic_quality(*pred, *gt, **kwargs)


def counts(result: dict, c: int) -> tuple[int, int, int]:
    s = result["per_class"][c]
    return s["tp"], s["fp"], s["fn"]


# ------------------------------------------------------------------------------------------------------- depth
def test_depth_scaled_prediction_hand_computed():
    target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]]).unsqueeze(1)  # (1, 1, 2, 2)
    m = depth_metrics(2 * target, target)
    assert m["abs_rel"] == pytest.approx(1.0)
    assert m["delta1"] == m["delta2"] == m["delta3"] == 0.0  # ratio 2 > 1.25^3 = 1.953
    assert m["log10"] == pytest.approx(math.log10(2))
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 4 + 16 + 64) / 4))
    m = depth_metrics(1.5 * target, target)
    assert m["abs_rel"] == pytest.approx(0.5)
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.0, 1.0, 1.0)  # 1.25 < 1.5 < 1.5625
    perfect = depth_metrics(target, target)
    assert (perfect["rmse"], perfect["abs_rel"], perfect["log10"], perfect["delta1"]) == (0.0, 0.0, 0.0, 1.0)


def test_per_image_rmse_differs_from_global():
    target = torch.ones(2, 2, 2)
    pred = target + 1.0  # image 0: error 1 on 4 pixels -> RMSE 1
    target[1] = 0.0  # image 1: one valid pixel only ...
    target[1, 0, 0] = 1.0
    pred[1, 0, 0] = 4.0  # ... with error 3 -> RMSE 3
    m = depth_metrics(pred, target)
    assert m["rmse"] == pytest.approx(2.0)  # mean of per-image RMSE (UViM / FSQ paper)
    assert m["rmse_global"] == pytest.approx(math.sqrt((4 * 1 + 9) / 5))  # pooled over the 5 valid pixels
    assert (m["num_images"], m["num_pixels"]) == (2, 5)
    assert m["abs_rel"] == pytest.approx((1.0 + 3.0) / 2)  # per image, then over images


def test_depth_matches_uvim_evaluator_formulas():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 6, 7, generator=g) * 10
    pred = (target * torch.exp(0.3 * torch.randn(3, 1, 6, 7, generator=g))).clamp(min=1e-3)
    valid = (target > 1e-3) & (target < 9)
    m = depth_metrics(pred, target, valid)
    # big_vision evaluators/proj/uvim/nyu_depth.py, image by image in numpy.
    per = {k: [] for k in ("rmse", "abs_rel", "log10", "delta1", "delta2", "delta3")}
    for p, t, v in zip(pred.double().numpy(), target.double().numpy(), valid.numpy()):
        p, t = p[v], t[v]
        per["rmse"].append(np.sqrt(np.mean((t - p) ** 2)))
        per["abs_rel"].append(np.mean(np.abs(t - p) / t))
        per["log10"].append(np.mean(np.abs(np.log10(t) - np.log10(p))))
        for k in (1, 2, 3):
            per[f"delta{k}"].append(np.mean(np.maximum(t / p, p / t) < 1.25**k))
    for key, values in per.items():
        assert m[key] == pytest.approx(float(np.mean(values)), rel=1e-12), key
    diff = (pred.double() - target.double())[valid]
    assert m["rmse_global"] == pytest.approx(float(diff.square().mean().sqrt()), rel=1e-12)


def test_depth_shapes_masks_and_empty_images():
    target = torch.full((2, 1, 3, 3), 2.0)
    pred = torch.full((2, 1, 3, 3), 3.0)
    assert depth_metrics(pred, target) == depth_metrics(pred[:, 0], target[:, 0])
    target[1] = 0.0  # no valid pixel: left out of the per-image averages
    pred[1] = float("nan")  # invalid pixels may hold anything
    m = depth_metrics(pred, target)
    assert (m["rmse"], m["num_images"], m["num_pixels"]) == (1.0, 1, 9)
    valid = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    valid[0, 0, 0, 0] = True
    assert depth_metrics(pred, target, valid)["num_pixels"] == 1


@pytest.mark.parametrize(
    ("pred", "target", "valid", "message"),
    [
        (torch.ones(2, 3, 3), torch.ones(2, 3, 4), None, "shapes differ"),
        (torch.ones(2, 3, 3, 3), torch.ones(2, 3, 3, 3), None, r"\(N, 1, H, W\) or \(N, H, W\)"),
        (torch.ones(3, 3), torch.ones(3, 3), None, r"\(N, 1, H, W\) or \(N, H, W\)"),
        (torch.tensor([[[1.0, float("nan")]]]), torch.ones(1, 1, 2), None, "pred has NaN"),
        (torch.tensor([[[1.0, 0.0]]]), torch.ones(1, 1, 2), None, "pred has values <= 0"),
        (torch.ones(1, 1, 2), torch.tensor([[[1.0, -1.0]]]), torch.ones(1, 1, 2, dtype=torch.bool), "target has"),
        (torch.ones(1, 1, 2), torch.tensor([[[1.0, float("inf")]]]), None, "target has NaN or infinite"),
        (torch.ones(1, 1, 2), torch.ones(1, 1, 2), torch.ones(1, 1, 2), "bool mask"),
        (torch.ones(1, 1, 2), torch.ones(1, 1, 2), torch.ones(1, 1, 3, dtype=torch.bool), "valid shape"),
        (torch.ones(1, 1, 2), torch.zeros(1, 1, 2), None, "no valid pixel"),
    ],
)
def test_depth_errors(pred, target, valid, message):
    with pytest.raises(ValueError, match=message):
        depth_metrics(pred, target, valid)


# ---------------------------------------------------------------------------------------------------- panoptic
def test_perfect_prediction_is_one_even_with_other_instance_ids():
    gt = maps("0 0 1:1 1:1 2 2", "0 0 1:1 1:1 3:4 3:4", "0 1:2 1:2 v 3:4 3:4")
    for pred in (gt, (gt[0], torch.where(gt[0] == 3, 9, gt[1]))):  # instance ids are only labels
        r = pq(pred, gt)
        assert (r["pq"], r["sq"], r["rq"]) == (1.0, 1.0, 1.0)
        assert (r["pq_things"], r["pq_stuff"], r["n"], r["n_things"], r["n_stuff"]) == (1.0, 1.0, 4, 2, 2)
        assert counts(r, 1) == (2, 0, 0) and counts(r, 3) == (1, 0, 0)


def test_iou_exactly_half_is_not_a_match():
    gt = maps("0 0 1:1 1:1 1:1 1:1 0 0")
    pred = maps("0 0 0 0 1:1 1:1 0 0")  # object IoU 2 / 4 = 0.5
    r = pq(pred, gt)
    assert counts(r, 1) == (0, 1, 1)
    assert r["per_class"][1]["pq"] == 0.0
    assert r["per_class"][0] == {"pq": 2 / 3, "sq": 2 / 3, "rq": 1.0, "tp": 1, "fp": 0, "fn": 0}  # ground 4 / 6
    assert r["pq"] == pytest.approx((2 / 3 + 0) / 2)  # classes 0 and 1 present; 2 and 3 absent
    assert r["rq"] == pytest.approx(0.5)
    assert r["n"] == 2


def test_iou_point_six_is_a_match_with_sq_point_six():
    gt = maps("0 0 1:1 1:1 1:1 1:1 1:1 0 0 0")
    pred = maps("0 0 0 0 1:3 1:3 1:3 0 0 0")  # object IoU 3 / 5
    s = pq(pred, gt)["per_class"][1]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 0)
    assert (s["sq"], s["rq"], s["pq"]) == (pytest.approx(0.6), 1.0, pytest.approx(0.6))


def test_two_gt_instances_merged_into_one_prediction():
    # Equal halves: IoU 3 / 6 with each -> no match at all.
    r = pq(maps("1:1 1:1 1:1 1:1 1:1 1:1"), maps("1:1 1:1 1:1 1:2 1:2 1:2"))
    assert counts(r, 1) == (0, 1, 2) and r["pq"] == 0.0
    # 4 + 2 pixels: the big instance matches (IoU 4 / 6), the small one is missed.
    s = pq(maps("1:1 1:1 1:1 1:1 1:1 1:1"), maps("1:1 1:1 1:1 1:1 1:2 1:2"))["per_class"][1]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)
    assert s["sq"] == pytest.approx(2 / 3)
    assert s["rq"] == pytest.approx(1 / (1 + 0.5))
    assert s["pq"] == pytest.approx((2 / 3) / 1.5)


def test_extra_predicted_instance_is_a_false_positive():
    gt = maps("1:1 1:1 0 0 0 0 0 0 1:2 1:2")
    pred = maps("1:1 1:1 0 1:3 1:3 0 0 0 1:2 1:2")
    r = pq(pred, gt)
    s = r["per_class"][1]
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 0)
    assert s["rq"] == pytest.approx(2 / (2 + 0.5 * 1 + 0.5 * 0))
    assert (s["sq"], s["pq"]) == (1.0, pytest.approx(0.8))
    assert r["per_class"][0]["sq"] == pytest.approx(4 / 6)  # ground: 2 of its 6 pixels taken by the extra one
    assert r["pq"] == pytest.approx((0.8 + 4 / 6) / 2)


def test_stuff_segments_ignore_instance_ids():
    gt = maps("2:1 2:1 2:1 2:2 2:2 2:2")
    pred = maps("2:5 2:5 2:5 2:5 2:5 2:5")
    r = pq(pred, gt)
    assert (r["pq"], counts(r, 2)) == (1.0, (1, 0, 0))
    # The same maps with class 2 as a thing: two ground-truth segments, each with IoU 0.5 -> nothing matches.
    r = pq(pred, gt, thing_classes=(1, 2, 3))
    assert (r["pq"], counts(r, 2)) == (0.0, (0, 1, 2))


def test_void_pixels_leave_the_union():
    gt = maps("0 1:1 1:1 1:1 1:1 v v v v 0")
    pred = maps("0 1:1 1:1 1:1 1:1 1:1 1:1 1:1 1:1 0")  # 4 px on the object + 4 on void: IoU 4 / 4, not 4 / 8
    r = pq(pred, gt)
    assert counts(r, 1) == (1, 0, 0) and r["per_class"][1]["sq"] == 1.0
    assert VOID not in r["per_class"]
    # Without a void label, 255 is not a class: a clear error instead of a silent segment.
    with pytest.raises(ValueError, match="outside 0..3"):
        pq(pred, gt, void_label=None)


def test_predictions_mostly_on_void_are_not_false_positives():
    gt = maps("0 0 0 0 v v v v v 0 0 0")
    # Instance 1: 2 of 3 px on void -> ignored. Instance 2: 2 of 4 px on void (not more than half) -> FP.
    pred = maps("0 0 0 1:1 1:1 1:1 v 1:2 1:2 1:2 1:2 0")
    r = pq(pred, gt)
    assert counts(r, 1) == (0, 1, 0)
    # Predicted void is no segment, but the ground-truth pixels it covers still count in the ground truth's area.
    r = pq(maps("0 v v 1:1 1:1 0"), maps("0 1:1 1:1 1:1 1:1 0"))
    assert counts(r, 1) == (0, 1, 1)  # IoU 2 / 4


def test_void_label_inside_the_class_range():
    gt = maps("0 0 1:1 1:1 2 2 2")
    pred = maps("0 1:1 1:1 1:1 1:1 2 2")  # object: 4 px, 1 on void, 2 shared -> IoU 2 / (2 + 4 - 2 - 1)
    r = panoptic_quality(*pred, *gt, num_classes=3, thing_classes=[1], void_label=0)
    assert set(r["per_class"]) == {1, 2}  # class 0 is void, not a class
    assert r["per_class"][1]["sq"] == pytest.approx(2 / 3)
    assert r["per_class"][2]["sq"] == pytest.approx(2 / 3)


def test_classes_average_over_present_classes_only():
    # ground perfect (PQ 1); object matched with IoU 3/4 (PQ 0.75); sky only predicted (FP, PQ 0); animal absent.
    gt = maps("0 0 0 1:1 1:1 1:1 1:1 0")
    pred = maps("0 0 2 1:7 1:7 1:7 0 0")
    r = pq(pred, gt)
    assert [counts(r, c) for c in range(NUM_CLASSES)] == [(1, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 0)]
    ground = 3 / 5  # ground: 4 gt px, 4 predicted, 3 shared -> IoU 3 / 5
    assert r["per_class"][0]["pq"] == pytest.approx(ground)
    assert r["per_class"][3] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "tp": 0, "fp": 0, "fn": 0}
    assert (r["n"], r["n_things"], r["n_stuff"]) == (3, 1, 2)
    assert r["pq"] == pytest.approx((ground + 0.75 + 0.0) / 3)
    assert r["sq"] == pytest.approx((ground + 0.75 + 0.0) / 3)  # mean of per-class SQ (0 for the FP-only class)
    assert r["rq"] == pytest.approx((1 + 1 + 0) / 3)
    assert (r["pq_things"], r["pq_stuff"]) == (pytest.approx(0.75), pytest.approx(ground / 2))
    stuff_only = pq(maps("0 2"), maps("0 2"))
    assert math.isnan(stuff_only["pq_things"]) and stuff_only["pq_stuff"] == 1.0


def _random_panoptic(n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Blocky random maps and a perturbed prediction, so that matches, misses and void all occur."""
    g = torch.Generator().manual_seed(seed)

    def blocky(high: int) -> torch.Tensor:
        coarse = torch.randint(0, high, (n, 4, 4), generator=g)
        return coarse.repeat_interleave(4, 1).repeat_interleave(4, 2)

    gt_sem, gt_inst = blocky(NUM_CLASSES), blocky(3)
    gt_sem = torch.where(torch.rand(gt_sem.shape, generator=g) < 0.05, VOID, gt_sem)
    flip = torch.rand(gt_sem.shape, generator=g) < 0.2
    pred_sem = torch.where(flip, torch.randint(0, NUM_CLASSES, gt_sem.shape, generator=g), gt_sem)
    pred_sem = torch.where(pred_sem == VOID, 0, pred_sem)
    pred_inst = torch.where(torch.rand(gt_sem.shape, generator=g) < 0.1, 2, gt_inst)
    return pred_sem, pred_inst, gt_sem, gt_inst


def _loop_reference(pred_sem, pred_inst, gt_sem, gt_inst) -> torch.Tensor:
    """panopticapi's pq_compute_single_core, image by image with dicts (slow, obviously correct)."""
    state = torch.zeros(4, NUM_CLASSES, dtype=torch.float64)

    def segment(s, i):
        return None if s == VOID else (s, i if s in THINGS else 0)

    for image in range(gt_sem.shape[0]):
        pixels = zip(*(x[image].flatten().tolist() for x in (pred_sem, pred_inst, gt_sem, gt_inst)))
        gt_area, pred_area, inter, on_void = {}, {}, {}, {}
        for a, b, c, d in pixels:
            p, q = segment(a, b), segment(c, d)
            if p is not None:
                pred_area[p] = pred_area.get(p, 0) + 1
                if q is None:
                    on_void[p] = on_void.get(p, 0) + 1
            if q is not None:
                gt_area[q] = gt_area.get(q, 0) + 1
            if p is not None and q is not None:
                inter[q, p] = inter.get((q, p), 0) + 1
        matched_gt, matched_pred = set(), set()
        for (q, p), n in inter.items():
            if q[0] != p[0]:
                continue
            iou = n / (gt_area[q] + pred_area[p] - n - on_void.get(p, 0))
            if iou > 0.5:
                state[0, q[0]] += 1
                state[3, q[0]] += iou
                matched_gt.add(q)
                matched_pred.add(p)
        for q in gt_area.keys() - matched_gt:
            state[2, q[0]] += 1
        for p in pred_area.keys() - matched_pred:
            if on_void.get(p, 0) / pred_area[p] <= 0.5:
                state[1, p[0]] += 1
    return state


def test_matches_a_loop_port_of_panopticapi_on_random_maps():
    batch = _random_panoptic(6, seed=1)
    acc = PanopticAccumulator(NUM_CLASSES, THINGS, VOID)
    acc.update(*batch)
    expected = _loop_reference(*batch)
    assert torch.allclose(acc.state_tensor(), expected, rtol=0, atol=1e-12)
    assert expected[0].sum() > 0 and expected[1].sum() > 0 and expected[2].sum() > 0  # the case is not trivial


def _assert_same_counts(a: PanopticAccumulator, b: PanopticAccumulator) -> None:
    """TP / FP / FN equal; IoU sums equal up to float summation order; so are the derived metrics."""
    assert torch.equal(a.state_tensor()[:3], b.state_tensor()[:3])
    assert torch.allclose(a.state_tensor()[3], b.state_tensor()[3], rtol=1e-12, atol=0)
    ra, rb = a.compute(), b.compute()
    assert {k: v for k, v in ra.items() if k != "per_class"} == pytest.approx(
        {k: v for k, v in rb.items() if k != "per_class"}, rel=1e-12
    )
    for c, stats in ra["per_class"].items():
        assert stats == pytest.approx(rb["per_class"][c], rel=1e-12)


def test_accumulated_batches_equal_one_concatenated_batch():
    a, b = _random_panoptic(3, seed=2), _random_panoptic(2, seed=3)
    streamed = PanopticAccumulator(NUM_CLASSES, THINGS, VOID)
    streamed.update(*a)
    streamed.update(*b)
    concatenated = [torch.cat(x) for x in zip(a, b)]
    whole = PanopticAccumulator(NUM_CLASSES, THINGS, VOID)
    whole.update(*concatenated)
    _assert_same_counts(streamed, whole)
    assert whole.compute() == pq(concatenated[:2], concatenated[2:])
    # DDP: each rank counts its share; the summed state tensors rebuild the same result.
    ranks = [PanopticAccumulator(NUM_CLASSES, THINGS, VOID) for _ in range(2)]
    ranks[0].update(*a)
    ranks[1].update(*b)
    state = ranks[0].state_tensor() + ranks[1].state_tensor()
    assert state.shape == (len(STAT_NAMES), NUM_CLASSES) and state.dtype == torch.float64
    merged = PanopticAccumulator.from_state_tensor(state, thing_classes=THINGS, void_label=VOID)
    _assert_same_counts(merged, whole)
    merged.all_reduce()  # no process group: a no-op
    _assert_same_counts(merged, whole)
    merged.reset()
    assert merged.compute()["n"] == 0 and math.isnan(merged.compute()["pq"])


def test_panoptic_errors():
    sem, inst = maps("0 1:1")
    with pytest.raises(ValueError, match=r"four \(N, H, W\) tensors of one shape"):
        panoptic_quality(sem, inst, sem[:, :, :1], inst[:, :, :1], num_classes=2, thing_classes=[1])
    with pytest.raises(ValueError, match=r"four \(N, H, W\) tensors of one shape"):
        panoptic_quality(sem[0], inst[0], sem[0], inst[0], num_classes=2, thing_classes=[1])
    with pytest.raises(ValueError, match="integer tensor"):
        panoptic_quality(sem.float(), inst, sem, inst, num_classes=2, thing_classes=[1])
    with pytest.raises(ValueError, match="gt_semantic has values outside 0..1"):
        panoptic_quality(sem, inst, sem + 1, inst, num_classes=2, thing_classes=[1])
    with pytest.raises(ValueError, match="pred_instance has negative ids on thing pixels"):
        panoptic_quality(sem, -inst, sem, inst, num_classes=2, thing_classes=[1])
    panoptic_quality(sem, inst - 1, sem, inst, num_classes=2, thing_classes=[1])  # stuff ids are never read
    with pytest.raises(ValueError, match="outside 0..1"):
        PanopticAccumulator(2, [2])
    with pytest.raises(ValueError, match="cannot also be a thing"):
        PanopticAccumulator(2, [1], void_label=1)
    with pytest.raises(ValueError, match="num_classes"):
        PanopticAccumulator(0, [])
    with pytest.raises(ValueError, match=r"\(4, num_classes\)"):
        PanopticAccumulator.from_state_tensor(torch.zeros(3, 2), thing_classes=[1])
