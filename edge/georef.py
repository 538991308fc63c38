"""Camera model, pixel -> ground, and the measurement covariance of each detection.

A detection's pixel becomes a ray: undistorted (OpenCV's model) into the
camera's frame, rotated by the gimbal and the vehicle into the drone's local
north-east-down frame and from there into ECEF, and followed from the drone's
position down to flat ground, the surface at the post's terrain height above
the WGS84 ellipsoid. The hit is expressed in the post's ENU frame: `z` (east,
north) is what the tracker's `update(t, z, R)` takes.

Frames:
- pixels: (0, 0) is the top-left corner of the image, u to the right, v down;
- camera: x forward along the optical axis, y right, z down (the gimbal's own
  axes: a gimbal at zero angles looks ahead, level, image top up);
- pose, as MAVLink reports it: roll, pitch, yaw (rad) of the ZYX rotation from
  the drone's local NED frame; the gimbal's angles in one of three frames:
  "earth" (relative to level and north), "vehicle" (MAVLink's vehicle frame:
  relative to level, yaw relative to the vehicle's heading), or "body" (relative
  to the airframe: a hard-mounted camera). Gimbal pitch -pi/2 looks straight down.

The covariance is first order: each error source of `ErrorBudget` is stepped by
plus and minus one sigma, the ray traced again, and the half-difference of the
two ground points is that source's column of J sigma; R = sum of the columns'
outer products. A one-sigma step (rather than an infinitesimal one) makes each
column a secant, which follows the curvature of the map at oblique views better.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields

import cv2
import numpy as np
from numba import njit

from wire.geo import (
    WGS84_A,
    WGS84_B,
    EnuFrame,
    ecef_to_enu_rotation,
    ecef_to_geodetic_point,
    enu_to_geodetic_batch,
    geodetic_to_ecef_point,
)

log = logging.getLogger(__name__)

# Status of each pixel.
OK = 0
BAD_INPUT = 1  # a pixel non-finite or off the image, a non-finite pose, a drone not above ground
NO_GROUND = 2  # the ray meets no ground: at or above the horizon (or past the Earth's curve)
UNSTABLE = 3  # the ray meets the ground, but a one-sigma error would lift it off: range unbounded
STATUS_NAMES = {OK: "ok", BAD_INPUT: "bad_input", NO_GROUND: "no_ground", UNSTABLE: "unstable"}

GIMBAL_FRAMES = ("earth", "vehicle", "body")
ENU_FROM_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class ErrorBudget:
    """One-sigma errors of what the georeferencing takes as given; consumer-grade defaults."""

    tilt: float = math.radians(0.5)  # rad: the autopilot's level (roll, pitch) estimate
    heading: float = math.radians(1.0)  # rad: its heading, magnetometer-aided on small drones
    gimbal: float = math.radians(0.5)  # rad, per axis: the mount's pointing, about its own axes
    pixel: float = 2.0  # px, per axis: where the detector puts the object
    altitude: float = 1.5  # m: the drone's height over the ground (baro/GNSS and terrain)
    gnss_horizontal: float = 1.5  # m, per axis (east, north)
    time_sync: float = 0.03  # s between the pose's time and the frame's; moves the drone by v dt

    def __post_init__(self):
        bad = [f.name for f in fields(self) if not (math.isfinite(getattr(self, f.name))
                                                   and getattr(self, f.name) >= 0)]  # fmt: skip
        if bad:
            raise ValueError(f"ErrorBudget: must be finite and >= 0: {', '.join(bad)}")


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with OpenCV's distortion model, in this module's pixel convention.

    From an OpenCV calibration, whose pixel centres sit on integers, add 0.5 to cx and cy.
    `distortion` is OpenCV's (k1, k2, p1, p2[, k3, ...]); empty for an ideal pinhole.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()

    def __post_init__(self):
        values = (self.fx, self.fy, self.cx, self.cy, *self.distortion)
        if self.width <= 0 or self.height <= 0 or not all(map(math.isfinite, values)):
            raise ValueError(f"Camera: bad size or non-finite parameter: {self}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"Camera: focal lengths must be positive: {self}")

    @classmethod
    def from_hfov(cls, hfov: float, width: int, height: int, distortion=()) -> Camera:
        """Square pixels, principal point at the image centre; hfov in radians."""
        if not 0.0 < hfov < math.pi:
            raise ValueError(f"Camera: horizontal field of view {hfov} rad is not in (0, pi)")
        focal = width / 2.0 / math.tan(hfov / 2.0)
        return cls(width, height, focal, focal, width / 2.0, height / 2.0, tuple(distortion))

    @classmethod
    def from_sensor(cls, focal_length_mm, sensor_width_mm, sensor_height_mm, width, height,
                    distortion=()) -> Camera:  # fmt: skip
        """From CAMERA_INFORMATION's focal_length, sensor_size_h/v and resolution_h/v."""
        fx = focal_length_mm / sensor_width_mm * width
        fy = focal_length_mm / sensor_height_mm * height
        return cls(width, height, fx, fy, width / 2.0, height / 2.0, tuple(distortion))

    def rays(self, u, v) -> np.ndarray:
        """(N, 3) directions in the camera frame (x forward) through pixels (u, v)."""
        pixels = np.stack([np.ravel(u), np.ravel(v)], axis=1).astype(np.float64)
        rays = np.ones((pixels.shape[0], 3))
        if any(self.distortion) and pixels.shape[0]:
            matrix = np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])
            # More iterations than OpenCV's default 5, which leave pixels of wide lenses off.
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
            identity = np.eye(3)  # no rectification; P = I: normalised coordinates out
            normalised = cv2.undistortPoints(
                pixels[:, None, :], matrix, np.asarray(self.distortion, float),
                R=identity, P=identity, criteria=criteria,
            ).reshape(-1, 2)  # fmt: skip
            rays[:, 1:] = normalised
        else:
            rays[:, 1] = (pixels[:, 0] - self.cx) / self.fx
            rays[:, 2] = (pixels[:, 1] - self.cy) / self.fy
        return rays


