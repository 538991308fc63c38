"""What stands on the ground in a camera's view: targets and raised occluders as solids.

Every object is a prism standing on the ground: its footprint (an ellipse for
people and camels, a rectangle for vehicles and rock outcrops) of true size
and heading, extruded to its height along the local vertical. Drawn, a prism
is the convex hull of its projected corners (the sides) with its top face over
it; its shadow is the hull of its base and of its top pushed along the sun's
rays onto the ground. Objects are painted far to near, so that an outcrop hides
what is behind it; a target counts as visible only while most of its corners
are in line of sight of the camera.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from sim_hw.camera.geometry import View, up_at
from sim_hw.scenario import GroundTarget, WarmSpot
from sim_hw.terrain import ground_up
from wire.geo import EnuFrame

ELLIPSE_SIDES = 12
HEADING_STEP_S = 0.5  # half the interval over which a target's heading is its displacement
VISIBLE_FRACTION = 0.5  # of a target's corners in line of sight, for it to count as visible
OCCLUDER = "occluder"


@dataclass(frozen=True)
class Shape:
    length: float  # m along the heading
    width: float  # m across
    height: float  # m
    round: bool  # an elliptic footprint, else rectangular


SHAPES = {
    "person": Shape(0.3, 0.5, 1.7, True),  # shoulders across the direction of walking
    "vehicle": Shape(4.5, 1.8, 1.8, False),  # a pickup
    "animal": Shape(2.5, 0.8, 2.0, True),  # a camel
}
# BGR; each target keeps one colour of its class, picked by its id.
PALETTES = {
    "person": [(38, 38, 44), (196, 200, 204), (120, 62, 34), (40, 62, 96), (70, 110, 60)],
    "vehicle": [(222, 224, 226), (128, 130, 132), (150, 176, 196), (52, 70, 56)],
    "animal": [(66, 104, 142), (80, 120, 160)],
    OCCLUDER: [(70, 84, 104)],
}
HOOD_M = 1.4  # the front of a vehicle's top that an engine heats
FAR_PX = 1e6  # projected points are clamped to +-this before drawing


@dataclass(frozen=True)
class Occluder:
    """A raised box standing on the ground (a rock outcrop, a wall) that hides what is behind."""

    lat: float
    lon: float
    length_m: float
    width_m: float
    height_m: float
    heading_deg: float = 0.0  # of the length, clockwise from north

    def __post_init__(self):
        values = (self.lat, self.lon, self.length_m, self.width_m, self.height_m,
                  self.heading_deg)  # fmt: skip
        if not all(map(math.isfinite, values)):
            raise ValueError(f"occluder with a non-finite value: {self}")
        if min(self.length_m, self.width_m, self.height_m) <= 0:
            raise ValueError(f"occluder sizes must be positive: {self}")
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(f"occluder position out of range: {self}")


@dataclass(frozen=True, eq=False)
class Solid:
    """A prism standing on the ground: a target at one instant, or an occluder."""

    ident: str
    kind: str  # a target class, or OCCLUDER
    centre: np.ndarray  # (3,) the ground point under its middle, origin ENU
    up: np.ndarray  # (3,) the local vertical there
    heading: float  # rad clockwise from north, of its length
    shape: Shape

    @functools.cached_property
    def axes(self) -> np.ndarray:
        """Rows: along, across (to the right), up; in the origin's ENU."""
        along = np.array([math.sin(self.heading), math.cos(self.heading), 0.0])
        across = np.cross(along, self.up)
        along = np.cross(self.up, across)  # level along the local vertical
        return np.array([along / np.linalg.norm(along), across / np.linalg.norm(across), self.up])

    @functools.cached_property
    def base(self) -> np.ndarray:
        """(K, 3) corners of the footprint, on the ground."""
        s = self.shape
        if s.round:
            angle = np.linspace(0, 2 * math.pi, ELLIPSE_SIDES, endpoint=False)
            local = np.column_stack([s.length / 2 * np.cos(angle), s.width / 2 * np.sin(angle)])
        else:
            local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [s.length / 2, s.width / 2]
        return self.centre + local @ self.axes[:2]

    @functools.cached_property
    def corners(self) -> np.ndarray:
        """(2K, 3): the base, then the top."""
        base = self.base
        return np.vstack([base, base + self.shape.height * self.up])

    def hood(self) -> np.ndarray:
        """(4, 3) the front of the top face, over a vehicle's engine."""
        s = self.shape
        front, back = s.length / 2, s.length / 2 - min(HOOD_M, s.length)
        local = np.array([[front, s.width / 2], [front, -s.width / 2],
                          [back, -s.width / 2], [back, s.width / 2]])  # fmt: skip
        return self.centre + local @ self.axes[:2] + s.height * self.up

    def colour(self) -> np.ndarray:
        palette = PALETTES[self.kind]
        return np.array(palette[zlib.crc32(self.ident.encode()) % len(palette)], np.float64)


