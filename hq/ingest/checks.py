"""What a post's message must be physically to be taken in, beyond its schema.

The wire models (wire/messages.py) say what a message looks like; these
checks say what it may claim: finite numbers only (JSON parsers read `NaN`
and `Infinity`), times within [received - max age, received + max skew]
(posts' clocks drift, and one time far ahead would make every other track
look stale), positions within `post_radius_m` of the post that saw them and
posts (and the alerts they send) within `region_radius_m` of HQ's origin, speeds
and heights a target or drone can have, and covariances that are covariances (symmetric, positive
semi-definite). A message that fails is refused whole with `OutOfBounds`,
whose `kind` says what is counted: "stale", "future" or "out_of_bounds".

TrackBatch checks run over all of a batch's tracks at once (numpy).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from hq.config import IngestSection
from wire.messages import Alert, NodeStatus, TrackBatch, VehicleTelemetry

EARTH_RADIUS_M = 6_371_008.8
MAX_SPEED_MPS = 1_000.0  # faster than anything a post tracks, aircraft included
ALT_RANGE_M = (-1_000.0, 30_000.0)  # below the Dead Sea shore to above any drone's ceiling
# Relative slack for round-off in a filter's covariance (its asymmetry, a tiny negative
# eigenvalue of a nearly singular one).
COVARIANCE_TOLERANCE = 1e-6
Kind = Literal["stale", "future", "out_of_bounds"]


class OutOfBounds(ValueError):
    def __init__(self, kind: Kind, reason: str):
        super().__init__(reason)
        self.kind = kind


class MessageBounds:
    """The checks of hq.toml's [ingest], around `region` (lat, lon) when one is given."""

    def __init__(self, limits: IngestSection, region: tuple[float, float] | None = None):
        self.limits = limits
        self.region = region

    def check(self, message, received: float) -> None:
        """Raise OutOfBounds when `message`, received at `received` (UTC s), claims what it
        cannot be."""
        if isinstance(message, TrackBatch):
            self._batch(message, received)
        elif isinstance(message, NodeStatus):
            self._times(received, "status time", [message.time])
            self._times(received, "heartbeat", [d.last_heartbeat for d in message.drones
                                                if d.last_heartbeat is not None])  # fmt: skip
            self._in_region("post", message.lat, message.lon)
            for drone in message.drones:  # a drone may fly far (a recorded flight replayed)
                self._finite(f"drone {drone.sysid} altitude", [drone.alt or 0.0])
        elif isinstance(message, VehicleTelemetry):
            self._times(received, "telemetry time", [message.time])
            self._finite("telemetry", [message.alt, message.heading_deg, *message.velocity_enu])
            self._between("drone altitude", np.array([message.alt]), *ALT_RANGE_M)
            self._between("drone speed", np.array([math.hypot(*message.velocity_enu)]), 0.0,
                          MAX_SPEED_MPS)  # fmt: skip
        elif isinstance(message, Alert):
            self._times(received, "alert time", [message.time])
            self._in_region("alert", message.lat, message.lon)

    # -- a TrackBatch -----------------------------------------------------------------------

    def _batch(self, batch: TrackBatch, received: float) -> None:
        lat0, lon0, alt0 = batch.frame_origin
        self._finite("frame origin altitude", [alt0])
        self._in_region("the post's frame origin", lat0, lon0)
        self._times(received, "batch sent time", [batch.sent])
        tracks = batch.tracks
        if not tracks:
            return
        # Every number of every track in one pass: (n, 16) columns.
        columns = np.array([(t.time, t.lat, t.lon, t.alt, *t.position_enu, *t.velocity_enu,
                             *t.position_covariance[0], *t.position_covariance[1],
                             *t.velocity_covariance[0], *t.velocity_covariance[1])
                            for t in tracks], dtype=float)  # fmt: skip
        measured = [t.last_measured for t in tracks if t.last_measured is not None]
        self._times(received, "track time", [*columns[:, 0].tolist(), *measured])
        self._finite("track", columns)
        lat, lon, alt, enu, velocity = (columns[:, 1], columns[:, 2], columns[:, 3],
                                        columns[:, 4:6], columns[:, 6:8])  # fmt: skip
        radius = self.limits.post_radius_m
        self._between("track distance from its post", _distance_m(lat0, lon0, lat, lon), 0.0,
                      radius)  # fmt: skip
        self._between("track ENU distance from its post", np.hypot(*enu.T), 0.0, radius)
        self._between("track altitude", alt, *ALT_RANGE_M)
        self._between("track speed", np.hypot(*velocity.T), 0.0, MAX_SPEED_MPS)
        _covariances("position covariance", columns[:, 8:12].reshape(-1, 2, 2))
        _covariances("velocity covariance", columns[:, 12:16].reshape(-1, 2, 2))
        full = [t.state_covariance for t in tracks if t.state_covariance is not None]
        if full:
            _covariances("state covariance", full)

    # -- the pieces ---------------------------------------------------------------------------

    def _times(self, received: float, what: str, times: list[float]) -> None:
        if not times:
            return
        values = np.asarray(times, dtype=float)
        self._finite(what, values)
        newest, oldest = float(values.max()), float(values.min())
        if newest > received + self.limits.max_skew_s:
            raise OutOfBounds("future", f"{what} {newest!r} is {newest - received:.3g} s ahead "
                                        f"of HQ's clock (at most {self.limits.max_skew_s:g} s)")
        if oldest < received - self.limits.max_age_s:
            raise OutOfBounds("stale", f"{what} {oldest!r} is {received - oldest:.3g} s old "
                                       f"(at most {self.limits.max_age_s:g} s)")  # fmt: skip

    def _in_region(self, what: str, lat: float | None, lon: float | None) -> None:
        if lat is None or lon is None or self.region is None:
            return
        distance = float(_distance_m(*self.region, np.array([lat]), np.array([lon]))[0])
        if distance > self.limits.region_radius_m:
            raise OutOfBounds("out_of_bounds",
                              f"{what} at ({lat}, {lon}) is {distance / 1000:.0f} km from HQ's "
                              f"region (at most {self.limits.region_radius_m / 1000:g} km)")

    @staticmethod
    def _finite(what: str, values) -> None:
        if not np.isfinite(np.asarray(values, dtype=float)).all():
            raise OutOfBounds("out_of_bounds", f"{what}: a number is not finite (NaN or Infinity)")

    @staticmethod
    def _between(what: str, values: np.ndarray, low: float, high: float) -> None:
        outside = (values < low) | (values > high)
        if outside.any():
            raise OutOfBounds("out_of_bounds", f"{what} {float(values[outside][0]):.6g} is outside "
                                        f"[{low:g}, {high:g}]")  # fmt: skip


