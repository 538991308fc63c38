"""Simulated cameras: what a drone's gimbal camera, or a fixed mast camera, sees of a scenario.

Each frame is rendered from the camera's pose at the frame's time (a drone's
flight interpolated, or a mast's fixed pose), in the modes "eo" (BGR colour)
and "thermal" (white-hot grey):

- the ground: a metric desert texture (`sim_hw.ground_texture`) drawn through
  the ground plane's homography (`sim_hw.camera_geometry`);
- the targets at their true ground positions as solids of true size and
  heading, and raised occluders (`sim_hw.camera_scene`);
- light and heat from the scenario's clock (`sim_hw.illumination`), the
  picture's formation (`sim_hw.camera_image`) and what the atmosphere and the
  sensor add: haze, motion blur, noise, drift (`sim_hw.camera_sensor`).

Each frame carries its ground truth: the pose as MAVLink would report it
(`edge.georef.Pose(**asdict(pose))` rebuilds the edge's view of it) and, for
every visible target, its pixel box, its ground point and that point's pixel.
A target is visible when its ground point is in the image, it spans at least a
pixel, and most of it is in line of sight past the occluders.
Video files and a live MJPEG stream: `sim_hw.camera_cli`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np

from sim_hw.camera_geometry import Intrinsics, View
from sim_hw.camera_image import Imager
from sim_hw.camera_scene import (
    VISIBLE_FRACTION,
    Occluder,
    Solid,
    occluder_solids,
    target_solids,
    visible_fraction,
)
from sim_hw.illumination import LIGHTING, Conditions, conditions
from sim_hw.scenario import ScenarioConfig, drone_of, ground_targets
from sim_hw.telemetry import local_level
from wire.geo import EnuFrame, enu_axes

MODES = ("eo", "thermal")
MIN_CAMERA_HEIGHT_M = 0.5  # a drone on its pad still holds its camera off the sand
MIN_VISIBLE_PX = 1.0  # a target smaller than this (its box's longer side) is not visible


@dataclass(frozen=True)
class CameraSpec:
    """The camera: its image, lens and mode, and how strong its imperfections are."""

    width: int = 1280
    height: int = 720
    hfov_deg: float = 60.0
    mode: str = "eo"  # or "thermal"
    fps: float = 25.0
    noise: float = 1.0  # scale of the sensor's noise; 0 for none
    blur: float = 1.0  # scale of the motion blur and the thermal lens's blur; 0 for none
    brightness_drift: float = 0.05  # relative amplitude of the gain's slow wander
    exposure_s: float | None = None  # None: 2 ms by day to 33 ms at night; thermal 12 ms
    lighting: str = "scene"  # "scene": the scenario's clock; "day" / "night": force
    visibility_m: float = 20_000.0
    thermal_scale: float = 0.5  # a thermal core renders at this fraction of the output size
    # EO: the ground texture is sampled at this fraction of the output size and enlarged
    # (demosaicing and compression leave little 1-px texture in real video); 1.0 costs 2x.
    ground_scale: float = 0.5

    def __post_init__(self):
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode {self.mode!r} is not one of {MODES}")
        if self.lighting not in LIGHTING:
            problems.append(f"lighting {self.lighting!r} is not one of {LIGHTING}")
        if not (isinstance(self.width, int) and isinstance(self.height, int)
                and 16 <= self.width <= 8192 and 16 <= self.height <= 8192):  # fmt: skip
            problems.append(f"size {self.width}x{self.height} is not 16..8192 px a side")
        checks = {
            "hfov_deg": 0 < self.hfov_deg < 170, "fps": 0 < self.fps <= 240,
            "noise": self.noise >= 0, "blur": self.blur >= 0,
            "brightness_drift": 0 <= self.brightness_drift < 1,
            "visibility_m": self.visibility_m > 0, "thermal_scale": 0.1 <= self.thermal_scale <= 1,
            "ground_scale": 0.1 <= self.ground_scale <= 1,
            "exposure_s": self.exposure_s is None or 0 <= self.exposure_s <= 1,
        }  # fmt: skip
        for name, ok in checks.items():
            value = getattr(self, name)
            if (value is not None and not math.isfinite(value)) or not ok:
                problems.append(f"{name} = {value!r} is out of range")
        if problems:
            raise ValueError("CameraSpec: " + "; ".join(problems))

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_hfov(self.width, self.height, math.radians(self.hfov_deg))


@dataclass(frozen=True)
class CameraPose:
    """`edge.georef.Pose` with the gimbal in the earth frame: lat, lon deg; alt m above the
    ellipsoid; attitude (ATTITUDE) and gimbal (against the camera's local level and north)
    in rad, gimbal pitch -pi/2 straight down; velocity m/s north, east, down."""

    lat: float
    lon: float
    alt: float
    roll: float
    pitch: float
    yaw: float
    gimbal_roll: float
    gimbal_pitch: float
    gimbal_yaw: float
    velocity_ned: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def is_finite(self) -> bool:
        values = [getattr(self, f.name) for f in fields(self) if f.name != "velocity_ned"]
        return all(map(math.isfinite, [*values, *self.velocity_ned]))


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


# --- poses ------------------------------------------------------------------------------


def origin_of(config: ScenarioConfig) -> EnuFrame:
    """The scenario's origin frame, the first post's; its ground is the world's."""
    first = config.posts[0]
    return EnuFrame(first.lat, first.lon, first.alt)


class DronePoses:
    """A scenario drone's camera pose at any scenario time: its flight interpolated, restated
    against the drone's own level and north as MAVLink reports it. Before take-off and after
    landing the drone sits where its flight starts or ends, its camera held
    MIN_CAMERA_HEIGHT_M off the ground (the pose says so)."""

    def __init__(self, config: ScenarioConfig, sysid: int):
        drone_config = next((d for d in config.drones if d.sysid == sysid), None)
        if drone_config is None:
            known = sorted(d.sysid for d in config.drones)
            raise ValueError(f"scenario {config.name!r} has no drone {sysid} (it has {known})")
        self.drone = drone = drone_of(config, drone_config)
        tr = drone.trajectory
        self._takeoff_s = drone.start_utc - config.start_utc
        self._t = tr.t
        # Angles unwrapped so that interpolating across +-pi does not swing the long way round.
        self._series = np.column_stack([
            tr.position, tr.velocity, tr.roll, tr.pitch, np.unwrap(tr.yaw),
            drone.gimbal_pitch, np.unwrap(drone.gimbal_yaw),
        ])  # fmt: skip
        self._ground_alt = origin_of(config).alt

    def __call__(self, t: float) -> CameraPose:
        flight_t = min(max(t - self._takeoff_s, self._t[0]), self._t[-1])
        k = int(np.clip(np.searchsorted(self._t, flight_t), 1, len(self._t) - 1))
        weight = (flight_t - self._t[k - 1]) / (self._t[k] - self._t[k - 1])
        row = self._series[k - 1] + weight * (self._series[k] - self._series[k - 1])
        e, n, u, ve, vn, vu, roll, pitch, yaw, gimbal_pitch, gimbal_yaw = row
        frame = self.drone.frame
        lat, lon, alt = (float(x) for x in frame.to_geodetic(e, n, u))
        alt = max(alt, self._ground_alt + MIN_CAMERA_HEIGHT_M)
        attitude = local_level(frame, lat, lon, roll, pitch, yaw)
        gimbal = local_level(frame, lat, lon, 0.0, gimbal_pitch, gimbal_yaw)
        velocity = _velocity_ned(frame, lat, lon, np.array([ve, vn, vu]))
        return CameraPose(lat, lon, alt, *map(float, attitude), *map(float, gimbal), velocity)


def _velocity_ned(frame: EnuFrame, lat: float, lon: float, enu: np.ndarray):
    """A velocity in the post's ENU frame, restated in the drone's own north, east, down."""
    ecef = np.array(enu_axes(frame.lat, frame.lon)).T @ enu
    east, north, up = enu_axes(lat, lon)
    return float(north @ ecef), float(east @ ecef), float(-up @ ecef)


def mast_pose(config: ScenarioConfig, lat: float, lon: float, height_m: float, pan_deg: float,
              tilt_deg: float) -> CameraPose:  # fmt: skip
    """A camera on a mast `height_m` over the ground, panned clockwise from north and tilted
    (negative: down)."""
    values = (lat, lon, height_m, pan_deg, tilt_deg)
    if not all(map(math.isfinite, values)):
        raise ValueError(f"mast: non-finite value in {values}")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"mast: position {lat}, {lon} is out of range")
    if not (MIN_CAMERA_HEIGHT_M <= height_m <= 10_000):
        raise ValueError(f"mast: height {height_m} m is not {MIN_CAMERA_HEIGHT_M}..10000 m")
    if not -90 <= tilt_deg <= 90:
        raise ValueError(f"mast: tilt {tilt_deg} deg is not -90..90")
    pan, tilt = math.radians(pan_deg), math.radians(tilt_deg)
    return CameraPose(lat, lon, origin_of(config).alt + height_m, 0.0, 0.0, pan, 0.0, tilt, pan)


# --- the renderer -----------------------------------------------------------------------


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
        self.imager = Imager(spec, self.seed, self.occluders)

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