# --- the scene at one instant -----------------------------------------------------------


def target_solids(targets: list[GroundTarget], t: float, origin: EnuFrame) -> list[Solid]:
    """The targets present at scenario time t, standing at their true ground positions."""
    present, headings, points = [], [], []
    for target in targets:
        track = target.position(np.array([t - HEADING_STEP_S, t, t + HEADING_STEP_S]))
        if np.isnan(track[1]).any():
            continue
        present.append(target)
        points.append(track[1])
        headings.append(_heading(target, track))
    if not present:
        return []
    points = np.array(points)
    heights = ground_up(origin, points[:, 0], points[:, 1])
    ups = up_at(origin, points[:, 0], points[:, 1])
    return [
        Solid(target.target_id, target.target_class, np.array([*p, h]), up, heading,
              SHAPES[target.target_class])
        for target, p, h, up, heading in zip(present, points, heights, ups, headings, strict=True)
    ]  # fmt: skip


def _heading(target: GroundTarget, track: np.ndarray) -> float:
    """Along its motion; standing still (or at the edges of its time), along its route's
    last leg, which is where a group that stops was heading."""
    step = track[2] - track[0]
    if np.isnan(step).any() or np.hypot(*step) < 0.05:
        step = target.route[-1] - target.route[-2]
    return math.atan2(step[0], step[1])


def occluder_solids(occluders, origin: EnuFrame) -> list[Solid]:
    solids = []
    for k, o in enumerate(occluders):
        e, n, _ = origin.from_geodetic(o.lat, o.lon, origin.alt)
        e, n = float(e), float(n)
        shape = Shape(o.length_m, o.width_m, o.height_m, False)
        solids.append(Solid(f"occluder-{k + 1}", OCCLUDER,
                            np.array([e, n, float(ground_up(origin, e, n))]),
                            up_at(origin, e, n)[0], math.radians(o.heading_deg), shape))
    return solids  # fmt: skip


@dataclass(frozen=True, eq=False)
class WarmPatch:
    """A warm spot's footprint on the ground, ready to project: flat, so it hides nothing."""

    outline: np.ndarray  # (ELLIPSE_SIDES, 3) origin ENU, on the ground
    contrast_k: float


def warm_patches(spots: list[WarmSpot], origin: EnuFrame) -> list[WarmPatch]:
    patches = []
    angle = np.linspace(0, 2 * math.pi, ELLIPSE_SIDES, endpoint=False)
    for spot in spots:
        up = up_at(origin, spot.east, spot.north)[0]
        centre = np.array([spot.east, spot.north, float(ground_up(origin, spot.east, spot.north))])
        solid = Solid(spot.spot_id, OCCLUDER, centre, up, spot.heading,
                      Shape(spot.length_m, spot.width_m, 0.01, True))  # fmt: skip
        local = np.column_stack([spot.length_m / 2 * np.cos(angle),
                                 spot.width_m / 2 * np.sin(angle)])  # fmt: skip
        patches.append(WarmPatch(centre + local @ solid.axes[:2], spot.contrast_k))
    return patches


def draw_flat(image: np.ndarray, view: View, outline: np.ndarray, colour, scale: float) -> None:
    """Paint a flat patch of ground (its outline's projection) in `colour`."""
    uv, depth = view.project(outline)
    if np.any(depth <= 0):
        return
    fill_polygon(image, uv, colour, scale)


def visible_fraction(camera: np.ndarray, solid: Solid, occluders: list[Solid]) -> float:
    """Share of the solid's corners (and its middle) that no occluder hides from `camera`."""
    points = np.vstack([solid.corners, solid.centre + solid.shape.height / 2 * solid.up])
    seen = np.ones(len(points), bool)
    for occluder in occluders:
        seen &= ~_segments_hit_box(camera, points, occluder)
    return float(seen.mean())


