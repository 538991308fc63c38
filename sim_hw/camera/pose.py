"""Where a simulated camera is and looks: a drone's gimbal camera along its flight, or a
camera fixed on a mast, as MAVLink would report the pose."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from sim_hw.scenario import ScenarioConfig, drone_of
from sim_hw.telemetry import local_level
from wire.geo import EnuFrame, enu_axes

MIN_CAMERA_HEIGHT_M = 0.5  # a drone on its pad still holds its camera off the sand


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
