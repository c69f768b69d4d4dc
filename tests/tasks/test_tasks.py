"""UViM tasks: round trips of encode_target / decode_prediction, losses, baselines, metrics, pictures, errors."""

from __future__ import annotations

import pytest
import torch

from fsq.data.dense import load_task_data
from fsq.data.scenes import BOX, GROUND, SKY, SPHERE
from fsq.tasks import ColorizationTask, DepthTask, PanopticTask, get_task, task_names
from fsq.tasks.colorization import chroma, luminance


@pytest.fixture(scope="module")
def scenes() -> dict[str, torch.Tensor]:
    return load_task_data("depth", "train", 8, image_size=16, seed=3)


def panoptic_batch() -> dict[str, torch.Tensor]:
    """One 8x8 image: sky on the top row, ground below, two spheres (instances 1, 2) and a box (instance 3)."""
    semantic = torch.full((1, 8, 8), GROUND)
    semantic[0, 0] = SKY
    instance = torch.zeros(1, 8, 8, dtype=torch.int64)
    for k, (cls, rows, cols) in enumerate([(SPHERE, (2, 4), (0, 3)), (SPHERE, (2, 4), (5, 8)), (BOX, (5, 8), (2, 6))]):
        semantic[0, rows[0] : rows[1], cols[0] : cols[1]] = cls
        instance[0, rows[0] : rows[1], cols[0] : cols[1]] = k + 1
    return {
        "image": torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)),
        "semantic": semantic,
        "instance": instance,
    }


# ---------------------------------------------------------------------------------------------------- registry
def test_registry_builds_every_task_with_options():
    assert task_names() == ("depth", "colorization", "panoptic")
    assert isinstance(get_task("depth", bins=16), DepthTask) and get_task("depth", bins=16).output_channels == 16
    assert get_task("colorization").output_channels == 3 and get_task("colorization").context_channels == 1
    assert get_task("panoptic", max_instances=4).output_channels == 6 + 5
    assert "bins=16" in repr(get_task("depth", bins=16))


