"""One vehicle's telemetry as bounded time series, and its pose at any time.

Times are UTC seconds: messages with time_boot_ms go through the vehicle's
TimeSync, the others are stamped with their arrival time less the configured
latency. Positions are WGS84; GLOBAL_POSITION_INT and HOME_POSITION give
altitude above mean sea level, so the geoid separation the GPS reports
(GPS_RAW_INT alt_ellipsoid - alt) is added when it is known, to give height
above the ellipsoid as the rest of the stack expects. Attitudes are rotations
from the body (forward, right, down) to the local NED frame.

Components are taken to share the autopilot's boot clock, as gimbals and
cameras behind an ArduPilot or PX4 autopilot (and the simulator) do.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as dialect
from scipy.spatial.transform import Rotation, Slerp

from edge.drivers.link_health import LinkHealth, MavlinkCounters, RadioStatus, VehicleLink
from edge.drivers.timeseries import Bracket, PoseUnavailable, Series
from edge.drivers.timesync import JUMP, REBOOT, TimeSync

log = logging.getLogger(__name__)

EARTH_RADIUS = 6_378_137.0  # m, WGS84 equatorial: dead reckoning over < 1 s needs no better
EARLIEST_UTC_US = 1_420_070_400 * 10**6  # a time_usec below this counts from boot
UINT16_MAX = 65535
NO_VALUE = math.nan

GIMBAL_EARTH = dialect.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME
GIMBAL_VEHICLE = dialect.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME
GIMBAL_YAW_LOCK = dialect.GIMBAL_DEVICE_FLAGS_YAW_LOCK


@dataclass(frozen=True)
class VehicleConfig:
    history: int = 1024  # samples kept per series
    horizon: float = 0.5  # s a pose may be extrapolated beyond the data
    max_gap: float = 2.0  # s: no interpolation across a longer gap
    latency: float = 0.05  # s from sending to arrival, for what carries no time
    heartbeat_timeout: float = 3.0
    rate_window: float = 5.0
    time_window: int = 15  # SYSTEM_TIME samples in the offset median


@dataclass(frozen=True)
class Pose:
    t: float
    lat: float  # deg
    lon: float  # deg
    alt: float  # m
    velocity_ned: np.ndarray  # m/s
    attitude: Rotation  # body to NED
    gimbal: Rotation | None  # gimbal to NED, yaw resolved to the earth frame
    hfov: float | None  # rad, from CAMERA_FOV_STATUS
    vfov: float | None
    extrapolated: float  # s beyond the newest position sample (0 when interpolated)


@dataclass(frozen=True)
class CameraInfo:
    t: float
    vendor: str
    model: str
    focal_length: float  # m
    sensor_width: float  # m
    sensor_height: float  # m
    width: int  # px
    height: int  # px


@dataclass(frozen=True)
class Home:
    t: float
    lat: float
    lon: float
    alt: float


@dataclass(frozen=True)
class VehicleStatus:
    sysid: int
    mav_type: int | None
    link: LinkHealth
    time_source: str
    clock_offset: float | None  # UTC - boot time, s
    reboots: int
    gps: dict[str, float] | None  # fix_type, satellites, hdop, vdop, h_acc (m)
    battery: dict[str, float] | None  # voltage (V), current (A), remaining (0..1)
    home: Home | None
    last_position_t: float | None


class VehicleState:
    """Everything known of one system id."""

    def __init__(self, sysid: int, config: VehicleConfig, counters: MavlinkCounters):
        self.sysid = sysid
        self.config = config
        self.counters = counters
        self.clock = TimeSync(latency=config.latency, window=config.time_window)
        self.link = VehicleLink(sysid, counters, config.heartbeat_timeout, config.rate_window)
        n = config.history
        self.position = Series(n, 6)  # lat, lon, alt, vn, ve, vd
        self.attitude = Series(n, 4)  # quaternion x, y, z, w
        self.gimbal = Series(n, 5)  # quaternion x, y, z, w; 1 if yaw is in the earth frame
        self.fov = Series(n, 2)  # hfov, vfov rad
        self.gps = Series(n, 5)  # fix_type, satellites, hdop, vdop, h_acc m
        self.battery = Series(n, 3)  # V, A, remaining fraction
        self.camera: CameraInfo | None = None
        self.home: Home | None = None
        self.mav_type: int | None = None
        self.geoid_separation = 0.0  # m, ellipsoid - MSL
        self.reboots = 0
        self._clock_compid = dialect.MAV_COMP_ID_AUTOPILOT1
        self._handlers = {
            "HEARTBEAT": self._on_heartbeat,
            "SYSTEM_TIME": self._on_system_time,
            "GLOBAL_POSITION_INT": self._on_position,
            "ATTITUDE": self._on_attitude,
            "ATTITUDE_QUATERNION": self._on_attitude_quaternion,
            "GIMBAL_DEVICE_ATTITUDE_STATUS": self._on_gimbal,
            "CAMERA_INFORMATION": self._on_camera_information,
            "CAMERA_FOV_STATUS": self._on_camera_fov,
            "GPS_RAW_INT": self._on_gps,
            "SYS_STATUS": self._on_sys_status,
            "BATTERY_STATUS": self._on_battery_status,
            "HOME_POSITION": self._on_home,
            "RADIO_STATUS": self._on_radio,
            "RADIO": self._on_radio,  # ArduPilot's older copy of RADIO_STATUS
        }

    def handle(self, msg, arrival: float) -> None:
        handler = self._handlers.get(msg.get_type())
        if handler is not None:
            handler(msg, arrival)

    # --- time ---------------------------------------------------------------

    def _boot_stamp(self, msg, arrival: float) -> float:
        boot = msg.time_boot_ms / 1e3
        if msg.get_srcComponent() == self._clock_compid:
            self._on_clock_event(self.clock.observe_boot(boot, arrival))
        utc = self.clock.to_utc(boot)
        return arrival - self.config.latency if utc is None else utc

    def _usec_stamp(self, time_usec: int, arrival: float) -> float:
        """time_usec fields hold UTC or time since boot, whichever the sender has."""
        if time_usec >= EARLIEST_UTC_US:
            return time_usec / 1e6
        utc = self.clock.to_utc(time_usec / 1e6) if time_usec > 0 else None
        return arrival - self.config.latency if utc is None else utc

    def _on_system_time(self, msg, arrival: float) -> None:
        self._clock_compid = msg.get_srcComponent()
        event = self.clock.observe_system_time(msg.time_boot_ms / 1e3, msg.time_unix_usec / 1e6,
                                               arrival)  # fmt: skip
        self._on_clock_event(event)

    def _on_clock_event(self, event: str | None) -> None:
        if event == REBOOT:
            self.reboots += 1
            self.counters.reboots += 1
            self.link.restart_sequences()
            log.warning("vehicle rebooted sysid=%d", self.sysid)
        elif event == JUMP:
            # Samples stamped with the old offset would not line up with new ones.
            self.counters.time_jumps += 1
            for series in (self.position, self.attitude, self.gimbal, self.fov, self.gps,
                           self.battery):  # fmt: skip
                series.clear()
            log.warning("clock offset jumped, history dropped sysid=%d offset=%.3f source=%s",
                        self.sysid, self.clock.offset, self.clock.source)  # fmt: skip

    # --- messages -----------------------------------------------------------

    def _invalid(self, what: str) -> None:
        self.counters.invalid_values += 1
        log.debug("invalid values skipped sysid=%d message=%s", self.sysid, what)

    def _on_heartbeat(self, msg, arrival: float) -> None:
        self.link.heartbeat(arrival)
        if msg.autopilot != dialect.MAV_AUTOPILOT_INVALID:
            self.mav_type = msg.type

    def _on_position(self, msg, arrival: float) -> None:
        t = self._boot_stamp(msg, arrival)
        if (msg.lat == 0 and msg.lon == 0) or abs(msg.lat) > 900_000_000:
            self._invalid("GLOBAL_POSITION_INT")  # 0, 0: the autopilot has no position
            return
        self.position.append(t, (msg.lat * 1e-7, msg.lon * 1e-7,
                                 msg.alt * 1e-3 + self.geoid_separation,
                                 msg.vx * 0.01, msg.vy * 0.01, msg.vz * 0.01))  # fmt: skip

    def _on_attitude(self, msg, arrival: float) -> None:
        t = self._boot_stamp(msg, arrival)
        q = quaternion_from_euler(msg.roll, msg.pitch, msg.yaw)
        if not all(map(math.isfinite, q)):
            self._invalid("ATTITUDE")
            return
        self.attitude.append(t, q)

    def _on_attitude_quaternion(self, msg, arrival: float) -> None:
        t = self._boot_stamp(msg, arrival)
        q = _unit_xyzw((msg.q1, msg.q2, msg.q3, msg.q4))
        if q is None:
            self._invalid("ATTITUDE_QUATERNION")
            return
        self.attitude.append(t, q)

    def _on_gimbal(self, msg, arrival: float) -> None:
        t = self._boot_stamp(msg, arrival)
        q = _unit_xyzw(msg.q)
        if q is None:
            self._invalid("GIMBAL_DEVICE_ATTITUDE_STATUS")
            return
        self.gimbal.append(t, (*q, 1.0 if gimbal_yaw_in_earth_frame(msg.flags) else 0.0))

    def _on_camera_information(self, msg, arrival: float) -> None:
        t = self._boot_stamp(msg, arrival)
        self.camera = CameraInfo(t, _text(msg.vendor_name), _text(msg.model_name),
                                 msg.focal_length * 1e-3, msg.sensor_size_h * 1e-3,
                                 msg.sensor_size_v * 1e-3, msg.resolution_h,
                                 msg.resolution_v)  # fmt: skip

    def _on_camera_fov(self, msg, arrival: float) -> None:
        t = self._boot_stamp(msg, arrival)
        if not (math.isfinite(msg.hfov) and math.isfinite(msg.vfov)):
            self._invalid("CAMERA_FOV_STATUS")
            return
        self.fov.append(t, (math.radians(msg.hfov), math.radians(msg.vfov)))

    def _on_gps(self, msg, arrival: float) -> None:
        t = self._usec_stamp(msg.time_usec, arrival)
        has_fix = msg.fix_type >= dialect.GPS_FIX_TYPE_3D_FIX
        if not has_fix:
            self.counters.gps_no_fix += 1
        alt_ellipsoid = getattr(msg, "alt_ellipsoid", 0)  # a MAVLink 2 extension
        if has_fix and alt_ellipsoid:
            self.geoid_separation = (alt_ellipsoid - msg.alt) * 1e-3
        h_acc = getattr(msg, "h_acc", 0)
        self.gps.append(t, (msg.fix_type, msg.satellites_visible, _dop(msg.eph), _dop(msg.epv),
                            h_acc * 1e-3 if h_acc else NO_VALUE))  # fmt: skip

    def _on_sys_status(self, msg, arrival: float) -> None:
        voltage = msg.voltage_battery * 1e-3 if msg.voltage_battery != UINT16_MAX else NO_VALUE
        self._battery(arrival, voltage, msg.current_battery, msg.battery_remaining)

    def _on_battery_status(self, msg, arrival: float) -> None:
        if msg.id != 0:
            return  # the primary battery only; SYS_STATUS reports the same one
        cells = [v for v in list(msg.voltages) + list(getattr(msg, "voltages_ext", []))
                 if v not in (0, UINT16_MAX)]  # fmt: skip
        voltage = sum(cells) * 1e-3 if cells else NO_VALUE
        self._battery(arrival, voltage, msg.current_battery, msg.battery_remaining)

    def _battery(self, arrival: float, voltage: float, current_ca: int, remaining: int) -> None:
        current = current_ca * 0.01 if current_ca != -1 else NO_VALUE
        fraction = remaining * 0.01 if remaining != -1 else NO_VALUE
        self.battery.append(arrival - self.config.latency, (voltage, current, fraction))

    def _on_home(self, msg, arrival: float) -> None:
        t = self._usec_stamp(getattr(msg, "time_usec", 0), arrival)
        self.home = Home(t, msg.latitude * 1e-7, msg.longitude * 1e-7,
                         msg.altitude * 1e-3 + self.geoid_separation)  # fmt: skip

    def _on_radio(self, msg, arrival: float) -> None:
        self.link.radio = RadioStatus.from_message(msg, arrival - self.config.latency)

    # --- queries ------------------------------------------------------------

    def pose_at(self, t: float) -> Pose:
        """Pose at UTC t; PoseUnavailable (with its reason) rather than a guess."""
        cfg = self.config
        at = self.position.bracket(t, cfg.horizon, cfg.max_gap, "position")
        lat, lon, alt, *velocity = _blend(self.position.values, at)
        if at.beyond:
            lat, lon, alt = dead_reckon(lat, lon, alt, velocity, at.beyond)
        attitude = _slerp(self.attitude, self.attitude.bracket(t, cfg.horizon, cfg.max_gap,
                                                               "attitude"))  # fmt: skip
        fov = self.fov.at_or_before(t)
        return Pose(t, lat, lon, alt, np.array(velocity), attitude, self._gimbal_at(t, attitude),
                    None if fov is None else float(fov[0]),
                    None if fov is None else float(fov[1]), at.beyond)  # fmt: skip

    def _gimbal_at(self, t: float, attitude: Rotation) -> Rotation | None:
        cfg = self.config
        try:
            at = self.gimbal.bracket(t, cfg.horizon, cfg.max_gap, "gimbal")
        except PoseUnavailable:
            return None
        gimbal = _slerp(self.gimbal, at)
        nearest = at.j if at.weight >= 0.5 else at.i
        if self.gimbal.values[nearest, 4]:
            return gimbal
        # Yaw relative to the vehicle's heading: turn it by the vehicle's yaw.
        vehicle_yaw = attitude.as_euler("ZYX")[0]
        return Rotation.from_euler("z", vehicle_yaw) * gimbal

    def status(self, now: float) -> VehicleStatus:
        gps = self.gps.latest()
        battery = self.battery.latest()
        position = self.position.latest()
        return VehicleStatus(
            self.sysid, self.mav_type, self.link.status(now), self.clock.source,
            self.clock.offset, self.reboots,
            None if gps is None else dict(zip(("fix_type", "satellites", "hdop", "vdop",
                                               "h_acc"), map(float, gps[1]), strict=True)),
            None if battery is None else dict(zip(("voltage", "current", "remaining"),
                                                   map(float, battery[1]), strict=True)),
            self.home, None if position is None else position[0],
        )  # fmt: skip


def quaternion_from_euler(roll: float, pitch: float, yaw: float) -> tuple[float, ...]:
    """(x, y, z, w) of the yaw-pitch-roll (aerospace ZYX) rotation, body to NED."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)  # fmt: skip


