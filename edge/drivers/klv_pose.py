"""A KLV record as the camera pose `edge.georef` uses, and that pose at any frame's time.

ST 0601 states the sensor's pointing against the airframe: azimuth, then
elevation, then roll, applied after the platform's heading, pitch and roll.
That is `edge.georef`'s "body" gimbal frame exactly (vehicle ZYX, then gimbal
ZYX). EG 0104's pointing is against north and the horizon: the "earth" frame.
The camera's intrinsics come from the fields of view and the frame's size.

A packet that lacks what a pose needs (position, height, heading, the
sensor's azimuth and elevation) gives none: LookupError names what is
missing. Pitch, roll and the sensor's roll, when missing, are taken as zero:
encoders leave them out when they are.

`PoseSeries` keeps the stream's recent records and interpolates between the
two around a frame's time (angles the short way round), as long as they are
no further apart than `max_gap_s`; a frame before the first or after the last
record gets the nearest within `max_extrapolate_s`.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass, replace

from edge.drivers.klv_metadata import KlvRecord
from edge.georef import OK, Camera, ErrorBudget, Georeferencer, Pose
from wire.geo import EnuFrame

# A gimballed turret on a tactical or MALE aircraft with a navigation-grade INS: tighter
# attitude than a small drone's autopilot, and the KLV's own quantisation is far below.
KLV_ERROR_BUDGET = ErrorBudget(tilt=math.radians(0.2), heading=math.radians(0.5),
                               gimbal=math.radians(0.3), pixel=2.0, altitude=5.0,
                               gnss_horizontal=3.0, time_sync=0.04)  # fmt: skip
ANGLES = ("platform_heading", "platform_pitch", "platform_roll", "rel_azimuth",
          "rel_elevation", "rel_roll")  # fmt: skip


def camera_pose(record: KlvRecord) -> Pose:
    """The georeferencing pose of `record`; LookupError if it lacks a needed field."""
    needed = {"sensor_lat": record.sensor_lat, "sensor_lon": record.sensor_lon,
              "sensor_alt_hae": record.sensor_alt_hae,
              "platform_heading": record.platform_heading}  # fmt: skip
    if record.pointing_frame == "earth":
        needed["earth_pointing"] = record.earth_pointing
    else:
        needed |= {"rel_azimuth": record.rel_azimuth, "rel_elevation": record.rel_elevation}
    missing = [name for name, value in needed.items() if value is None]
    if missing:
        raise LookupError(f"KLV record lacks {', '.join(missing)}")
    if record.pointing_frame == "earth":
        azimuth, elevation, roll = record.earth_pointing
    else:
        azimuth, elevation, roll = record.rel_azimuth, record.rel_elevation, record.rel_roll or 0.0
    north, east = record.velocity_ne or (0.0, 0.0)
    rad = math.radians
    return Pose(record.sensor_lat, record.sensor_lon, record.sensor_alt_hae,
                rad(record.platform_roll or 0.0), rad(record.platform_pitch or 0.0),
                rad(record.platform_heading), rad(roll), rad(elevation), rad(azimuth),
                record.pointing_frame, (north, east, 0.0))  # fmt: skip


def camera_model(record: KlvRecord, width: int, height: int) -> Camera:
    """A pinhole of the frame's size with the record's fields of view (square pixels when
    it states only the horizontal one). LookupError without a usable horizontal field."""
    hfov = record.hfov
    if hfov is None or not 0.0 < hfov < 180.0:
        raise LookupError(f"KLV record has no usable horizontal field of view ({hfov})")
    fx = width / 2.0 / math.tan(math.radians(hfov) / 2.0)
    fy = fx
    if record.vfov is not None and 0.0 < record.vfov < 180.0:
        fy = height / 2.0 / math.tan(math.radians(record.vfov) / 2.0)
    return Camera(width, height, fx, fy, width / 2.0, height / 2.0)


@dataclass(frozen=True)
class GroundPoint:
    lat: float
    lon: float
    alt_hae: float
    covariance_enu_m2: tuple[tuple[float, float], tuple[float, float]]


def georeferenced_centre(record: KlvRecord, width: int, height: int,
                         budget: ErrorBudget = KLV_ERROR_BUDGET) -> GroundPoint | None:  # fmt: skip
    """Where our georeferencing puts the image centre, on the ground at the packet's
    frame-centre height; its covariance in the ENU axes there. None where the record
    lacks the pose or that height, or the centre ray misses the ground."""
    ground = record.frame_centre[2]
    if ground is None:
        return None
    try:
        pose = camera_pose(record)
        camera = camera_model(record, width, height)
    except LookupError:
        return None
    frame = EnuFrame(record.sensor_lat, record.sensor_lon, ground)
    georeferencer = Georeferencer(camera, frame, ground, budget)
    measured = georeferencer.locate(pose, [width / 2.0], [height / 2.0])
    if measured.status[0] != OK:
        return None
    lat, lon, alt = georeferencer.to_geodetic(measured)[0]
    (ee, en), (ne, nn) = measured.R[0].tolist()
    return GroundPoint(float(lat), float(lon), float(alt), ((ee, en), (ne, nn)))


class PoseSeries:
    """The recent records of one stream by time; `pose_at(t)` for the node's frames."""

    def __init__(self, max_records: int = 900, max_gap_s: float = 1.0,
                 max_extrapolate_s: float = 0.25):  # fmt: skip
        self.max_gap_s = max_gap_s
        self.max_extrapolate_s = max_extrapolate_s
        self._times: deque[float] = deque(maxlen=max_records)
        self._records: deque[KlvRecord] = deque(maxlen=max_records)
        self._lock = threading.Lock()

    def add(self, record: KlvRecord) -> bool:
        """Keep a record with a time and a pose; False (not kept) otherwise, or when it
        is older than the newest kept (a stream that jumped back starts over)."""
        if record.time is None or not math.isfinite(record.time):
            return False
        try:
            camera_pose(record)
        except LookupError:
            return False
        with self._lock:
            if self._times and record.time <= self._times[-1]:
                if record.time == self._times[-1]:
                    return False
                self._times.clear()
                self._records.clear()
            self._times.append(record.time)
            self._records.append(record)
        return True

    def __len__(self) -> int:
        return len(self._times)

    def record_at(self, t: float) -> KlvRecord:
        """The record at time t: interpolated, or the nearest close enough; LookupError."""
        with self._lock:
            times, records = list(self._times), list(self._records)
        if not times:
            raise LookupError("no KLV metadata yet")
        k = bisect.bisect_left(times, t)
        if k < len(times) and times[k] == t:
            return records[k]
        if 0 < k < len(times) and times[k] - times[k - 1] <= self.max_gap_s:
            weight = (t - times[k - 1]) / (times[k] - times[k - 1])
            return interpolate(records[k - 1], records[k], weight, t)
        nearest = min((j for j in (k - 1, k) if 0 <= j < len(times)),
                      key=lambda j: abs(times[j] - t))  # fmt: skip
        if abs(times[nearest] - t) <= self.max_extrapolate_s:
            return records[nearest]
        raise LookupError(f"no KLV metadata within {self.max_extrapolate_s} s of {t:.3f}")

    def pose_at(self, t: float) -> Pose:
        return camera_pose(self.record_at(t))


