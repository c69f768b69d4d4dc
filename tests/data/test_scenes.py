"""Synthetic scenes: determinism, depth against analytic geometry, label consistency, occlusion, shadows, config
checks, and the dataset tensors and splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fsq.data import scenes
from fsq.data.scenes import (
    BOX,
    CLASS_NAMES,
    CONE,
    CYLINDER,
    GROUND,
    SKY,
    SPHERE,
    Appearance,
    SceneConfig,
    SceneObject,
    render,
    render_dataset,
    render_scene,
    scene_seed,
)

SMALL = SceneConfig(image_size=24, min_objects=2, max_objects=5)


def pixel_ray(config: SceneConfig, i: int, j: int) -> np.ndarray:
    """World direction of pixel (row i, column j), derived here from the pinhole model, forward component 1."""
    f = (config.image_size / 2) / math.tan(math.radians(config.fov_degrees) / 2)
    u = (j + 0.5 - config.image_size / 2) / f
    v = (config.image_size / 2 - i - 0.5) / f
    p = math.radians(config.pitch_degrees)
    right, up, forward = (
        np.array([1, 0, 0]),
        np.array([0, math.cos(p), math.sin(p)]),
        np.array([0, -math.sin(p), math.cos(p)]),
    )
    return u * right + v * up + forward


def sphere_on_ray(config: SceneConfig, i: int, j: int, radius: float) -> tuple[SceneObject, float]:
    """A sphere resting on the ground whose centre lies on the ray of pixel (i, j), and its z-depth there."""
    d = pixel_ray(config, i, j)
    unit = d / np.linalg.norm(d)
    s = (radius - config.camera_height) / unit[1]  # distance along the ray to the centre, at height radius
    center = np.array([0, config.camera_height, 0]) + s * unit
    sphere = SceneObject(SPHERE, tuple(center), (radius,) * 3, texture="stripes")
    return sphere, (s - radius) / np.linalg.norm(d)  # Euclidean distance to the surface, as z-depth


def surface_residual(obj: SceneObject, points: np.ndarray) -> np.ndarray:
    """Signed distance-like residual of points to the object's surface: zero on it."""
    q = points - np.asarray(obj.center)
    hx, hy, hz = obj.half_size
    radial = np.hypot(q[:, 0], q[:, 2])
    if obj.class_id == SPHERE:
        return np.linalg.norm(q, axis=-1) - hx
    if obj.class_id == BOX:
        return np.max(np.abs(q) - [hx, hy, hz], axis=-1)
    if obj.class_id == CYLINDER:
        return np.maximum(radial - hx, np.abs(q[:, 1]) - hy)
    k = hx / (2 * hy)
    return np.maximum((radial - k * (hy - q[:, 1])) / math.hypot(1, k), -hy - q[:, 1])


