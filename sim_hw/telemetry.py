"""What a drone's autopilot, gimbal and camera send, from a flight's truth.

Messages go out at the rates a typical ArduPilot or PX4 link streams them;
each component (autopilot, gimbal, camera) numbers its own frames, as real
ones do, so a receiver can measure loss per component.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pymavlink.dialects.v20 import common as mavlink
from scipy.spatial.transform import Rotation

from sim_hw.flight import Trajectory, ground_point
from sim_hw.terrain import ground_up
from wire.geo import EnuFrame, enu_axes

AUTOPILOT_COMPONENT = mavlink.MAV_COMP_ID_AUTOPILOT1
GIMBAL_COMPONENT = mavlink.MAV_COMP_ID_GIMBAL
CAMERA_COMPONENT = mavlink.MAV_COMP_ID_CAMERA

# message -> period in seconds
RATES = {
    "HEARTBEAT": 1.0,
    "SYS_STATUS": 1.0,
    "BATTERY_STATUS": 1.0,
    "SYSTEM_TIME": 1.0,
    "RADIO_STATUS": 1.0,
    "HOME_POSITION": 5.0,
    "GPS_RAW_INT": 0.2,
    "GLOBAL_POSITION_INT": 0.1,
    "ATTITUDE": 0.1,
    "GIMBAL_DEVICE_ATTITUDE_STATUS": 0.1,
    "CAMERA_FOV_STATUS": 0.2,
    "CAMERA_INFORMATION": 10.0,
}


@dataclass(frozen=True)
class Camera:
    hfov: float = math.radians(60.0)
    width: int = 1280
    height: int = 720
    focal_length_mm: float = 4.4
    sensor_width_mm: float = 2 * 4.4 * math.tan(math.radians(30.0))

    @property
    def vfov(self) -> float:
        return 2 * math.atan(math.tan(self.hfov / 2) * self.height / self.width)


@dataclass(frozen=True)
class Drone:
    sysid: int
    frame: EnuFrame
    trajectory: Trajectory
    gimbal_pitch: np.ndarray  # (K,) earth frame, rad, negative below the horizon
    gimbal_yaw: np.ndarray  # (K,) earth frame, rad from north
    start_utc: float  # UTC seconds of trajectory.t == 0
    mav_type: int = mavlink.MAV_TYPE_QUADROTOR
    camera: Camera = Camera()
    boot_offset: float = 60.0  # s the autopilot was up before take-off


def euler_to_quaternion(roll, pitch, yaw):
    """(w, x, y, z) of the aerospace ZYX rotation, as MAVLink quaternions are."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return [
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ]


def local_level(post: EnuFrame, lat: float, lon: float, roll: float, pitch: float, yaw: float):
    """An attitude the flight model states against the post's north and level, restated
    against the drone's own (MAVLink's meaning); roll, pitch, yaw in (-pi, pi].

    The two levels differ by distance / Earth radius: 0.5 mrad 3 km out, which
    is half a metre on the ground at a grazing view.
    """
    at_post = Rotation.from_euler("ZYX", [yaw, pitch, roll]).as_matrix()
    to_local = _ned_axes(lat, lon) @ _ned_axes(post.lat, post.lon).T
    yaw, pitch, roll = Rotation.from_matrix(to_local @ at_post).as_euler("ZYX")
    return roll, pitch, yaw


def _ned_axes(lat: float, lon: float) -> np.ndarray:
    """Rows: north, east, down at (lat, lon), in ECEF."""
    east, north, up = enu_axes(lat, lon)
    return np.array([north, east, -up])


def frames(drone: Drone) -> Iterator[tuple[float, bytes]]:
    """(UTC time, MAVLink 2 frame) of everything the drone sends, in time order."""
    links = {
        c: mavlink.MAVLink(None, srcSystem=drone.sysid, srcComponent=c)
        for c in (AUTOPILOT_COMPONENT, GIMBAL_COMPONENT, CAMERA_COMPONENT)
    }
    trajectory = drone.trajectory
    next_due = dict.fromkeys(RATES, 0.0)
    for k, t in enumerate(trajectory.t):
        for name, period in RATES.items():
            if t + 1e-9 < next_due[name]:
                continue
            next_due[name] += period
            component, message = _message(name, drone, k)
            link = links[component]
            yield drone.start_utc + t, message.pack(link)
            link.seq = (link.seq + 1) % 256  # pack() leaves numbering to send(); we number here


