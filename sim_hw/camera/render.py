"""The renderer: a camera's frames of a scenario, each with its ground truth.

Each frame is rendered from the camera's pose at the frame's time
(`sim_hw.camera.pose`), in the modes "eo" (BGR colour) and "thermal" (white-hot
grey), by the image formation of `sim_hw.camera.image`.

Each frame carries its ground truth: the pose as MAVLink would report it
(`edge.georef.Pose(**asdict(pose))` rebuilds the edge's view of it) and, for
every visible target, its pixel box, its ground point and that point's pixel.
A target is visible when its ground point is in the image, it spans at least a
pixel, and most of it is in line of sight past the occluders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sim_hw.camera.geometry import View
from sim_hw.camera.illumination import Conditions, conditions
from sim_hw.camera.image import Imager
from sim_hw.camera.pose import CameraPose, DronePoses, mast_pose, origin_of
from sim_hw.camera.scene import (
    VISIBLE_FRACTION,
    Occluder,
    Solid,
    occluder_solids,
    target_solids,
    visible_fraction,
    warm_patches,
)
from sim_hw.camera.spec import CameraSpec
from sim_hw.scenario import ScenarioConfig, ground_targets, warm_spots

MIN_VISIBLE_PX = 1.0  # a target smaller than this (its box's longer side) is not visible


@dataclass(frozen=True)
class TargetInView:
    target_id: str
    target_class: str  # person, vehicle or animal
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 px, pixel (0, 0) the top-left corner
    ground_point: tuple[float, float]  # lat, lon deg of the point it stands on
    ground_enu: tuple[float, float]  # east, north m in the scenario's origin frame (first post)
    foot_pixel: tuple[float, float]  # u, v px of that ground point


@dataclass(frozen=True)
class RenderedFrame:
    time: float  # UTC s
    image: np.ndarray  # EO: (H, W, 3) uint8 BGR; thermal: (H, W) uint8, hotter is brighter
    pose: CameraPose
    targets: list[TargetInView]


class CameraRenderer:
    """Frames of one camera over one scenario; `pose_at(t)` gives its pose at scenario time t.

    A frame depends only on (t, spec, seed, scenario): rendering the same time twice, in any
    order, gives the same image.
    """

    def __init__(self, config: ScenarioConfig, spec: CameraSpec,
                 pose_at: Callable[[float], CameraPose], seed: int = 0,
                 occluders: Sequence[Occluder] = ()):  # fmt: skip
        self.config, self.spec, self.pose_at, self.seed = config, spec, pose_at, int(seed)
        self.origin = origin_of(config)
        self.targets = ground_targets(config, self.origin)
        self.occluders = occluder_solids(occluders, self.origin)
        warm_ground = warm_patches(warm_spots(config, self.origin), self.origin)
        self.imager = Imager(spec, self.seed, self.occluders, warm_ground)

    def render(self, t: float) -> RenderedFrame:
        """The frame at scenario time t (s since the scenario's start)."""
        pose = self.pose_at(t)
        if not pose.is_finite():
            raise ValueError(f"camera pose at t={t} is not finite: {pose}")
        view = self.view(pose)
        utc = self.config.start_utc + t
        light = conditions(utc, pose.lat, pose.lon, self.spec.lighting)
        solids = target_solids(self.targets, t, self.origin)
        truth = self._truth(view, solids)
        rng = np.random.default_rng([self.seed, int(round(t * 1000)) & 0xFFFFFFFF])
        streak = self._streak(t, view, light)
        image = self.imager.image(view, light, t, solids, streak, rng)
        return RenderedFrame(utc, image, pose, truth)

    def in_view(self, t: float) -> list[TargetInView]:
        """The targets the frame at scenario time t would show, without drawing it."""
        view = self.view(self.pose_at(t))
        return self._truth(view, target_solids(self.targets, t, self.origin))

    def view(self, pose: CameraPose) -> View:
        return View(pose.lat, pose.lon, pose.alt, pose.gimbal_roll, pose.gimbal_pitch,
                    pose.gimbal_yaw, self.spec.intrinsics, self.origin)  # fmt: skip

    def frames(self, start_s: float = 0.0, duration_s: float | None = None,
               ) -> Iterator[RenderedFrame]:  # fmt: skip
        for t in frame_times(self.config, self.spec, start_s, duration_s):
            yield self.render(float(t))

    # --- truth ---

    def _truth(self, view: View, solids: list[Solid]) -> list[TargetInView]:
        width, height = self.spec.width, self.spec.height
        seen = []
        for solid in solids:
            foot, depth = view.project(solid.centre)
            u, v = foot[0]
            if depth[0] <= 0 or not (0 <= u <= width and 0 <= v <= height):
                continue
            corners, depths = view.project(solid.corners)
            if np.any(depths <= 0):
                continue
            (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
            if max(x1 - x0, y1 - y0) < MIN_VISIBLE_PX:
                continue
            if visible_fraction(view.position, solid, self.occluders) < VISIBLE_FRACTION:
                continue
            lat, lon, _ = self.origin.to_geodetic(*solid.centre)
            box = (max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height))
            seen.append(TargetInView(
                solid.ident, solid.kind, tuple(round(float(b), 3) for b in box),
                (float(lat), float(lon)), (float(solid.centre[0]), float(solid.centre[1])),
                (float(u), float(v)),
            ))  # fmt: skip
        return seen

    def _streak(self, t: float, view: View, light: Conditions) -> tuple[float, float]:
        """Pixels the scene moves during the exposure: the boresight's ground point seen now
        and one exposure later (the blur is symmetric, so which interval does not matter)."""
        exposure = self.imager.exposure_s(light)
        if self.spec.blur == 0 or exposure == 0:
            return 0.0, 0.0
        point = view.boresight_point()
        before = view.project(point)[0][0]
        after = self.view(self.pose_at(t + exposure)).project(point)[0][0]
        streak = (after - before) * self.spec.blur
        return (float(streak[0]), float(streak[1])) if np.all(np.isfinite(streak)) else (0, 0)


def frame_times(config: ScenarioConfig, spec: CameraSpec, start_s: float = 0.0,
                duration_s: float | None = None) -> np.ndarray:  # fmt: skip
    """Scenario times of the frames from start_s for duration_s (default: to the end)."""
    if not (math.isfinite(start_s) and 0 <= start_s < config.duration_s):
        raise ValueError(f"start {start_s} s is not within the scenario's "
                         f"{config.duration_s:g} s")  # fmt: skip
    remaining = config.duration_s - start_s
    duration = remaining if duration_s is None else duration_s
    if not (math.isfinite(duration) and 0 < duration <= remaining + 1e-9):
        raise ValueError(f"duration {duration} s does not fit: {remaining:g} s of the "
                         f"scenario are left after {start_s:g} s")  # fmt: skip
    count = max(1, int(math.floor(duration * spec.fps + 1e-9)))
    return start_s + np.arange(count) / spec.fps


# --- the two cameras --------------------------------------------------------------------


def render_drone_camera(config: ScenarioConfig, sysid: int, spec: CameraSpec = CameraSpec(),
                        start_s: float = 0.0, duration_s: float | None = None, seed: int = 0,
                        occluders: Sequence[Occluder] = ()) -> Iterator[RenderedFrame]:  # fmt: skip
    """Frames at spec.fps of drone `sysid`'s gimbal camera, from scenario time start_s.
    Bad arguments raise ValueError here, before the first frame."""
    renderer = CameraRenderer(config, spec, DronePoses(config, sysid), seed, occluders)
    frame_times(config, spec, start_s, duration_s)  # check now, not at the first next()
    return renderer.frames(start_s, duration_s)


def render_mast_camera(config: ScenarioConfig, mast_lat: float, mast_lon: float,
                       mast_height_m: float, pan_deg: float, tilt_deg: float,
                       spec: CameraSpec = CameraSpec(), start_s: float = 0.0,
                       duration_s: float | None = None, seed: int = 0,
                       occluders: Sequence[Occluder] = ()) -> Iterator[RenderedFrame]:  # fmt: skip
    """Frames of a fixed camera on a mast at (mast_lat, mast_lon), `mast_height_m` over the
    ground, panned `pan_deg` clockwise from north and tilted `tilt_deg` (negative: down)."""
    pose = mast_pose(config, mast_lat, mast_lon, mast_height_m, pan_deg, tilt_deg)
    renderer = CameraRenderer(config, spec, lambda t: pose, seed, occluders)
    frame_times(config, spec, start_s, duration_s)
    return renderer.frames(start_s, duration_s)
