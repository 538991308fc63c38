"""Cursor-on-Target events for our own drones and what their cameras cover.

Drone events
    uid    ``<prefix>-drone-<site>-<node>-<system id>``: one marker per drone for its life.
    type   ``a-f-A-M-F-Q``: a friendly air track; in the CoT type tree's MIL-STD-2525
           branch, M-F-Q under air is the military drone (RPV/UAV): TAK's UAV symbol.
    how    ``m-g``: machine generated from the drone's GNSS fix.
    time, start   the fix's time; stale ``max(time, now) + stale_s`` while it reports.
    point  lat, lon, hae (the drone's altitude above the ellipsoid); ce and le unknown
           (the autopilot does not send its fix's error in what the node relays).
    detail contact callsign ``SITE/NODE drone SYSID`` (two posts' drone 1 apart),
           track course/speed over ground, status battery (percent) when known,
           remarks with the link state.

Footprint events
    What a camera sees on the ground as a drawn free-form shape (``u-d-f``, TAK's type
    for a shape of linked points): the four corners as ``link point`` elements, the first
    again at the end to close it; the event's point is their centre. A footprint with a
    corner above the horizon has no closed shape on the ground and is not sent
    (`footprint_event` gives None); TAK drops the last one drawn when it goes stale.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from hq.tak.cot import UNKNOWN_ERROR, _event, _point, course_speed
from wire.messages import CameraFootprint, VehicleTelemetry

DRONE_TYPE = "a-f-A-M-F-Q"
FOOTPRINT_TYPE = "u-d-f"
HOW_GNSS = "m-g"
# Colours as TAK writes them: ARGB as one signed 32-bit integer.
FOOTPRINT_STROKE = 0xFF00FFFF - 2**32  # opaque cyan
FOOTPRINT_FILL = 0x3300B0FF  # cyan at a fifth: the ground stays visible under it


def drone_uid(telemetry: VehicleTelemetry, uid_prefix: str = "dunewatch") -> str:
    return f"{uid_prefix}-drone-{telemetry.site}-{telemetry.node}-{telemetry.sysid}"


def drone_callsign(telemetry: VehicleTelemetry) -> str:
    return f"{telemetry.site}/{telemetry.node} drone {telemetry.sysid}"


def drone_event(telemetry: VehicleTelemetry, now: float, stale_s: float,
                uid_prefix: str = "dunewatch") -> ET.Element:  # fmt: skip
    """The drone as a friendly UAV; stale at once when `stale_s` is 0 (a removal)."""
    _check(telemetry)
    stale = max(telemetry.time, now) + stale_s
    event = _event(drone_uid(telemetry, uid_prefix), DRONE_TYPE, HOW_GNSS, telemetry.time, stale)
    _point(event, telemetry.lat, telemetry.lon, telemetry.alt, UNKNOWN_ERROR, UNKNOWN_ERROR)
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", callsign=drone_callsign(telemetry))
    course, speed = course_speed(*telemetry.velocity_enu[:2])
    ET.SubElement(detail, "track", course=f"{course:.1f}", speed=f"{speed:.2f}")
    if telemetry.battery_remaining is not None:
        ET.SubElement(detail, "status", battery=f"{round(telemetry.battery_remaining * 100)}")
    link = {None: "unknown", True: "ok", False: "lost"}[telemetry.link_connected]
    ET.SubElement(detail, "remarks").text = f"link {link}"
    return event


def footprint_uid(telemetry: VehicleTelemetry, footprint: CameraFootprint,
                  uid_prefix: str = "dunewatch") -> str:  # fmt: skip
    return f"{drone_uid(telemetry, uid_prefix)}-footprint-{footprint.camera}"


def footprint_event(telemetry: VehicleTelemetry, footprint: CameraFootprint, now: float,
                    stale_s: float, uid_prefix: str = "dunewatch",
                    ) -> ET.Element | None:  # fmt: skip
    """The camera's ground footprint as a closed shape; None when a corner is in the sky."""
    _check(telemetry)
    if any(corner is None for corner in footprint.corners):
        return None
    lons, lats = zip(*footprint.corners, strict=True)
    stale = max(telemetry.time, now) + stale_s
    # Machine made from the drone's GNSS fix and the camera model, as the drone's own event.
    event = _event(footprint_uid(telemetry, footprint, uid_prefix), FOOTPRINT_TYPE, HOW_GNSS,
                   telemetry.time, stale)  # fmt: skip
    _point(event, sum(lats) / 4, sum(lons) / 4, telemetry.alt, UNKNOWN_ERROR, UNKNOWN_ERROR)
    detail = ET.SubElement(event, "detail")
    for lon, lat in (*footprint.corners, footprint.corners[0]):
        ET.SubElement(detail, "link", point=f"{lat:.7f},{lon:.7f}")
    ET.SubElement(detail, "contact",
                  callsign=f"{drone_callsign(telemetry)} {footprint.camera}")  # fmt: skip
    ET.SubElement(detail, "strokeColor", value=str(FOOTPRINT_STROKE))
    ET.SubElement(detail, "strokeWeight", value="2.0")
    ET.SubElement(detail, "fillColor", value=str(FOOTPRINT_FILL))
    ET.SubElement(detail, "labels_on", value="false")
    return event


def _check(telemetry: VehicleTelemetry) -> None:
    values = (telemetry.time, telemetry.lat, telemetry.lon, telemetry.alt,
              *telemetry.velocity_enu)  # fmt: skip
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"drone {drone_callsign(telemetry)} has a NaN or infinite value")