def sphere_trace(objects, config: SceneConfig, steps: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """z-depth and owner (0 ground, k for objects[k - 1]) of each pixel by sphere tracing, independent of the
    renderer: every ``surface_residual`` is 1-Lipschitz and <= 0 inside its solid, so a step never overshoots."""
    n = config.image_size
    rays = np.array([[pixel_ray(config, i, j) for j in range(n)] for i in range(n)]).reshape(-1, 3)
    unit = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    origin = np.array([0.0, config.camera_height, 0.0])
    s = np.zeros(len(rays))
    for _ in range(steps):
        p = origin + s[:, None] * unit
        s += np.min([np.maximum(p[:, 1], 0)] + [surface_residual(obj, p) for obj in objects], axis=0)
    p = origin + s[:, None] * unit
    residual = np.abs([p[:, 1]] + [surface_residual(obj, p) for obj in objects])
    assert residual.min(0).max() < 1e-6  # converged onto a surface everywhere
    return (s / np.linalg.norm(rays, axis=-1)).reshape(n, n), residual.argmin(0).reshape(n, n)


def test_same_seed_same_scene_and_different_seeds_differ():
    a, b, c = render_scene(7, SMALL), render_scene(7, SMALL), render_scene(8, SMALL)
    for x, y in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(x, y)
    assert a.objects == b.objects and a.appearance == b.appearance
    assert not np.array_equal(a.rgb, c.rgb) and not np.array_equal(a.depth, c.depth)


def test_scene_arrays_have_the_documented_shapes_and_types():
    s = render_scene(0, SMALL)
    assert s.rgb.shape == (24, 24, 3) and s.rgb.dtype == np.uint8
    assert s.depth.shape == (24, 24) and s.depth.dtype == np.float32
    assert s.semantic.dtype == np.int64 and s.instance.dtype == np.int64
    assert len(CLASS_NAMES) == 6 and CLASS_NAMES[GROUND] == "ground" and CLASS_NAMES[SKY] == "sky"


@pytest.mark.parametrize("pitch", [40.0, 12.0])
def test_empty_scene_depth_is_the_ray_plane_intersection(pitch):
    config = SceneConfig(image_size=16, min_objects=0, max_objects=0, pitch_degrees=pitch, max_depth=30.0)
    s = render_scene(3, config)
    expected = np.full((16, 16), config.max_depth)
    sky = np.ones((16, 16), dtype=bool)
    for i in range(16):
        for j in range(16):
            d = pixel_ray(config, i, j)
            if d[1] < 0:  # the ray meets y = 0 at t = height / -d_y; t is the z-depth (forward component 1)
                expected[i, j], sky[i, j] = min(config.camera_height / -d[1], config.max_depth), False
    np.testing.assert_allclose(s.depth, expected, rtol=1e-6)
    assert sky.any() == (pitch < config.fov_degrees / 2)
    np.testing.assert_array_equal(s.semantic, np.where(sky, SKY, GROUND))
    assert not s.instance.any() and s.objects == ()


def test_depth_at_the_pixel_through_a_sphere_centre():
    config = SceneConfig(image_size=32)
    for i, j, radius in [(20, 13, 0.4), (9, 25, 0.3), (28, 4, 0.5)]:
        sphere, expected = sphere_on_ray(config, i, j, radius)
        s = render([sphere], config)
        assert abs(float(s.depth[i, j]) - expected) < 1e-4
        assert s.semantic[i, j] == SPHERE and s.instance[i, j] == 1 and s.objects == (sphere,)


def test_depth_at_a_box_front_face():
    config = SceneConfig(image_size=32)
    box = SceneObject(BOX, (0.1, 0.5, 3.0), (0.6, 0.5, 0.4))
    s = render([box], config)
    i, j = 9, 17  # the ray meets the front face z = 2.6 (x in (-0.5, 0.7), y in (0, 1)) at t = 2.6 / d_z
    d = pixel_ray(config, i, j)
    t = 2.6 / d[2]
    x, y = t * d[0], config.camera_height + t * d[1]
    assert -0.5 < x < 0.7 and 0 < y < 1
    assert abs(float(s.depth[i, j]) - t) < 1e-4 and s.semantic[i, j] == BOX


@pytest.mark.parametrize("seed", range(6))
def test_every_pixel_lies_on_the_surface_it_is_labelled_with(seed):
    config = SceneConfig(image_size=24, min_objects=3, max_objects=6)
    s = render_scene(seed, config)
    origin = np.array([0.0, config.camera_height, 0.0])
    rays = np.array([[pixel_ray(config, i, j) for j in range(24)] for i in range(24)])
    points = origin + s.depth[..., None].astype(np.float64) * rays
    ground = s.semantic == GROUND
    assert np.abs(points[ground][:, 1]).max() < 1e-5
    for k, obj in enumerate(s.objects, start=1):
        mask = s.instance == k
        assert np.abs(surface_residual(obj, points[mask])).max() < 1e-5


@pytest.mark.parametrize("seed", range(3))
def test_an_independent_sphere_tracer_sees_the_same_surfaces(seed):
    config = SceneConfig(image_size=24, min_objects=4, max_objects=8)
    objects, appearance = scenes._sample_scene(seed, config)
    s = render(objects, config, appearance)
    depth, owner = sphere_trace(objects, config)
    np.testing.assert_allclose(s.depth, depth, atol=1e-4)
    seen = [objects.index(obj) + 1 for obj in s.objects]  # instance k is objects[seen[k - 1] - 1]
    np.testing.assert_array_equal(np.array([0] + seen)[s.instance], owner)


@pytest.mark.parametrize("seed", range(10))
def test_semantic_and_instance_maps_agree(seed):
    s = render_scene(seed, SceneConfig(image_size=24, min_objects=0, max_objects=8))
    n = len(s.objects)
    assert set(np.unique(s.instance)) <= set(range(n + 1)) and set(np.unique(s.instance)) >= set(range(1, n + 1))
    stuff = np.isin(s.semantic, [GROUND, SKY])
    np.testing.assert_array_equal(s.instance == 0, stuff)
    for k, obj in enumerate(s.objects, start=1):
        assert set(np.unique(s.semantic[s.instance == k])) == {obj.class_id}
    distances = [math.dist(obj.center, (0, 1.5, 0)) for obj in s.objects]
    assert distances == sorted(distances)  # instances are numbered near to far


def test_the_nearer_object_hides_the_farther_one():
    config = SceneConfig(image_size=32)
    near, near_depth = sphere_on_ray(config, 18, 16, 0.5)
    far, _ = sphere_on_ray(config, 18, 16, 0.2)  # smaller, so farther along the same ray, and fully hidden
    assert math.dist(far.center, (0, 1.5, 0)) > math.dist(near.center, (0, 1.5, 0))
    for objects in ([far, near], [near, far]):
        s = render(objects, config)
        assert abs(float(s.depth[18, 16]) - near_depth) < 1e-4
        assert s.objects == (near,) and set(np.unique(s.instance)) == {0, 1}
    box = SceneObject(BOX, (near.center[0] + 0.5, 0.7, near.center[2] + 2.0), (0.6, 0.7, 0.3))  # partly hidden
    s = render([box, near], config)
    assert s.objects == (box, near) and s.instance[18, 16] == 2 and s.semantic[18, 16] == SPHERE
    alone = render([box], config)
    hidden = (alone.instance == 1) & (s.instance == 2)
    assert hidden.any() and (s.depth[hidden] < alone.depth[hidden]).all()


def test_shadows_fall_where_the_light_is_blocked():
    config = SceneConfig(image_size=32, fog_density=0.0)
    sphere = SceneObject(SPHERE, (0.2, 0.5, 3.5), (0.5, 0.5, 0.5))
    light = np.array([1.0, 1.0, -0.3]) / np.linalg.norm([1.0, 1.0, -0.3])
    plain = Appearance(tuple(light), 0.3, ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), "checker", 0.7)
    s = render([sphere], config, plain)
    ground = s.semantic == GROUND
    origin = np.array([0.0, config.camera_height, 0.0])
    rays = np.array([[pixel_ray(config, i, j) for j in range(32)] for i in range(32)])
    points = (origin + s.depth[..., None].astype(np.float64) * rays)[ground]
    along = (np.asarray(sphere.center) - points) @ light  # closest approach of the ray towards the light
    miss = np.linalg.norm(points + along[:, None] * light - sphere.center, axis=-1)
    in_shadow = (along > 0) & (miss < 0.5)
    assert 5 < in_shadow.sum() < ground.sum() - 5
    brightness = s.rgb[ground].astype(int).sum(-1)
    assert brightness[in_shadow].max() < brightness[~in_shadow].min()
    unlit = render([sphere], SceneConfig(image_size=32, fog_density=0.0, shadows=False), plain)
    assert len(np.unique(unlit.rgb[ground].astype(int).sum(-1))) == 1


