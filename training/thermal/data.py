"""Training scenes for the thermal network: real HIT-UAV images and rendered frames, each
with its per-row view geometry and its labelled boxes; and the augmented crops and
stride-4 targets a training step takes.

A scene's boxes carry a class index into `model.CLASSES`, or IGNORE: HIT-UAV's
Bicycle (often ridden: a person on it is no false alarm, nor a person to find)
and DontCare boxes, where the heatmap is trained to nothing either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.detection.thermal_eval import georeferencer_for, load_dataset, pose_for
from edge.detection.thermal import ViewGeometry, view_geometry
from edge.detection.thermal_learned import geometry_planes, normalise
from training.thermal.model import CLASSES, GEOMETRY_CHANNELS, STRIDE

IGNORE = -1
HIT_UAV_CLASSES = {"Person": CLASSES.index("person"), "Car": CLASSES.index("vehicle"),
                   "OtherVehicle": CLASSES.index("vehicle"), "Bicycle": IGNORE,
                   "DontCare": IGNORE}  # fmt: skip


@dataclass
class Scene:
    name: str
    group: str  # scenes of one group (a flight, a drone) go to one side of the split
    image: np.ndarray  # (H, W) uint8 as the camera gave it
    gsd: np.ndarray  # (H,) m/px per row, NaN where unknown
    depression: np.ndarray  # (H,) rad per row
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 px
    labels: np.ndarray  # (N,) class index or IGNORE
    rendered: bool


def hit_uav_scenes(folder: Path, annotations: Path) -> list[Scene]:
    """Every image of the split with the geometry its file name gives (the evaluation's
    assumed camera); the group is the flight: day/night, altitude and camera angle."""
    scenes, geometries = [], {}
    for labelled in load_dataset(folder, annotations):
        image = cv2.imread(str(labelled.path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            continue
        key = (image.shape, labelled.altitude, labelled.depression)
        if key not in geometries:
            height, width = image.shape
            geometries[key] = view_geometry(georeferencer_for(width, height),
                                            pose_for(labelled), image.shape)  # fmt: skip
        geometry = geometries[key]
        boxes = np.array([b for _, b in labelled.boxes], float).reshape(-1, 4)
        labels = np.array([HIT_UAV_CLASSES.get(c, IGNORE) for c, _ in labelled.boxes], int)
        group = "_".join(labelled.path.stem.split("_")[:3])
        scenes.append(Scene(labelled.path.name, group, image, geometry.gsd,
                            geometry.depression, boxes, labels, rendered=False))  # fmt: skip
    return scenes


def rendered_scenes(scenario: Path, times_s, seed: int) -> list[Scene]:
    """Thermal frames of every drone of a training scenario, by night and by day in turn;
    the group is the drone."""
    from edge.detection.eo_motion import as_pose
    from edge.georef import Camera, Georeferencer
    from sim_hw.camera import CameraRenderer, CameraSpec, DronePoses, origin_of
    from sim_hw.scenario import load_config

    config = load_config(scenario)
    scenes = []
    for drone in config.drones:
        for lighting in ("night", "day"):
            spec = CameraSpec(mode="thermal", lighting=lighting)
            camera = Camera.from_hfov(math.radians(spec.hfov_deg), spec.width, spec.height)
            georeferencer = Georeferencer(camera, origin_of(config))
            renderer = CameraRenderer(config, spec, DronePoses(config, drone.sysid),
                                      seed=seed + drone.sysid)  # fmt: skip
            chosen = times_s[::2] if lighting == "night" else times_s[1::2]
            for t in chosen:
                frame = renderer.render(float(t))
                try:
                    geometry = view_geometry(georeferencer, as_pose(frame.pose),
                                             frame.image.shape)  # fmt: skip
                except (ValueError, AttributeError):  # a frame that sees no ground teaches nothing
                    continue
                boxes = np.array([t.box for t in frame.targets], float).reshape(-1, 4)
                labels = np.array([CLASSES.index(t.target_class) for t in frame.targets], int)
                scenes.append(Scene(f"drone{drone.sysid}-{lighting}-{t:.0f}",
                                    f"drone{drone.sysid}", frame.image, geometry.gsd,
                                    geometry.depression, boxes, labels, rendered=True))  # fmt: skip
    return scenes


def split_by_group(scenes: list[Scene], held_out_share: float, rng) -> tuple[list, list]:
    """(training, held out): whole groups drawn at random until the share is held out."""
    groups = sorted({s.group for s in scenes})
    rng.shuffle(groups)
    held, count = set(), 0
    for group in groups:
        if count >= held_out_share * len(scenes):
            break
        held.add(group)
        count += sum(s.group == group for s in scenes)
    return [s for s in scenes if s.group not in held], [s for s in scenes if s.group in held]


def geometry_of(scene: Scene) -> ViewGeometry:
    """The scene's rows as a ViewGeometry (only gsd and depression are read from it)."""
    return ViewGeometry(scene.gsd, scene.depression, None, None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Augment:
    """How a crop is varied: scale, flip, the look of the sensor, whether the pose is known."""

    crop: int = 192
    real_scale: tuple[float, float] = (0.5, 1.6)  # resize factor range, log-uniform
    rendered_scale: tuple[float, float] = (0.8, 1.6)
    on_target: float = 0.7  # share of crops centred near a labelled target
    without_geometry: float = 0.3  # share of crops whose geometry is hidden
    gsd_jitter: float = 0.15  # log-normal sigma: the assumed lens is not known exactly
    gamma: tuple[float, float] = (0.7, 1.4)
    noise: float = 0.03  # sigma of added noise at most, normalised units
    blur: float = 0.3  # share of crops blurred (sigma up to 1.2 px)
    # Share of crops turned by a quarter, a half or three quarters: a drone's camera
    # may roll, and seen from a loitering drone an upright person lies at any angle
    # in the image. The geometry planes turn with the crop (the network reads them as
    # maps), so a turned crop stays a consistent view.
    turn: float = 0.0


def sample_crop(scene: Scene, augment: Augment, rng):
    """(image (1, S, S), geometry (3, S/4, S/4), heat (C, S/4, S/4), weight (S/4, S/4),
    size (2, S/4, S/4), offset (2, S/4, S/4), centre mask (S/4, S/4)) float32."""
    low, high = augment.rendered_scale if scene.rendered else augment.real_scale
    scale = math.exp(rng.uniform(math.log(low), math.log(high)))
    side = augment.crop
    source = side / scale  # crop side in the scene's pixels
    height, width = scene.image.shape
    wanted = [k for k in range(len(scene.labels)) if scene.labels[k] != IGNORE]
    if wanted and rng.random() < augment.on_target:
        x0, y0, x1, y1 = scene.boxes[wanted[rng.integers(len(wanted))]]
        cx = (x0 + x1) / 2 + rng.uniform(-0.4, 0.4) * source
        cy = (y0 + y1) / 2 + rng.uniform(-0.4, 0.4) * source
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    left = float(np.clip(cx - source / 2, 0, max(0.0, width - source)))
    top = float(np.clip(cy - source / 2, 0, max(0.0, height - source)))

    image = normalise(scene.image)  # the whole frame's levels, as at the edge
    # The crop by an affine warp: scale and shift in one step, borders repeated.
    warp = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], np.float32)
    crop = cv2.warpAffine(image, warp, (side, side), flags=cv2.INTER_AREA if scale < 1
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    crop = _sensor_look(crop, augment, rng)

    rows = np.clip(top + (np.arange(side) + 0.5) / scale, 0, height - 1).astype(int)
    jitter = math.exp(rng.normal(0.0, augment.gsd_jitter))
    geometry = ViewGeometry(scene.gsd[rows] / scale * jitter, scene.depression[rows],
                            None, None)  # type: ignore[arg-type]
    hidden = rng.random() < augment.without_geometry
    planes = geometry_planes(None if hidden else geometry, slice(0, side), side, STRIDE)

    boxes = (scene.boxes - [left, top, left, top]) * scale
    flip = rng.random() < 0.5
    if flip:
        crop, planes = crop[:, ::-1], planes[:, :, ::-1]
        boxes = np.column_stack([side - boxes[:, 2], boxes[:, 1], side - boxes[:, 0], boxes[:, 3]])
    if rng.random() < augment.turn:
        quarters = int(rng.integers(1, 4))
        crop, planes = np.rot90(crop, quarters), np.rot90(planes, quarters, axes=(1, 2))
        boxes = turned(boxes, quarters, side)
    targets = centre_targets(boxes, scene.labels, side)
    return (np.ascontiguousarray(crop)[None], np.ascontiguousarray(planes), *targets)


def turned(boxes: np.ndarray, quarters: int, side: int) -> np.ndarray:
    """Boxes of a square crop of `side` px turned as np.rot90 turns it (anticlockwise):
    a point (x, y) goes to (y, side - x) per quarter."""
    for _ in range(quarters):
        boxes = np.column_stack([boxes[:, 1], side - boxes[:, 2], boxes[:, 3], side - boxes[:, 0]])
    return boxes


def _sensor_look(crop: np.ndarray, augment: Augment, rng) -> np.ndarray:
    """Another sensor's response: a gamma, a little blur, noise."""
    gamma = math.exp(rng.uniform(*np.log(augment.gamma)))
    crop = np.power(np.clip(crop, 0.0, None) / 1.5, gamma) * 1.5
    if rng.random() < augment.blur:
        crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.5, 1.2))
    crop = crop + rng.normal(0.0, rng.uniform(0.0, augment.noise), crop.shape)
    return np.clip(crop, 0.0, 1.5).astype(np.float32)