def _distance_m(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Great-circle distances (haversine on the mean sphere): within 0.5 % of the ellipsoid's,
    plenty for a bound."""
    p0, p = math.radians(lat0), np.radians(lat)
    dlat, dlon = p - p0, np.radians(lon - lon0)
    h = np.sin(dlat / 2) ** 2 + math.cos(p0) * np.cos(p) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _covariances(what: str, matrices) -> None:
    """Refuse unless every matrix is finite, symmetric and positive semi-definite."""
    P = np.asarray(matrices, dtype=float)
    if not np.isfinite(P).all():
        raise OutOfBounds("out_of_bounds", f"{what}: a number is not finite (NaN or Infinity)")
    scale = np.abs(P).max(axis=(1, 2))
    slack = COVARIANCE_TOLERANCE * scale + 1e-12
    asymmetry = np.abs(P - P.transpose(0, 2, 1)).max(axis=(1, 2))
    if (asymmetry > slack).any():
        which = int(np.argmax(asymmetry > slack))
        raise OutOfBounds("out_of_bounds", f"{what} of track {which} is not symmetric")
    lowest = _lowest_eigenvalues((P + P.transpose(0, 2, 1)) / 2)
    if (lowest < -slack).any():
        which = int(np.argmax(lowest < -slack))
        raise OutOfBounds("out_of_bounds", f"{what} of track {which} is not positive semi-definite "
                                    f"(an eigenvalue of {lowest[which]:.3g})")  # fmt: skip


def _lowest_eigenvalues(P: np.ndarray) -> np.ndarray:
    """The lowest eigenvalue of each symmetric matrix; 2x2 in closed form (most of them)."""
    if P.shape[1:] != (2, 2):
        return np.linalg.eigvalsh(P)[:, 0]
    a, b, d = P[:, 0, 0], P[:, 0, 1], P[:, 1, 1]
    return (a + d) / 2 - np.hypot((a - d) / 2, b)