def test_registry_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="unknown task 'segmentation'.*depth"):
        get_task("segmentation")
    with pytest.raises(ValueError, match=r"no option\(s\) \['levels'\].*bins"):
        get_task("depth", levels=3)
    with pytest.raises(ValueError, match="bins must be an int >= 2"):
        get_task("depth", bins=1)
    with pytest.raises(ValueError, match="decode must be one of"):
        get_task("depth", decode="median")
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        get_task("depth", min_depth=5.0, max_depth=5.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        get_task("colorization", loss="huber")
    with pytest.raises(ValueError, match="max_instances must be an int >= 1"):
        get_task("panoptic", max_instances=0)


@pytest.mark.parametrize("name", ["depth", "colorization", "panoptic"])
def test_outputs_and_batches_are_checked(name, scenes):
    task = get_task(name)
    out = task.encode_target(scenes)
    with pytest.raises(ValueError, match=rf"{name} task: outputs must be \(B, {task.output_channels}, H, W\)"):
        task.decode_prediction(out[:, :-1])
    with pytest.raises(ValueError, match="do not match the batch"):
        task.loss(out[:, :, :8], scenes)
    with pytest.raises(ValueError, match="floating point"):
        task.decode_prediction(out.long())
    with pytest.raises(ValueError, match="the batch has no 'image'"):
        task.context({})
    with pytest.raises(ValueError, match=r"batch\['image'\] must be \(B, 3, H, W\) float"):
        task.context({"image": scenes["image"][:, :1]})


def test_every_task_sees_an_image_in_unit_range(scenes):
    for name in task_names():
        task = get_task(name)
        ctx = task.context(scenes)
        assert ctx.shape == (8, task.context_channels, 16, 16) and ctx.dtype == torch.float32
        assert 0 <= ctx.min() and ctx.max() <= 1


# ------------------------------------------------------------------------------------------------------- depth
def test_depth_round_trip_is_within_half_a_bin(scenes):
    task = DepthTask(bins=64, max_depth=10.0)
    target = task.encode_target(scenes)
    assert target.shape == (8, 64, 16, 16) and torch.equal(target.sum(1), torch.ones(8, 16, 16))
    depth = task.decode_prediction(target)["depth"]
    assert depth.shape == (8, 1, 16, 16)
    assert (depth - scenes["depth"]).abs().max() <= task.bin_width / 2 + 1e-5
    soft = DepthTask(decode="expectation").decode_prediction(50 * target)["depth"]  # logits: scale the one-hot
    assert (soft - scenes["depth"]).abs().max() <= task.bin_width / 2 + 1e-4


def test_depth_bins_at_the_range_edges():
    task = DepthTask(bins=4, min_depth=0.0, max_depth=8.0)  # bins of 2 m, centres 1, 3, 5, 7
    depth = torch.tensor([0.0, 1.99, 2.0, 8.0, 12.0]).view(1, 1, 1, 5)
    assert task.bin_index(depth).flatten().tolist() == [0, 0, 1, 3, 3]
    decoded = task.decode_prediction(task.encode_target({"depth": depth}))["depth"]
    assert decoded.flatten().tolist() == [1.0, 1.0, 3.0, 7.0, 7.0]
    logits = torch.zeros(1, 4, 1, 1)  # uniform softmax: expectation = mean of the centres
    assert DepthTask(bins=4, max_depth=8.0, decode="expectation").decode_prediction(logits)["depth"].item() == 4.0


def test_depth_loss_prefers_the_target(scenes):
    task = DepthTask()
    target = task.encode_target(scenes)
    good, bad = task.loss(20 * target, scenes), task.loss(torch.randn_like(target), scenes)
    assert good.ndim == 0 and good < 1e-6 < bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        task.loss(target, {**scenes, "depth": torch.full_like(scenes["depth"], float("nan"))})


def test_depth_baseline_is_the_training_mean(scenes):
    task = DepthTask()
    train = {"depth": torch.stack([torch.full((1, 2, 2), 1.0), torch.tensor([[[3.0, 5.0], [7.0, 9.0]]])])}
    batch = {"image": torch.rand(3, 3, 2, 2)}
    pred = task.baseline(batch, train)["depth"]
    assert pred.shape == (3, 1, 2, 2)
    assert torch.equal(pred, torch.tensor([[[2.0, 3.0], [4.0, 5.0]]]).expand(3, 1, 2, 2))
    assert torch.allclose(task.baseline(scenes, scenes)["depth"][0], scenes["depth"].mean(0))
    with pytest.raises(ValueError, match="training depth"):
        task.baseline(scenes, train)


def test_depth_metrics_on_exact_and_baseline_predictions(scenes):
    task = DepthTask()
    exact = task.metrics({"depth": scenes["depth"].clone()}, scenes)
    assert exact["rmse"] == 0 and exact["abs_rel"] == 0 and exact["delta1"] == 1 and exact["num_images"] == 8
    decoded = task.metrics(task.decode_prediction(task.encode_target(scenes)), scenes)
    assert 0 < decoded["rmse"] <= task.bin_width / 2
    assert task.metrics(task.baseline(scenes, scenes), scenes)["rmse"] > decoded["rmse"]


def test_depth_pictures_use_viridis():
    task = DepthTask(max_depth=10.0)
    picture = task.visualize({"depth": torch.tensor([0.0, 10.0, 20.0]).view(1, 1, 1, 3)}, {})
    assert picture.dtype == torch.uint8 and picture.shape == (1, 3, 1, 3)
    assert picture[0, :, 0, 0].tolist() == [68, 1, 84]  # viridis(0)
    assert picture[0, :, 0, 1].tolist() == [253, 231, 37] == picture[0, :, 0, 2].tolist()  # viridis(1), clipped


# ------------------------------------------------------------------------------------------------ colorization
def colour_batch() -> dict[str, torch.Tensor]:
    return {"image": torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))}