@dataclass(frozen=True)
class Pose:
    """Where the drone is and how its camera points, in MAVLink's conventions (SI units)."""

    lat: float  # deg, WGS84
    lon: float  # deg
    alt: float  # m above the ellipsoid
    roll: float  # rad, ATTITUDE
    pitch: float
    yaw: float
    gimbal_roll: float  # rad, in `gimbal_frame`
    gimbal_pitch: float  # rad, -pi/2 straight down
    gimbal_yaw: float
    gimbal_frame: str = "earth"
    velocity_ned: tuple[float, float, float] = (0.0, 0.0, 0.0)  # m/s, GLOBAL_POSITION_INT

    def __post_init__(self):
        if self.gimbal_frame not in GIMBAL_FRAMES:
            raise ValueError(f"gimbal_frame {self.gimbal_frame!r} is not one of {GIMBAL_FRAMES}")

    def is_finite(self) -> bool:
        values = (self.lat, self.lon, self.alt, self.roll, self.pitch, self.yaw,
                  self.gimbal_roll, self.gimbal_pitch, self.gimbal_yaw, *self.velocity_ned)
        return all(map(math.isfinite, values))  # fmt: skip


def axis_rotation(axis: int, angle: float) -> np.ndarray:
    """The rotation by `angle` (right hand) about coordinate axis 0, 1 or 2."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    rotation = np.eye(3)
    rotation[i, i] = rotation[j, j] = c
    rotation[j, i], rotation[i, j] = s, -s
    return rotation


def euler_zyx(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """The aerospace rotation yaw about z, then pitch about y, then roll about x."""
    return axis_rotation(2, yaw) @ axis_rotation(1, pitch) @ axis_rotation(0, roll)


def euler_from_quaternion(w: float, x: float, y: float, z: float) -> tuple[float, float, float]:
    """(roll, pitch, yaw) rad of a MAVLink (w, x, y, z) quaternion, as ZYX Euler angles."""
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def camera_to_ned(pose: Pose) -> np.ndarray:
    """The rotation taking camera-frame vectors into the drone's local NED frame."""
    gimbal = euler_zyx(pose.gimbal_roll, pose.gimbal_pitch, pose.gimbal_yaw)
    if pose.gimbal_frame == "earth":
        return gimbal
    if pose.gimbal_frame == "vehicle":
        return axis_rotation(2, pose.yaw) @ gimbal
    return euler_zyx(pose.roll, pose.pitch, pose.yaw) @ gimbal