def test_lambertian_shading_at_the_sphere_centre_pixel():
    config = SceneConfig(image_size=32, fog_density=0.0, shadows=False)
    sphere, _ = sphere_on_ray(config, 16, 16, 0.5)
    sphere = SceneObject(SPHERE, sphere.center, sphere.half_size, color=(0.2, 0.6, 0.9))
    light = np.array([0.0, 0.6, -0.8])  # towards the camera side and up
    s = render([sphere], config, Appearance(tuple(light), 0.25))
    normal = -pixel_ray(config, 16, 16) / np.linalg.norm(pixel_ray(config, 16, 16))
    linear = np.array(sphere.color) * (0.25 + 0.75 * max(float(normal @ light), 0.0))
    np.testing.assert_allclose(s.rgb[16, 16], linear ** (1 / 2.2) * 255, atol=0.51)


def test_texture_and_colour_vary_across_scenes():
    images = np.stack([render_scene(seed, SMALL).rgb for seed in range(8)])
    assert images.std() > 10 and len({tuple(image.reshape(-1, 3).mean(0).round()) for image in images}) == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 4}, "image_size must be an int >= 8"),
        ({"image_size": 16.0}, "image_size must be an int >= 8"),
        ({"min_objects": -1}, "min_objects must be an int >= 0"),
        ({"min_objects": 3, "max_objects": 2}, r"max_objects must be an int in \[min_objects=3"),
        ({"max_objects": 100}, "max_objects must be an int in"),
        ({"classes": ("sphere", "teapot")}, r"unknown classes \['teapot'\]; valid classes are"),
        ({"classes": ("box", "box")}, "classes repeat a name"),
        ({"classes": ()}, "classes is empty but max_objects > 0"),
        ({"max_depth": 0.0}, "max_depth must be > 0"),
        ({"fov_degrees": 170}, "fov_degrees must be in"),
        ({"camera_height": -1}, "camera_height must be > 0"),
        ({"pitch_degrees": 90}, "pitch_degrees must be in"),
        ({"fog_density": -0.1}, "fog_density must be >= 0"),
        ({"object_size": (0.5, 0.2)}, "object_size must satisfy 0 < low <= high"),
        ({"object_size": (0.5,)}, "object_size must be a pair of numbers"),
        ({"object_distance": (0.5, 3.0)}, "object_distance starts at 0.5 m, too close"),
    ],
)
def test_bad_config_raises_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig(**kwargs)