def _segments_hit_box(start: np.ndarray, ends: np.ndarray, box: Solid) -> np.ndarray:
    """Whether each segment start -> end passes through the box (slab test in its axes)."""
    axes = box.axes
    half = np.array([box.shape.length, box.shape.width, box.shape.height]) / 2
    middle = box.centre + half[2] * box.up
    origin = axes @ (start - middle)
    direction = (ends - start) @ axes.T
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = (-half - origin) / direction, (half - origin) / direction
    # A segment parallel to a slab is inside it everywhere or nowhere.
    parallel = direction == 0
    inside = np.abs(origin) <= half
    low = np.where(parallel, np.where(inside, -np.inf, np.inf), low)
    high = np.where(parallel, np.where(inside, np.inf, -np.inf), high)
    enter = np.minimum(low, high).max(axis=1)
    leave = np.maximum(low, high).min(axis=1)
    return (enter < leave) & (leave > 0.0) & (enter < 1.0)


# --- drawing ----------------------------------------------------------------------------


def draw_solid(image: np.ndarray, view: View, solid: Solid, side, top, scale: float,
               hood=None) -> None:  # fmt: skip
    """Paint the solid: the hull of its corners in `side`, its top face in `top` (when the
    camera is above it), and optionally its bonnet in `hood`. `scale`: image size over the
    camera's (a thermal core renders smaller)."""
    corners = solid.corners
    uv, depth = view.project(corners)
    if np.any(depth <= 0):
        return  # reaching behind the camera: too close to draw as a flat hull
    hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
    fill_polygon(image, hull, side, scale)
    camera_height = float((view.position - solid.centre) @ solid.up)
    if camera_height > solid.shape.height:
        k = len(corners) // 2
        fill_polygon(image, uv[k:], top, scale)
        if hood is not None:
            hood_uv, _ = view.project(solid.hood())
            fill_polygon(image, hood_uv, hood, scale)


def shadow_outline(solid: Solid, sun_elevation: float, sun_azimuth: float) -> np.ndarray:
    """(M, 3) ground points whose hull is the solid's shadow; the sun above the horizon."""
    toward_sun = np.array([math.sin(sun_azimuth), math.cos(sun_azimuth), 0.0])
    reach = solid.shape.height / math.tan(max(sun_elevation, math.radians(3.0)))
    base = solid.base
    return np.vstack([base, base - reach * toward_sun])


def darken_hull(image: np.ndarray, view: View, ground_points: np.ndarray, factor: float,
                scale: float) -> None:  # fmt: skip
    """Multiply the image inside the hull of the projected points by `factor`."""
    uv, depth = view.project(ground_points)
    if np.any(depth <= 0):
        return
    hull = cv2.convexHull((uv * scale).astype(np.float32)).reshape(-1, 2)
    x0, y0 = np.floor(hull.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(hull.max(axis=0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fixed(hull - [x0, y0])], 255, cv2.LINE_AA, 4)
    weight = 1.0 - (1.0 - factor) * mask.astype(np.float32) / 255.0
    region = image[y0:y1, x0:x1]
    if region.ndim == 3:
        weight = weight[..., None]
    region[:] = (region * weight).astype(np.uint8)


def fill_polygon(image: np.ndarray, uv: np.ndarray, colour, scale: float) -> None:
    """Anti-aliased fill at sub-pixel precision; uv in camera pixels (corner convention)."""
    if not np.all(np.isfinite(uv)):
        return
    colour = tuple(float(c) for c in np.atleast_1d(colour))
    cv2.fillPoly(image, [_fixed(uv * scale)], colour, cv2.LINE_AA, 4)


def _fixed(uv: np.ndarray) -> np.ndarray:
    """Corner-convention pixels -> OpenCV's 4-bit fixed point of pixel centres. A corner just
    in front of the camera projects absurdly far: clamped, it stays within int32 and the
    visible part of the shape barely moves."""
    uv = np.clip(np.asarray(uv, np.float64), -FAR_PX, FAR_PX)
    return np.round((uv - 0.5) * 16).astype(np.int32)