def pose_scenarios(pose: Pose, budget: ErrorBudget) -> tuple[np.ndarray, np.ndarray]:
    """ECEF positions (S, 3) and camera-to-ECEF rotations (S, 3, 3): the pose, then +/- sigma.

    Scenario 0 is the pose as given; scenarios 2k+1 and 2k+2 step error source
    k up and down by one sigma. The sources, in order:
    - tilt about north, tilt about east, heading about down: the autopilot's
      estimate of level and north is off. Gimbals hold their angles against that
      estimate, so it turns the camera in every gimbal frame;
    - gimbal about the camera's x, y, z: the mount points off, about its own
      axes, which stay well defined when it looks straight down;
    - GNSS north, GNSS east, altitude: the drone is elsewhere;
    - time sync: the pose belongs to another instant, so the drone is v dt away.
    """
    ecef_from_ned = ecef_to_enu_rotation(pose.lat, pose.lon).T @ ENU_FROM_NED
    ned_from_camera = camera_to_ned(pose)
    position = np.array(geodetic_to_ecef_point(pose.lat, pose.lon, pose.alt))
    rotation = ecef_from_ned @ ned_from_camera
    signs = (1.0, -1.0)

    scenarios = [(position, rotation)]
    for axis, sigma in ((0, budget.tilt), (1, budget.tilt), (2, budget.heading)):
        for sign in signs:
            error = axis_rotation(axis, sign * sigma)  # about the NED axes: on the left
            scenarios.append((position, ecef_from_ned @ error @ ned_from_camera))
    for axis in range(3):
        for sign in signs:
            error = axis_rotation(axis, sign * budget.gimbal)  # about the camera's: on the right
            scenarios.append((position, ecef_from_ned @ ned_from_camera @ error))
    moves_ned = [
        (budget.gnss_horizontal, 0.0, 0.0),
        (0.0, budget.gnss_horizontal, 0.0),
        (0.0, 0.0, budget.altitude),
        tuple(v * budget.time_sync for v in pose.velocity_ned),
    ]
    for move in moves_ned:
        step = ecef_from_ned @ np.array(move)
        scenarios += [(position + sign * step, rotation) for sign in signs]
    positions, rotations = zip(*scenarios, strict=True)
    return np.array(positions), np.array(rotations)


@njit(cache=True)
def _rotate(m, x, y, z):
    return (m[0, 0] * x + m[0, 1] * y + m[0, 2] * z,
            m[1, 0] * x + m[1, 1] * y + m[1, 2] * z,
            m[2, 0] * x + m[2, 1] * y + m[2, 2] * z)  # fmt: skip


@njit(cache=True)
def _hit_grown_ellipsoid(origin, dx, dy, dz, ground_height):
    """ECEF point where the ray origin + s d (s > 0, |d| = 1) meets the grown ellipsoid.

    The ellipsoid grown by `ground_height` along each axis lies within
    millimetres of the ground at that height (1 mm at 700 m, 3 mm at 2 km), and
    a ray meets an ellipsoid where a quadratic says: no root, or none ahead, is
    a ray at or above the horizon (NaNs).
    """
    nan = np.nan
    a, b = WGS84_A + ground_height, WGS84_B + ground_height
    # Stretching z by a/b turns the grown ellipsoid into a sphere of radius a.
    stretch = a / b
    ox, oy, oz = origin[0], origin[1], origin[2] * stretch
    sz = dz * stretch
    qa = dx * dx + dy * dy + sz * sz
    qb = ox * dx + oy * dy + oz * sz  # half the linear coefficient
    qc = ox * ox + oy * oy + oz * oz - a * a
    discriminant = qb * qb - qa * qc
    if qc <= 0.0 or qb >= 0.0 or discriminant < 0.0:
        return nan, nan, nan  # below the ground, looking up, or past the Earth's curve
    s = qc / (math.sqrt(discriminant) - qb)  # the nearer root, free of cancellation
    return origin[0] + s * dx, origin[1] + s * dy, origin[2] + s * dz


@njit(cache=True)
def _onto_ground(x, y, z, dx, dy, dz, ground_height):
    """Slide a grown-ellipsoid hit along its ray onto the exact height: one Newton step."""
    _, _, height = ecef_to_geodetic_point(x, y, z)
    a, b = WGS84_A + ground_height, WGS84_B + ground_height
    # dh/ds: the ray along the vertical, here the grown ellipsoid's normal
    # (within a microradian of the geodetic one, plenty for a millimetre).
    nx, ny, nz = x / (a * a), y / (a * a), z / (b * b)
    climb = (dx * nx + dy * ny + dz * nz) / math.sqrt(nx * nx + ny * ny + nz * nz)
    s = -(height - ground_height) / climb
    return x + s * dx, y + s * dy, z + s * dz