def interpolate(a: KlvRecord, b: KlvRecord, weight: float, t: float) -> KlvRecord:
    """The record between a and b at `weight` (0: a, 1: b); angles the short way round.
    A field either lacks, or a pointing stated in different frames, comes from the
    nearer of the two."""
    nearer = a if weight < 0.5 else b
    if a.pointing_frame != b.pointing_frame:
        return replace(nearer, time=t)
    changes = {"time": t}
    for name in ("sensor_lat", "sensor_lon", "sensor_alt_hae", "hfov", "vfov"):
        changes[name] = _mix(getattr(a, name), getattr(b, name), weight, getattr(nearer, name))
    for name in ANGLES:
        changes[name] = _mix_angle(getattr(a, name), getattr(b, name), weight,
                                   getattr(nearer, name))  # fmt: skip
    if a.earth_pointing is not None and b.earth_pointing is not None:
        changes["earth_pointing"] = tuple(_mix_angle(x, y, weight, None)
                                          for x, y in zip(a.earth_pointing, b.earth_pointing,
                                                          strict=True))  # fmt: skip
    return replace(nearer, **changes)


def _mix(x, y, weight, fallback):
    if x is None or y is None:
        return fallback
    return x + (y - x) * weight


def _mix_angle(x, y, weight, fallback):
    if x is None or y is None:
        return fallback
    step = (y - x + 180.0) % 360.0 - 180.0
    return x + step * weight