def test_colorization_round_trip_is_exact():
    task, batch = ColorizationTask(), colour_batch()
    target = task.encode_target(batch)
    assert torch.equal(task.decode_prediction(target)["rgb"], batch["image"])
    assert task.decode_prediction(target * 3 - 1)["rgb"].aminmax() == (torch.tensor(0.0), torch.tensor(1.0))


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_colorization_loss_prefers_the_target(loss):
    task, batch = ColorizationTask(loss=loss), colour_batch()
    target = task.encode_target(batch)
    assert task.loss(target, batch) == 0 < task.loss(torch.randn_like(target), batch)


def test_colorization_context_and_baseline_are_grey():
    task, batch = ColorizationTask(), colour_batch()
    ctx = task.context(batch)
    r, g, b = batch["image"].unbind(1)
    assert ctx.shape == (4, 1, 8, 8) and torch.allclose(ctx[:, 0], 0.299 * r + 0.587 * g + 0.114 * b)
    grey = task.baseline(batch, batch)["rgb"]
    assert grey.shape == (4, 3, 8, 8) and torch.equal(grey, ctx.expand(-1, 3, -1, -1))
    assert chroma(grey).sub(0.5).abs().max() < 1e-6  # grey has no chroma


def test_colorization_metrics():
    task, batch = ColorizationTask(), colour_batch()
    perfect = task.metrics(task.decode_prediction(task.encode_target(batch)), batch)
    assert perfect == {"psnr": 100.0, "chroma_mae": 0.0, "num_images": 4}
    base = task.metrics(task.baseline(batch, batch), batch)
    assert 5 < base["psnr"] < 30 and base["chroma_mae"] > 0.01
    grey_batch = {"image": luminance(batch["image"]).expand(-1, 3, -1, -1)}  # a grey photo: the baseline is right
    assert task.metrics(task.baseline(grey_batch, grey_batch), grey_batch)["chroma_mae"] < 1e-6
    with pytest.raises(ValueError, match=r"pred\['rgb'\]"):
        task.metrics({"rgb": batch["image"][:2]}, batch)


def test_colorization_pictures_are_the_rgb():
    task, batch = ColorizationTask(), colour_batch()
    picture = task.visualize({"rgb": batch["image"]}, batch)
    assert picture.dtype == torch.uint8 and torch.equal(picture, (batch["image"] * 255).round().to(torch.uint8))


# ---------------------------------------------------------------------------------------------------- panoptic
def test_panoptic_round_trip_is_exact_with_pq_one(scenes):
    task = PanopticTask(max_instances=8)
    for batch in (panoptic_batch(), scenes):
        target = task.encode_target(batch)
        assert target.shape[1] == 6 + 9 and torch.equal(target.sum(1), torch.full(target[:, 0].shape, 2.0))
        pred = task.decode_prediction(target)
        assert torch.equal(pred["semantic"], batch["semantic"]) and torch.equal(pred["instance"], batch["instance"])
        result = task.metrics(pred, batch)
        assert result["pq"] == result["pq_things"] == result["pq_stuff"] == 1.0


def test_panoptic_decoding_zeroes_instances_on_stuff():
    task = PanopticTask(max_instances=2)
    out = torch.zeros(1, 9, 1, 2)
    out[0, [GROUND, SPHERE], 0, [0, 1]] = 1  # pixel 0 ground, pixel 1 sphere
    out[0, 6 + 2] = 1  # both say instance 2
    pred = task.decode_prediction(out)
    assert pred["semantic"].tolist() == [[[GROUND, SPHERE]]] and pred["instance"].tolist() == [[[0, 2]]]