@njit(cache=True)
def _trace(positions, rotations, k, ray, ground_height, exact):
    """ECEF ground point of camera-frame `ray` under pose scenario k.

    Not `exact`: on the grown ellipsoid. Its millimetre from the ground hardly
    changes over the metres between two error scenarios, so the differences
    that make the covariance need no correction.
    """
    dx, dy, dz = _rotate(rotations[k], ray[0], ray[1], ray[2])
    norm = math.sqrt(dx * dx + dy * dy + dz * dz)
    dx, dy, dz = dx / norm, dy / norm, dz / norm
    x, y, z = _hit_grown_ellipsoid(positions[k], dx, dy, dz, ground_height)
    if exact and not np.isnan(x):
        return _onto_ground(x, y, z, dx, dy, dz, ground_height)
    return x, y, z


@njit(cache=True)
def locate_kernel(positions, rotations, rays, ground_height, enu_from_ecef, enu_origin,
                  enu, covariance, status):  # fmt: skip
    """Ground points and their covariances for many pixels of one frame.

    positions (S, 3), rotations (S, 3, 3): `pose_scenarios`. rays (N, 5, 3):
    each pixel's camera-frame ray, then its rays one pixel-sigma right, left,
    down, up. Writes enu (N, 3) in the post's frame, covariance (N, 2, 2) of
    east/north in m², and status (N,); rejected pixels get NaN.
    """
    n_pose_sources = (positions.shape[0] - 1) // 2
    for i in range(rays.shape[0]):
        enu[i, :] = np.nan
        covariance[i, :, :] = np.nan
        if not np.all(np.isfinite(rays[i])):
            status[i] = BAD_INPUT
            continue
        x, y, z = _trace(positions, rotations, 0, rays[i, 0], ground_height, True)
        if np.isnan(x):
            status[i] = NO_GROUND
            continue
        c_ee = c_en = c_nn = 0.0
        status[i] = OK
        for source in range(n_pose_sources + 2):
            if source < n_pose_sources:  # a pose error: other pose, same ray
                pose_hi, pose_lo, ray_hi, ray_lo = 2 * source + 1, 2 * source + 2, 0, 0
            else:  # a pixel error: same pose, other ray
                axis = source - n_pose_sources
                pose_hi, pose_lo, ray_hi, ray_lo = 0, 0, 1 + 2 * axis, 2 + 2 * axis
            hi = _trace(positions, rotations, pose_hi, rays[i, ray_hi], ground_height, False)
            lo = _trace(positions, rotations, pose_lo, rays[i, ray_lo], ground_height, False)
            if np.isnan(hi[0]) or np.isnan(lo[0]):
                status[i] = UNSTABLE
                break
            half = ((hi[0] - lo[0]) / 2.0, (hi[1] - lo[1]) / 2.0, (hi[2] - lo[2]) / 2.0)
            de, dn, _ = _rotate(enu_from_ecef, half[0], half[1], half[2])
            c_ee += de * de
            c_en += de * dn
            c_nn += dn * dn
        if status[i] != OK:
            continue
        enu[i, 0], enu[i, 1], enu[i, 2] = _rotate(
            enu_from_ecef, x - enu_origin[0], y - enu_origin[1], z - enu_origin[2]
        )
        covariance[i, 0, 0], covariance[i, 0, 1] = c_ee, c_en
        covariance[i, 1, 0], covariance[i, 1, 1] = c_en, c_nn


@dataclass(frozen=True)
class GroundMeasurements:
    """One frame's detections on the ground; rows with status != OK are NaN."""

    z: np.ndarray  # (N, 2) east, north m in the post's ENU frame: the tracker's z
    R: np.ndarray  # (N, 2, 2) m²: the tracker's R
    enu: np.ndarray  # (N, 3) the whole point: up is the ground's height in the post's frame
    status: np.ndarray  # (N,) int8, OK or a rejection reason

    @property
    def ok(self) -> np.ndarray:
        return self.status == OK


@dataclass
class GeorefCounters:
    pixels: int = 0
    located: int = 0
    rejected_bad_input: int = 0
    rejected_no_ground: int = 0
    rejected_unstable: int = 0