def test_config_accepts_lists_and_empty_scenes():
    config = SceneConfig(classes=["cone"], object_size=[0.3, 0.3], min_objects=0, max_objects=0)
    assert config.classes == ("cone",) and config.object_size == (0.3, 0.3)
    assert {obj.class_id for seed in range(5) for obj in render_scene(seed, SceneConfig(classes=["cone"])).objects} == {
        CONE
    }
    hash(config)


def test_bad_objects_seeds_and_splits_raise():
    with pytest.raises(ValueError, match="class_id must name an object class"):
        SceneObject(GROUND, (0, 0, 3), (1, 1, 1))
    with pytest.raises(ValueError, match="a sphere needs equal half sizes"):
        SceneObject(SPHERE, (0, 1, 3), (1, 2, 1))
    with pytest.raises(ValueError, match="texture must be one of"):
        SceneObject(BOX, (0, 1, 3), (1, 1, 1), texture="marble")
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        render_scene(-1)
    with pytest.raises(ValueError, match="split must be one of"):
        render_dataset("valid", 2, SMALL)
    with pytest.raises(ValueError, match="num must be >= 0"):
        render_dataset("train", -1, SMALL)


def test_render_dataset_tensors_match_render_scene(monkeypatch):
    monkeypatch.setattr(scenes, "_BATCH_PIXELS", 24 * 24 * 9 * 3)  # 3 scenes a batch: 7 scenes span 3 batches
    data = render_dataset("val", 7, SMALL, seed=2)
    assert data["images"].shape == (7, 3, 24, 24) and data["images"].dtype == torch.uint8
    assert data["depth"].shape == (7, 1, 24, 24) and data["depth"].dtype == torch.float32
    assert data["semantic"].shape == (7, 24, 24) and data["semantic"].dtype == torch.int64
    assert data["instance"].shape == (7, 24, 24) and data["instance"].dtype == torch.int64
    for i in range(7):
        s = render_scene(scene_seed("val", i, 2), SMALL)
        np.testing.assert_array_equal(data["images"][i].permute(1, 2, 0).numpy(), s.rgb)
        np.testing.assert_array_equal(data["depth"][i, 0].numpy(), s.depth)
        np.testing.assert_array_equal(data["semantic"][i].numpy(), s.semantic)
        np.testing.assert_array_equal(data["instance"][i].numpy(), s.instance)
    empty = render_dataset("test", 0, SMALL)
    assert empty["images"].shape == (0, 3, 24, 24) and empty["depth"].shape == (0, 1, 24, 24)


def test_splits_and_base_seeds_are_disjoint():
    seeds = {
        (split, base): {scene_seed(split, i, base) for i in range(1000)} for split in scenes.SPLITS for base in range(3)
    }
    everything = set().union(*seeds.values())
    assert len(everything) == 9 * 1000
    train, test = render_dataset("train", 40, SMALL), render_dataset("test", 40, SMALL)
    train_images = {bytes(image.numpy()) for image in train["images"]}
    assert not train_images & {bytes(image.numpy()) for image in test["images"]}
    assert len(train_images) == 40
    again = render_dataset("train", 40, SMALL)
    assert all(torch.equal(again[key], train[key]) for key in train)