def test_panoptic_loss_prefers_the_target_and_ignores_stuff_instances():
    task, batch = PanopticTask(max_instances=4), panoptic_batch()
    target = task.encode_target(batch)
    good, bad = task.loss(20 * target, batch), task.loss(torch.randn_like(target), batch)
    assert good.ndim == 0 and good < 1e-6 < bad
    stuff = ~((batch["semantic"] == SPHERE) | (batch["semantic"] == BOX))
    noisy = 20 * target
    noisy[:, 6:] = torch.where(stuff.unsqueeze(1), torch.randn_like(noisy[:, 6:]), noisy[:, 6:])
    assert torch.isclose(task.loss(noisy, batch), good)  # instance slots of stuff pixels are not scored
    no_things = {
        **batch,
        "semantic": torch.zeros_like(batch["semantic"]),
        "instance": torch.zeros_like(batch["instance"]),
    }
    assert torch.isfinite(task.loss(torch.randn_like(target), no_things))


def test_panoptic_baseline_merges_the_instances_of_a_class():
    task, batch = PanopticTask(), panoptic_batch()
    pred = task.baseline(batch, batch)
    assert torch.equal(pred["semantic"], batch["semantic"])
    thing = (batch["semantic"] == SPHERE) | (batch["semantic"] == BOX)
    assert torch.equal(pred["instance"], thing.long())
    result = task.metrics(pred, batch)
    assert result["pq"] < 1 and result["pq_sphere"] == 0  # one merged sphere segment (IoU 1/2) matches neither
    assert result["pq_stuff"] == 1 and result["pq_ground"] == 1 and result["pq_sky"] == 1 and result["pq_box"] == 1


def test_panoptic_targets_are_checked():
    task, batch = PanopticTask(max_instances=2), panoptic_batch()
    with pytest.raises(ValueError, match="instance id 3 exceeds max_instances=2; raise max_instances"):
        task.encode_target(batch)
    with pytest.raises(ValueError, match="semantic classes must be in 0..5"):
        PanopticTask().encode_target({**batch, "semantic": batch["semantic"] + 6})
    with pytest.raises(ValueError, match=r"batch\['semantic'\] must be \(B, H, W\) integer"):
        PanopticTask().encode_target({**batch, "semantic": batch["semantic"].float()})
    with pytest.raises(ValueError, match="the batch has no 'instance'"):
        PanopticTask().encode_target({"semantic": batch["semantic"]})


def test_panoptic_pictures_overlay_segments_with_dark_boundaries():
    task, batch = PanopticTask(), panoptic_batch()
    batch["image"] = torch.ones_like(batch["image"])
    picture = task.visualize(task.baseline(batch, batch), batch)
    assert picture.dtype == torch.uint8 and picture.shape == (1, 3, 8, 8)
    ground, boundary = picture[0, :, 7, 0], picture[0, :, 1, 0]  # ground inside vs. the sky/ground edge
    assert (ground >= 127).all() and boundary.sum() < ground.sum()
    assert not torch.equal(picture[0, :, 3, 1], picture[0, :, 6, 3])  # sphere and box differ in colour


def test_panoptic_baseline_is_the_training_mode_and_ignores_the_image():
    task = PanopticTask()
    train = {
        "semantic": torch.tensor([[[0, 1], [5, 5]], [[0, 1], [0, 5]], [[2, 1], [0, 5]]]),
        "instance": torch.tensor([[[0, 1], [0, 0]], [[0, 1], [0, 0]], [[1, 2], [0, 0]]]),
    }
    batch = {"semantic": torch.zeros(2, 2, 2, dtype=torch.long), "instance": torch.zeros(2, 2, 2, dtype=torch.long)}
    pred = task.baseline(batch, train)
    assert pred["semantic"].tolist() == [[[0, 1], [0, 5]]] * 2  # the per-pixel most frequent training class
    assert pred["instance"].tolist() == [[[0, 1], [0, 0]]] * 2  # one segment per thing class present