class Georeferencer:
    """Pixels of one camera on one drone -> measurements in the post's ENU frame."""

    def __init__(self, camera: Camera, frame: EnuFrame, ground_alt: float | None = None,
                 budget: ErrorBudget | None = None):  # fmt: skip
        self.camera = camera
        self.frame = frame
        self.ground_alt = frame.alt if ground_alt is None else float(ground_alt)
        self.budget = budget or ErrorBudget()
        self.counters = GeorefCounters()
        self._enu_from_ecef = np.ascontiguousarray(ecef_to_enu_rotation(frame.lat, frame.lon))
        self._enu_origin = np.array(geodetic_to_ecef_point(frame.lat, frame.lon, frame.alt))

    def locate(self, pose: Pose, u, v) -> GroundMeasurements:
        """Georeference pixels (u, v) (arrays of equal length) seen from `pose`."""
        u = np.atleast_1d(np.asarray(u, dtype=np.float64)).ravel()
        v = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
        if u.shape != v.shape:
            raise ValueError(f"u and v differ in length: {u.shape} vs {v.shape}")
        n = u.shape[0]
        enu = np.empty((n, 3))
        R = np.empty((n, 2, 2))
        status = np.empty(n, dtype=np.int8)
        if self._pose_usable(pose):
            positions, rotations = pose_scenarios(pose, self.budget)
            rays = self._pixel_rays(*self._inside_image(u, v))
            locate_kernel(positions, rotations, rays, self.ground_alt, self._enu_from_ecef,
                          self._enu_origin, enu, R, status)  # fmt: skip
        else:
            enu[:], R[:], status[:] = np.nan, np.nan, BAD_INPUT
        self._count(status)
        return GroundMeasurements(np.ascontiguousarray(enu[:, :2]), R, enu, status)

    def footprint(self, pose: Pose) -> list[tuple[float, float] | None]:
        """(lon, lat) deg where the rays through the image's four corners meet the ground,
        top-left, top-right, bottom-right, bottom-left; None for a corner whose ray meets no
        ground (at or above the horizon). The same camera model and ground as `locate`,
        without the covariance: a corner only shows what the camera covers."""
        if not self._pose_usable(pose):
            return [None] * 4
        width, height = self.camera.width, self.camera.height
        rays = self.camera.rays(np.array([0.0, width, width, 0.0]),
                                np.array([0.0, 0.0, height, height]))  # fmt: skip
        positions, rotations = pose_scenarios(pose, self.budget)
        corners = []
        for ray in rays:
            x, y, z = _trace(positions, rotations, 0, np.ascontiguousarray(ray),
                             self.ground_alt, True)  # fmt: skip
            if math.isnan(x):
                corners.append(None)
                continue
            lat, lon, _ = ecef_to_geodetic_point(x, y, z)
            corners.append((lon, lat))
        return corners

    def to_geodetic(self, measurements: GroundMeasurements) -> np.ndarray:
        """(N, 3) lat, lon deg and height m of the ground points."""
        return enu_to_geodetic_batch(self.frame.origin, np.ascontiguousarray(measurements.enu))

    def _pose_usable(self, pose: Pose) -> bool:
        if not pose.is_finite():
            log.warning("georef pose rejected reason=non_finite pose=%s", pose)
            return False
        if pose.alt <= self.ground_alt:
            log.warning("georef pose rejected reason=not_above_ground alt=%.2f ground=%.2f",
                        pose.alt, self.ground_alt)  # fmt: skip
            return False
        return True

    def _inside_image(self, u, v):
        """(u, v) with NaN for pixels off the image, whose rays the lens model cannot give."""
        inside = (u >= 0) & (u <= self.camera.width) & (v >= 0) & (v <= self.camera.height)
        return np.where(inside, u, np.nan), np.where(inside, v, np.nan)

    def _pixel_rays(self, u, v) -> np.ndarray:
        """(N, 5, 3): each pixel's ray, then one pixel-sigma right, left, down, up."""
        step = self.budget.pixel
        us = np.stack([u, u + step, u - step, u, u], axis=1)
        vs = np.stack([v, v, v, v + step, v - step], axis=1)
        return self.camera.rays(us, vs).reshape(-1, 5, 3)

    def _count(self, status: np.ndarray) -> None:
        counts = np.bincount(status, minlength=4)
        c = self.counters
        c.pixels += status.shape[0]
        c.located += int(counts[OK])
        c.rejected_bad_input += int(counts[BAD_INPUT])
        c.rejected_no_ground += int(counts[NO_GROUND])
        c.rejected_unstable += int(counts[UNSTABLE])
        if counts[OK] < status.shape[0]:
            # Sky above the horizon is routine for an oblique camera; broken input is not.
            level = logging.WARNING if counts[BAD_INPUT] else logging.DEBUG
            log.log(
                level, "georef pixels rejected bad_input=%d no_ground=%d unstable=%d of=%d",
                counts[BAD_INPUT], counts[NO_GROUND], counts[UNSTABLE], status.shape[0],
            )  # fmt: skip


def warm() -> None:
    """Compile (or load from cache) the kernels before the first frame."""
    camera = Camera.from_hfov(math.radians(60.0), 640, 480)
    georef = Georeferencer(camera, EnuFrame(0.0, 0.0, 0.0))
    georef.locate(Pose(0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, -math.pi / 2, 0.0), [320.0], [240.0])
