"""Synthetic 3-D scenes rendered from a seed: RGB, metric depth, semantic and instance maps for dense tasks.

The UViM tasks (depth, panoptic segmentation, colorization) need images with exact dense labels, which no
offline real dataset provides. Here a seed picks a scene, and analytic ray casting in numpy (vectorised over
pixels, one ray per pixel, no anti-aliasing) renders it. The label maps are exact per pixel; so is the RGB.

World and camera. Metres; world ``y`` is up, the ground is the plane ``y = 0``. A pinhole camera sits at
``(0, camera_height, 0)``, looks along world ``+z`` pitched down by ``pitch_degrees``, with field of view
``fov_degrees`` across the (square) image; the principal point is the image centre, pixel ``(i, j)`` is sampled
at its centre ``(j + 0.5, i + 0.5)``. The ray of a pixel is ``d = u * right + v * up + forward`` with
``u = (j + 0.5 - W / 2) / f``, ``v = (H / 2 - i - 0.5) / f``, ``f = (W / 2) / tan(fov / 2)`` and the camera axes
``right = (1, 0, 0)``, ``up = (0, cos p, sin p)``, ``forward = (0, -sin p, cos p)`` (``camera_rays``).

Depth convention: **z-depth**, the distance in metres along the camera's optical axis (as in NYU Depth v2),
not the Euclidean distance along the ray; the Euclidean distance is ``depth * |d|``. Depths beyond
``max_depth`` are clipped to it. With the default camera the horizon is out of view (the top row of pixels
looks 10 degrees below it) and the ground fills the background, all within 7.3 m; a camera that sees the horizon
(``pitch_degrees < fov_degrees / 2``) shows sky: class ``"sky"``, depth ``max_depth``, instance 0.

Scene content. Between ``min_objects`` and ``max_objects`` objects (spheres, axis-aligned boxes, vertical
cylinders, cones with the apex up) stand on the ground in front of the camera (horizontal distance log-uniform
in ``object_distance``, sideways within 80% of the view), their footprints apart; each has a random size, a
colour and a solid texture (plain, stripes, checker, smooth noise). The ground is a checkerboard or a smooth
noise texture, its contrast faded where tiles shrink below a pixel. Shading: Lambertian, one directional light
with cast shadows plus ambient light, light fog with distance, and gamma 2.2. Objects that find no free spot
after ``PLACEMENT_ATTEMPTS`` tries are dropped (not seen with the default sizes below ~10 objects), and objects
hidden behind others are not in the image (they may still cast a shadow), so an image may hold fewer than
``min_objects`` objects.

Labels. ``semantic``: index into ``CLASS_NAMES`` (0 ground, 1..4 object classes, 5 sky). ``instance``: 0 for
stuff (ground, sky), 1..n for the objects seen in the image, contiguous, numbered near to far (by the distance
of their centres from the camera); ``Scene.objects[k - 1]`` is instance ``k``.

``render_scene(seed, config)`` gives one ``Scene``; ``render_dataset(split, num, config, seed)`` gives torch
tensors for training. Splits draw from disjoint scene seeds (``scene_seed``).
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

CLASS_NAMES = ("ground", "sphere", "box", "cylinder", "cone", "sky")
OBJECT_CLASSES = CLASS_NAMES[1:-1]
GROUND, SPHERE, BOX, CYLINDER, CONE, SKY = range(len(CLASS_NAMES))
TEXTURES = ("plain", "stripes", "checker", "noise")
GROUND_TEXTURES = ("checker", "noise")
SPLITS = ("train", "val", "test")
MAX_OBJECTS = 32
PLACEMENT_ATTEMPTS = 50
FOOTPRINT_GAP = 0.05  # metres between the footprints of two objects
_T_MIN = 1e-6  # nearest ray parameter counted as a hit
_BATCH_PIXELS = 2**20  # pixels times (objects + 4) rendered at once by render_dataset
_SHADOW_OFFSET = 1e-4  # metres; shadow rays start this far off the surface
_SKY_HORIZON = np.array([0.80, 0.85, 0.90])
_SKY_ZENITH = np.array([0.35, 0.55, 0.85])


def _pair(name: str, value) -> tuple[float, float]:
    """Check a ``(low, high)`` range of positive numbers and return it as a tuple of floats."""
    if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must be a pair of numbers (low, high), got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low <= 0 or low > high:
        raise ValueError(f"{name} must satisfy 0 < low <= high, got {value!r}")
    return low, high


@dataclass(frozen=True)
class SceneConfig:
    """What the scenes look like: image size, object count and classes, camera, and render options."""

    image_size: int = 32
    min_objects: int = 1
    max_objects: int = 5
    classes: tuple[str, ...] = OBJECT_CLASSES  # object classes to draw from, names in CLASS_NAMES
    max_depth: float = 10.0  # metres; depth is clipped here, sky gets it
    fov_degrees: float = 60.0
    camera_height: float = 1.5  # metres
    pitch_degrees: float = 40.0  # downward tilt of the camera
    object_size: tuple[float, float] = (0.25, 0.6)  # half-width range of an object, metres
    object_distance: tuple[float, float] = (1.3, 6.5)  # horizontal distance of object centres ahead, metres
    shadows: bool = True
    fog_density: float = 0.02  # per metre of ray length

    def __post_init__(self) -> None:
        def ensure(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"SceneConfig: {message}")

        def is_int(value) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        ensure(
            is_int(self.image_size) and self.image_size >= 8, f"image_size must be an int >= 8, got {self.image_size!r}"
        )
        ensure(
            is_int(self.min_objects) and self.min_objects >= 0,
            f"min_objects must be an int >= 0, got {self.min_objects!r}",
        )
        ensure(
            is_int(self.max_objects) and self.min_objects <= self.max_objects <= MAX_OBJECTS,
            f"max_objects must be an int in [min_objects={self.min_objects}, {MAX_OBJECTS}], got {self.max_objects!r}",
        )
        classes = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
        unknown = [name for name in classes if name not in OBJECT_CLASSES]
        ensure(not unknown, f"unknown classes {unknown}; valid classes are {list(OBJECT_CLASSES)}")
        ensure(len(set(classes)) == len(classes), f"classes repeat a name: {list(classes)}")
        ensure(bool(classes) or self.max_objects == 0, "classes is empty but max_objects > 0")
        object.__setattr__(self, "classes", classes)
        ensure(self.max_depth > 0, f"max_depth must be > 0 metres, got {self.max_depth!r}")
        ensure(0 < self.fov_degrees < 150, f"fov_degrees must be in (0, 150), got {self.fov_degrees!r}")
        ensure(self.camera_height > 0, f"camera_height must be > 0 metres, got {self.camera_height!r}")
        ensure(0 <= self.pitch_degrees < 90, f"pitch_degrees must be in [0, 90), got {self.pitch_degrees!r}")
        ensure(self.fog_density >= 0, f"fog_density must be >= 0, got {self.fog_density!r}")
        try:
            object.__setattr__(self, "object_size", _pair("object_size", self.object_size))
            object.__setattr__(self, "object_distance", _pair("object_distance", self.object_distance))
        except (TypeError, ValueError) as error:
            raise ValueError(f"SceneConfig: {error}") from None
        ensure(
            self.object_distance[0] > 2 * self.object_size[1],
            f"object_distance starts at {self.object_distance[0]} m, too close for objects of half-width up to "
            f"{self.object_size[1]} m (needs > {2 * self.object_size[1]})",
        )


@dataclass(frozen=True)
class SceneObject:
    """One object: ``class_id`` (index into CLASS_NAMES), bounding-box ``center`` and ``half_size`` in metres.

    A sphere has ``half_size = (r, r, r)``; a cylinder or cone has radius ``half_size[0] == half_size[2]`` and
    height ``2 * half_size[1]`` (the cone's apex on top). ``color`` is linear RGB in [0, 1]; the texture
    (one of TEXTURES) varies it with ``texture_frequency`` cycles per metre along ``texture_axis``.
    """

    class_id: int
    center: tuple[float, float, float]
    half_size: tuple[float, float, float]
    color: tuple[float, float, float] = (0.8, 0.8, 0.8)
    texture: str = "plain"
    texture_frequency: float = 4.0
    texture_axis: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def __post_init__(self) -> None:
        if self.class_id not in (SPHERE, BOX, CYLINDER, CONE):
            raise ValueError(f"class_id must name an object class {list(OBJECT_CLASSES)} (1..4), got {self.class_id}")
        hx, hy, hz = self.half_size
        if min(self.half_size) <= 0:
            raise ValueError(f"half_size must be positive, got {self.half_size}")
        if self.class_id == SPHERE and not hx == hy == hz:
            raise ValueError(f"a sphere needs equal half sizes, got {self.half_size}")
        if self.class_id in (CYLINDER, CONE) and hx != hz:
            raise ValueError(f"a {CLASS_NAMES[self.class_id]} needs half_size[0] == half_size[2], got {self.half_size}")
        if self.texture not in TEXTURES:
            raise ValueError(f"texture must be one of {TEXTURES}, got {self.texture!r}")

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]

    @property
    def footprint_radius(self) -> float:
        """Radius of a circle on the ground that covers the object."""
        hx, _, hz = self.half_size
        return math.hypot(hx, hz) if self.class_id == BOX else hx


@dataclass(frozen=True)
class Appearance:
    """Scene-wide look: ``light_direction`` (towards the light), ``ambient`` share, and the ground's texture."""

    light_direction: tuple[float, float, float] = (0.3, 0.8, -0.5)
    ambient: float = 0.35
    ground_colors: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.5, 0.5, 0.45), (0.3, 0.3, 0.27))
    ground_texture: str = "checker"  # one of GROUND_TEXTURES
    tile_size: float = 0.7  # metres

    def __post_init__(self) -> None:
        if self.ground_texture not in GROUND_TEXTURES:
            raise ValueError(f"ground_texture must be one of {GROUND_TEXTURES}, got {self.ground_texture!r}")