def centre_targets(boxes: np.ndarray, labels: np.ndarray, side: int):
    """Stride-4 targets of boxes (N, 4) in a crop of `side` px: per-class Gaussian peaks at
    the box centres, the loss weight (0 inside IGNORE boxes), log size, offset, centre mask."""
    cells = side // STRIDE
    heat = np.zeros((len(CLASSES), cells, cells), np.float32)
    weight = np.ones((cells, cells), np.float32)
    size = np.zeros((2, cells, cells), np.float32)
    offset = np.zeros((2, cells, cells), np.float32)
    mask = np.zeros((cells, cells), np.float32)
    grid = np.arange(cells, dtype=np.float32)
    for (x0, y0, x1, y1), label in zip(boxes, labels, strict=True):
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        if label == IGNORE:
            a, b = np.clip([math.floor(x0 / STRIDE), math.ceil(x1 / STRIDE)], 0, cells)
            c, d = np.clip([math.floor(y0 / STRIDE), math.ceil(y1 / STRIDE)], 0, cells)
            weight[c:d, a:b] = 0.0
            continue
        if not (0 <= cx < cells and 0 <= cy < cells):
            continue
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        sigma = max(0.5, 0.12 * math.sqrt(w * h) / STRIDE)
        bump = np.exp(-((grid[None, :] - cx + 0.5) ** 2 + (grid[:, None] - cy + 0.5) ** 2)
                      / (2 * sigma**2))  # fmt: skip
        np.maximum(heat[label], bump, out=heat[label])
        ix, iy = int(cx), int(cy)
        heat[label, iy, ix] = 1.0
        size[:, iy, ix] = np.log([w / STRIDE, h / STRIDE])
        offset[:, iy, ix] = (cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    weight[heat.max(axis=0) > 0] = 1.0  # a target inside an ignored box is still a target
    return heat, weight, size, offset, mask


def batch(scenes: list[Scene], count: int, augment: Augment, rng, rendered_share: float):
    """`count` crops as stacked arrays, `rendered_share` of them from rendered scenes."""
    real = [s for s in scenes if not s.rendered]
    rendered = [s for s in scenes if s.rendered]
    parts = []
    for _ in range(count):
        pool = rendered if rendered and rng.random() < rendered_share else real
        parts.append(sample_crop(pool[rng.integers(len(pool))], augment, rng))
    return [np.stack(column) for column in zip(*parts, strict=True)]


assert GEOMETRY_CHANNELS == 3  # geometry_planes' channels: known, log scale, sin depression