def gimbal_yaw_in_earth_frame(flags: int) -> bool:
    """MAVLink gimbal v2: explicit frame flags first; without them YAW_LOCK means earth frame."""
    if flags & GIMBAL_EARTH:
        return True
    if flags & GIMBAL_VEHICLE:
        return False
    return bool(flags & GIMBAL_YAW_LOCK)


def dead_reckon(lat, lon, alt, velocity_ned, dt: float) -> tuple[float, float, float]:
    vn, ve, vd = velocity_ned
    lat2 = lat + math.degrees(vn * dt / EARTH_RADIUS)
    lon2 = lon + math.degrees(ve * dt / (EARTH_RADIUS * math.cos(math.radians(lat))))
    return lat2, lon2, alt - vd * dt


def _unit_xyzw(wxyz) -> tuple[float, ...] | None:
    """MAVLink's (w, x, y, z) as a unit (x, y, z, w), or None when it is no rotation."""
    w, x, y, z = (float(c) for c in wxyz)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(norm) or abs(norm - 1.0) > 0.1:
        return None
    return x / norm, y / norm, z / norm, w / norm


def _blend(values: np.ndarray, at: Bracket) -> np.ndarray:
    return values[at.i] + at.weight * (values[at.j] - values[at.i])


def _slerp(series: Series, at: Bracket) -> Rotation:
    quaternions = series.values[:, :4]
    if at.i == at.j or at.weight == 0.0:
        return Rotation.from_quat(quaternions[at.i])
    ends = Rotation.from_quat(quaternions[[at.i, at.j]])
    return Slerp([0.0, 1.0], ends)([at.weight])[0]


def _dop(value: int) -> float:
    return value * 0.01 if value != UINT16_MAX else NO_VALUE


def _text(chars) -> str:
    return bytes(chars).split(b"\0", 1)[0].decode("utf-8", errors="replace")