class Scene(NamedTuple):
    """A rendered scene: ``rgb`` uint8 (H, W, 3), ``depth`` float32 (H, W) z-depth in metres, ``semantic`` and
    ``instance`` int64 (H, W); ``objects[k - 1]`` is instance ``k``; ``appearance`` the lighting and ground."""

    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    objects: tuple[SceneObject, ...]
    appearance: Appearance


@functools.lru_cache(maxsize=8)
def camera_rays(config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """The camera centre (3,) and the ray of each pixel (H * W, 3), row-major, in world coordinates.

    A ray's component along the optical axis is 1, so a hit at ray parameter ``t`` has z-depth ``t``.
    """
    size = config.image_size
    f = (size / 2) / math.tan(math.radians(config.fov_degrees) / 2)
    centres = np.arange(size) + 0.5
    u = np.broadcast_to((centres - size / 2) / f, (size, size)).ravel()
    v = np.broadcast_to(((size / 2 - centres) / f)[:, None], (size, size)).ravel()
    p = math.radians(config.pitch_degrees)
    rays = np.stack([u, v * math.cos(p) - math.sin(p), v * math.sin(p) + math.cos(p)], axis=-1)
    origin = np.array([0.0, config.camera_height, 0.0])
    origin.setflags(write=False)
    rays.setflags(write=False)
    return origin, rays


def _first_root(a, b, c, accept) -> np.ndarray:
    """Smallest root ``t > _T_MIN`` of ``a t^2 + b t + c`` with ``accept(t)`` true; ``inf`` where there is none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(b * b - 4 * a * c)
        t1, t2 = (-b - root) / (2 * a), (-b + root) / (2 * a)
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        near_ok, far_ok = (near > _T_MIN) & accept(near), (far > _T_MIN) & accept(far)
    return np.where(near_ok, near, np.where(far_ok, far, np.inf))


def _disc(q, d, height, radius) -> np.ndarray:
    """Hit parameter of the disc ``y = height``, ``x^2 + z^2 <= radius^2`` (local coordinates); ``inf`` if none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (height - q[..., 1]) / d[..., 1]
        x, z = q[..., 0] + t * d[..., 0], q[..., 2] + t * d[..., 2]
        ok = (t > _T_MIN) & (x * x + z * z <= radius * radius)
    return np.where(ok, t, np.inf)


def _hit(class_id: int, q: np.ndarray, d: np.ndarray, half: np.ndarray) -> np.ndarray:
    """First hit ``t`` of rays ``q + t * d`` with objects of one class centred at the origin (``inf`` on a miss).

    ``q`` (K, R, 3) ray origins relative to each of K objects, ``d`` directions and ``half`` (K, 1, 3) half
    sizes broadcast against it; the result is (K, R).
    """
    hx, hy = half[..., 0], half[..., 1]
    qx, qy, qz = q[..., 0], q[..., 1], q[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    if class_id == SPHERE:
        a, b, c = np.sum(d * d, -1), 2 * np.sum(q * d, -1), np.sum(q * q, -1) - hx * hx
        return _first_root(a, b, c, lambda t: True)
    if class_id == BOX:  # slabs; fmax/fmin skip the NaN of a ray lying in a face plane
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - q) / d, (half - q) / d
        low, high = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near = np.fmax(np.fmax(low[..., 0], low[..., 1]), low[..., 2])
        t_far = np.fmin(np.fmin(high[..., 0], high[..., 1]), high[..., 2])
        t = np.where(t_near > _T_MIN, t_near, t_far)
        return np.where((t_near <= t_far) & (t > _T_MIN), t, np.inf)
    inside = lambda t: np.abs(qy + t * dy) <= hy  # noqa: E731 - the side's height limits
    if class_id == CYLINDER:
        a, b, c = dx * dx + dz * dz, 2 * (qx * dx + qz * dz), qx * qx + qz * qz - hx * hx
        side = _first_root(a, b, c, inside)
        return np.minimum(side, np.minimum(_disc(q, d, hy, hx), _disc(q, d, -hy, hx)))
    k2, w = (hx / (2 * hy)) ** 2, hy - qy  # cone: x^2 + z^2 = k^2 (hy - y)^2, apex at y = hy
    a = dx * dx + dz * dz - k2 * dy * dy
    b = 2 * (qx * dx + qz * dz + k2 * w * dy)
    c = qx * qx + qz * qz - k2 * w * w
    return np.minimum(_first_root(a, b, c, inside), _disc(q, d, -hy, hx))


def _normals(class_ids: np.ndarray, q: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Outward unit normals (N, 3) at surface points ``q`` (N, 3, relative to their objects' centres)."""
    hx, hy = half[:, 0], half[:, 1]
    radial = np.hypot(q[:, 0], q[:, 2])
    zero, one = np.zeros(len(q)), np.ones(len(q))
    box_axis = np.abs(q / half).argmax(-1)
    box = np.where(np.arange(3) == box_axis[:, None], np.sign(q), 0.0)
    k = hx / (2 * hy)  # cone radius lost per metre of height; side normal = gradient of x^2 + z^2 - k^2 (hy - y)^2
    on_top = np.abs(q[:, 1]) - hy > radial - hx
    cylinder = np.where(on_top[:, None], np.stack([zero, np.sign(q[:, 1]), zero], -1), q * [1, 0, 1])
    on_base = -hy - q[:, 1] > radial - k * (hy - q[:, 1])
    cone = np.where(
        on_base[:, None], np.stack([zero, -one, zero], -1), np.stack([q[:, 0], k * k * (hy - q[:, 1]), q[:, 2]], -1)
    )
    n = np.choose(class_ids[:, None] - SPHERE, [q, box, cylinder, cone])
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def _object_albedo(texture: np.ndarray, phase: np.ndarray, axis: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Linear RGB albedo (N, 3): ``color`` darkened by each object's solid texture (index into TEXTURES) at
    ``phase`` (N, 3), the offset from the object's centre in texture cycles."""
    stripes = np.floor(2 * np.sum(phase * axis, -1)) % 2
    checker = np.floor(2 * phase).sum(-1) % 2
    waves = [  # three sinusoids along rolled copies of the axis
        np.sin(2 * np.pi * scale * np.sum(phase * np.roll(axis, shift, -1), -1) + shift)
        for shift, scale in enumerate((1.0, 1.7, 2.3))
    ]
    noise = 0.5 + sum(waves) / 6
    pattern = np.choose(texture, [np.zeros(len(phase)), stripes, checker, noise])
    return color * (1 - 0.5 * pattern)[:, None]


def _ground_albedo(points, footprint, colors, texture, tile) -> np.ndarray:
    """Linear RGB albedo (B, P, 3) of the ground at ``points`` (B, P, 3); per scene ``colors`` (B, 1, 2, 3) light
    and dark tile colours, ``texture`` (B, 1) index into GROUND_TEXTURES, ``tile`` (B, 1) metres. Contrast fades
    as the pixel ``footprint`` (B, P; metres of ground under one pixel) nears the tile size, instead of aliasing
    into moire."""
    x, z = points[..., 0] / tile, points[..., 2] / tile
    checker = (np.floor(x) + np.floor(z)) % 2
    noise = 0.5 + (np.sin(2 * np.pi * (0.6 * x + 0.3 * z)) + np.sin(2 * np.pi * (0.45 * z - 0.2 * x) + 1)) / 4
    fade = np.clip(1 - 2 * footprint / tile, 0, 1)
    mix = 0.5 + (np.where(texture == 0, checker, noise) - 0.5) * fade
    light, dark = colors[..., 0, :], colors[..., 1, :]
    return dark + (light - dark) * mix[..., None]


def _render_batch(
    scenes: Sequence[Sequence[SceneObject]], appearances: Sequence[Appearance], config: SceneConfig
) -> dict[str, np.ndarray]:
    """Render B scenes at once: ``rgb`` (B, H, W, 3), ``depth``, ``semantic``, ``instance`` (B, H, W), and
    ``seen`` (B, M) which objects (by list position) appear. Instance ids follow list order."""
    origin, rays = camera_rays(config)
    n_scenes, n_pix, size = len(scenes), len(rays), config.image_size
    slots = max((len(objects) for objects in scenes), default=0)
    flat = [(b, m, obj) for b, objects in enumerate(scenes) for m, obj in enumerate(objects)]
    scene_of = np.array([b for b, _, _ in flat], dtype=np.intp)
    slot_of = np.array([m for _, m, _ in flat], dtype=np.intp)
    cls = np.array([obj.class_id for _, _, obj in flat] + [GROUND])  # [-1] is what an owner of -1 reads
    center = np.array([obj.center for _, _, obj in flat], dtype=np.float64).reshape(-1, 3)
    half = np.array([obj.half_size for _, _, obj in flat], dtype=np.float64).reshape(-1, 3)
    row_of = np.full((n_scenes, slots), -1)
    row_of[scene_of, slot_of] = np.arange(len(flat))
    by_class = [(c, np.flatnonzero(cls[:-1] == c)) for c in (SPHERE, BOX, CYLINDER, CONE)]
    by_class = [(c, rows) for c, rows in by_class if len(rows)]

    # nearest hit: the ground plane y = 0, then every object of the same scene
    with np.errstate(divide="ignore"):
        t = np.broadcast_to(np.where(rays[:, 1] < 0, -origin[1] / rays[:, 1], np.inf), (n_scenes, n_pix))
    owner = np.full((n_scenes, n_pix), -1)  # row of the object a pixel sees; -1 for ground or sky
    if flat:
        times = np.full((n_scenes, slots, n_pix), np.inf)
        for c, rows in by_class:
            times[scene_of[rows], slot_of[rows]] = _hit(c, (origin - center[rows])[:, None], rays, half[rows][:, None])
        nearest = times.argmin(1)
        t_obj = np.take_along_axis(times, nearest[:, None], 1)[:, 0]
        closer = t_obj < t
        t = np.where(closer, t_obj, t)
        owner = np.where(closer, row_of[np.arange(n_scenes)[:, None], nearest], -1)
    hit, on_obj = np.isfinite(t), owner >= 0
    t_hit = np.where(hit, t, 0.0)
    points = origin + t_hit[..., None] * rays  # (B, P, 3)
    ray_length = np.linalg.norm(rays, axis=-1)
    distance = t_hit * ray_length  # Euclidean, metres

    # surface: normals and albedo of the ground, then of the objects
    focal = (size / 2) / math.tan(math.radians(config.fov_degrees) / 2)
    footprint = distance / (focal * np.maximum(-rays[:, 1] / ray_length, 1e-9))
    colors = np.array([a.ground_colors for a in appearances], dtype=np.float64)[:, None]
    ground_texture = np.array([GROUND_TEXTURES.index(a.ground_texture) for a in appearances])[:, None]
    tile = np.array([a.tile_size for a in appearances])[:, None]
    albedo = _ground_albedo(points, footprint, colors, ground_texture, tile)
    normals = np.zeros_like(points)
    normals[..., 1] = 1.0
    if on_obj.any():
        rows = owner[on_obj]
        local = points[on_obj] - center[rows]
        normals[on_obj] = _normals(cls[rows], local, half[rows])
        texture = np.array([TEXTURES.index(obj.texture) for _, _, obj in flat])[rows]
        frequency = np.array([obj.texture_frequency for _, _, obj in flat])[rows, None]
        axis = np.array([obj.texture_axis for _, _, obj in flat], dtype=np.float64)
        axis = (axis / np.linalg.norm(axis, axis=-1, keepdims=True))[rows]
        color = np.array([obj.color for _, _, obj in flat], dtype=np.float64)[rows]
        albedo[on_obj] = _object_albedo(texture, local * frequency, axis, color)

    # light: Lambertian with cast shadows, ambient, fog, sky
    light = np.array([a.light_direction for a in appearances], dtype=np.float64)
    light /= np.linalg.norm(light, axis=-1, keepdims=True)
    direct = np.clip(np.einsum("bpc,bc->bp", normals, light), 0, None) * hit
    if config.shadows and flat:
        starts = points + _SHADOW_OFFSET * normals
        blocked = np.zeros((n_scenes, slots, n_pix), dtype=bool)
        for c, rows in by_class:
            q = starts[scene_of[rows]] - center[rows][:, None]
            blocked[scene_of[rows], slot_of[rows]] = np.isfinite(
                _hit(c, q, light[scene_of[rows]][:, None], half[rows][:, None])
            )
        direct = np.where(blocked.any(1), 0.0, direct)
    ambient = np.array([a.ambient for a in appearances])[:, None]
    color = albedo * (ambient + (1 - ambient) * direct)[..., None]
    fog = np.exp(-config.fog_density * distance)[..., None]
    color = color * fog + _SKY_HORIZON * (1 - fog)
    elevation = np.clip(rays[:, 1] / ray_length, 0, 1)[:, None]
    color = np.where(hit[..., None], color, _SKY_HORIZON + (_SKY_ZENITH - _SKY_HORIZON) * elevation)
    rgb = (np.clip(color, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)

    # labels: instance ids count the objects seen, in list order, per scene
    seen = np.zeros((n_scenes, slots), dtype=bool)
    seen[scene_of[owner[on_obj]], slot_of[owner[on_obj]]] = True
    ids = np.append((np.cumsum(seen, 1) * seen)[scene_of, slot_of], 0)
    depth = np.where(hit, np.minimum(t, config.max_depth), config.max_depth)
    shape = (n_scenes, size, size)
    return {
        "rgb": rgb.reshape(*shape, 3),
        "depth": depth.astype(np.float32).reshape(shape),
        "semantic": np.where(hit, cls[owner], SKY).reshape(shape),
        "instance": ids[owner].reshape(shape),
        "seen": seen,
    }


def render(objects: Sequence[SceneObject], config: SceneConfig, appearance: Appearance | None = None) -> Scene:
    """Ray-cast ``objects`` standing anywhere (not only on the ground) with the camera of ``config``.

    Instance ids number the objects seen in list order; ``Scene.objects`` keeps only those. An object hidden
    behind others can still cast a shadow. The camera must be outside every object.
    """
    appearance = Appearance() if appearance is None else appearance
    objects = tuple(objects)
    out = _render_batch([objects], [appearance], config)
    seen = tuple(obj for obj, s in zip(objects, out["seen"][0]) if s)
    return Scene(out["rgb"][0], out["depth"][0], out["semantic"][0], out["instance"][0], seen, appearance)


def _pick(options: Sequence, u: float):
    """The option a uniform number ``u`` in [0, 1) falls on."""
    return options[min(int(u * len(options)), len(options) - 1)]


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """A random light (elevation 30-70 degrees, any azimuth), ambient share and ground texture."""
    u = rng.random(9).tolist()
    elevation, azimuth = math.radians(30 + 40 * u[0]), 2 * math.pi * u[1]
    light = (math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth))
    base = colorsys.hsv_to_rgb(u[2], 0.1 + 0.3 * u[3], 0.4 + 0.3 * u[4])
    dark = tuple(c * (0.5 + 0.25 * u[5]) for c in base)
    return Appearance(light, 0.25 + 0.2 * u[6], (base, dark), _pick(GROUND_TEXTURES, u[7]), 0.4 + 0.6 * u[8])


def _sample_object(rng: np.random.Generator, config: SceneConfig) -> SceneObject:
    """One object of a random class, size, colour and texture, standing on the ground in view."""
    u = rng.random(11).tolist()
    class_id = CLASS_NAMES.index(_pick(config.classes, u[0]))
    r = config.object_size[0] + (config.object_size[1] - config.object_size[0]) * u[1]
    if class_id == SPHERE:
        half = (r, r, r)
    elif class_id == BOX:
        half = (r, r * (0.5 + u[2]), r * (0.6 + 0.4 * u[3]))
    else:
        lowest = 0.6 if class_id == CYLINDER else 0.8  # height over radius, at least
        half = (r, r * (lowest + (2 - lowest) * u[2]), r)
    near, far = config.object_distance
    ahead = near * (far / near) ** u[4]  # log-uniform: near and far objects cover the image about evenly
    pitch, half_fov = math.radians(config.pitch_degrees), math.radians(config.fov_degrees) / 2
    view_depth = config.camera_height * math.sin(pitch) + ahead * math.cos(pitch)  # of the ground point below
    axis = rng.normal(size=3)
    return SceneObject(
        class_id=class_id,
        center=((1.6 * u[5] - 0.8) * math.tan(half_fov) * view_depth, half[1], ahead),
        half_size=half,
        color=colorsys.hsv_to_rgb(u[6], 0.45 + 0.5 * u[7], 0.55 + 0.45 * u[8]),
        texture=_pick(TEXTURES, u[9]),
        texture_frequency=2 + 3 * u[10],
        texture_axis=tuple((axis / np.linalg.norm(axis)).tolist()),
    )


def sample_objects(rng: np.random.Generator, config: SceneConfig) -> tuple[SceneObject, ...]:
    """Between ``min_objects`` and ``max_objects`` objects with disjoint footprints, sorted near to far."""
    placed: list[SceneObject] = []
    for _ in range(rng.integers(config.min_objects, config.max_objects + 1)):
        for _attempt in range(PLACEMENT_ATTEMPTS):
            new = _sample_object(rng, config)
            if all(
                math.dist(new.center[::2], old.center[::2])
                >= new.footprint_radius + old.footprint_radius + FOOTPRINT_GAP
                for old in placed
            ):
                placed.append(new)
                break
    camera = (0.0, config.camera_height, 0.0)
    return tuple(sorted(placed, key=lambda obj: math.dist(obj.center, camera)))


def _sample_scene(seed: int, config: SceneConfig) -> tuple[tuple[SceneObject, ...], Appearance]:
    """The objects and appearance of scene ``seed``: the only randomness of a scene."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    appearance = sample_appearance(rng)
    return sample_objects(rng, config), appearance


def render_scene(seed: int, config: SceneConfig | None = None) -> Scene:
    """The scene of ``seed`` (an int >= 0): the same seed gives identical arrays on every machine."""
    config = SceneConfig() if config is None else config
    objects, appearance = _sample_scene(seed, config)
    return render(objects, config, appearance)


def scene_seed(split: str, index: int, seed: int = 0) -> int:
    """The seed of scene ``index`` of ``split``: ``(seed * 3 + split number) * 2**32 + index``, so splits (and
    base seeds) never share a scene seed for ``index < 2**32``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= index < 2**32:
        raise ValueError(f"index must be in [0, 2**32), got {index}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return ((seed * len(SPLITS) + SPLITS.index(split)) << 32) + index


def render_dataset(split: str, num: int, config: SceneConfig | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """``num`` scenes of ``split`` (scene ``i`` is ``render_scene(scene_seed(split, i, seed))``) as tensors:
    ``images`` uint8 (N, 3, H, W), ``depth`` float32 (N, 1, H, W) in metres, ``semantic`` and ``instance`` int64
    (N, H, W). Scenes are rendered in batches of about ``_BATCH_PIXELS`` pixels."""
    config = SceneConfig() if config is None else config
    if num < 0:
        raise ValueError(f"num must be >= 0, got {num}")
    scene_seed(split, 0, seed)  # checks split and seed even when num == 0
    size = config.image_size
    out: dict[str, np.ndarray] = {
        "images": np.empty((num, size, size, 3), dtype=np.uint8),
        "depth": np.empty((num, size, size), dtype=np.float32),
        "semantic": np.empty((num, size, size), dtype=np.int64),
        "instance": np.empty((num, size, size), dtype=np.int64),
    }
    batch = max(1, _BATCH_PIXELS // (size * size * (config.max_objects + 4)))
    for start in range(0, num, batch):
        drawn = [_sample_scene(scene_seed(split, i, seed), config) for i in range(start, min(start + batch, num))]
        rendered = _render_batch([objects for objects, _ in drawn], [appearance for _, appearance in drawn], config)
        rendered["images"] = rendered.pop("rgb")
        for key, array in out.items():
            array[start : start + len(drawn)] = rendered[key]
    return {
        "images": torch.from_numpy(out["images"]).permute(0, 3, 1, 2).contiguous(),
        "depth": torch.from_numpy(out["depth"]).unsqueeze(1),
        "semantic": torch.from_numpy(out["semantic"]),
        "instance": torch.from_numpy(out["instance"]),
    }