def _message(name: str, drone: Drone, k: int):
    tr = drone.trajectory
    t = float(tr.t[k])
    boot_ms = int((t + drone.boot_offset) * 1000)
    lat, lon, alt = drone.frame.to_geodetic(*tr.position[k])
    e, n, u = tr.position[k]
    ve, vn, vu = tr.velocity[k]
    battery = float(tr.battery[k])
    if name == "HEARTBEAT":
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_heartbeat_message(
            drone.mav_type, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA,
            mavlink.MAV_MODE_FLAG_SAFETY_ARMED | mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
            3, mavlink.MAV_STATE_ACTIVE, 3,
        )  # fmt: skip
    if name == "SYS_STATUS":
        voltage_mv = int(_pack_voltage(battery) * 1000)
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_sys_status_message(
            0, 0, 0, 250, voltage_mv, 1500, int(battery * 100), 0, 0, 0, 0, 0, 0
        )
    if name == "BATTERY_STATUS":
        cells = [int(_pack_voltage(battery) / 6 * 1000)] * 6 + [65535] * 4
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_battery_status_message(
            0, mavlink.MAV_BATTERY_FUNCTION_ALL, mavlink.MAV_BATTERY_TYPE_LIPO, 3500, cells,
            1500, int((1 - battery) * 5000), -1, int(battery * 100),
        )  # fmt: skip
    if name == "SYSTEM_TIME":
        utc_us = int((drone.start_utc + t) * 1e6)
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_system_time_message(utc_us, boot_ms)
    if name == "RADIO_STATUS":
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_radio_status_message(
            180, 175, 100, 40, 42, 0, 0
        )
    if name == "HOME_POSITION":
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_home_position_message(
            int(drone.frame.lat * 1e7), int(drone.frame.lon * 1e7), int(drone.frame.alt * 1000),
            0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0,
        )  # fmt: skip
    if name == "GPS_RAW_INT":
        course = int(math.degrees(math.atan2(ve, vn)) % 360 * 100)
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_gps_raw_int_message(
            int((drone.start_utc + t) * 1e6), 3, round(lat * 1e7), round(lon * 1e7),
            int(alt * 1000), 80, 120, int(math.hypot(ve, vn) * 100), course, 14,
        )  # fmt: skip
    if name == "GLOBAL_POSITION_INT":
        heading = int(math.degrees(tr.yaw[k]) % 360 * 100)
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_global_position_int_message(
            boot_ms, round(lat * 1e7), round(lon * 1e7), int(alt * 1000), int(u * 1000),
            int(vn * 100), int(ve * 100), int(-vu * 100), heading,
        )  # fmt: skip
    if name == "ATTITUDE":
        roll, pitch, yaw = local_level(drone.frame, lat, lon, tr.roll[k], tr.pitch[k], tr.yaw[k])
        return AUTOPILOT_COMPONENT, mavlink.MAVLink_attitude_message(
            boot_ms, roll, pitch, yaw, 0.0, 0.0, 0.0
        )
    if name == "GIMBAL_DEVICE_ATTITUDE_STATUS":
        q = euler_to_quaternion(*local_level(drone.frame, lat, lon, 0.0, drone.gimbal_pitch[k],
                                             drone.gimbal_yaw[k]))  # fmt: skip
        flags = mavlink.GIMBAL_DEVICE_FLAGS_YAW_LOCK  # yaw in the earth frame
        return GIMBAL_COMPONENT, mavlink.MAVLink_gimbal_device_attitude_status_message(
            0, 0, boot_ms, flags, q, 0.0, 0.0, 0.0, 0
        )
    if name == "CAMERA_FOV_STATUS":
        centre = ground_point(
            tr.position[k],
            drone.gimbal_pitch[k],
            drone.gimbal_yaw[k],
            lambda e, n: ground_up(drone.frame, e, n),
        )
        nan = 2**31 - 1  # INT32_MAX: "unknown" in this message
        if centre is None:
            lat_i = lon_i = alt_i = nan
        else:
            c_lat, c_lon, c_alt = drone.frame.to_geodetic(*centre)
            lat_i, lon_i, alt_i = round(c_lat * 1e7), round(c_lon * 1e7), int(c_alt * 1000)
        q = euler_to_quaternion(*local_level(drone.frame, lat, lon, 0.0, drone.gimbal_pitch[k],
                                             drone.gimbal_yaw[k]))  # fmt: skip
        cam = drone.camera
        return CAMERA_COMPONENT, mavlink.MAVLink_camera_fov_status_message(
            boot_ms, round(lat * 1e7), round(lon * 1e7), int(alt * 1000), lat_i, lon_i, alt_i, q,
            math.degrees(cam.hfov), math.degrees(cam.vfov),
        )  # fmt: skip
    if name == "CAMERA_INFORMATION":
        cam = drone.camera
        sensor_height = cam.sensor_width_mm * cam.height / cam.width
        return CAMERA_COMPONENT, mavlink.MAVLink_camera_information_message(
            boot_ms, b"dunewatch".ljust(32, b"\0"), b"sim-eo".ljust(32, b"\0"), 0,
            cam.focal_length_mm, cam.sensor_width_mm, sensor_height, cam.width, cam.height,
            0, 0, 0, b"",
        )  # fmt: skip
    raise ValueError(f"no encoder for {name}")


def _pack_voltage(remaining: float) -> float:
    """A 6-cell LiPo from 25.2 V full to 21.0 V empty, roughly linear in flight."""
    return 21.0 + 4.2 * remaining
