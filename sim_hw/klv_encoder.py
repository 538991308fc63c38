"""MISB ST 0601 packets as an aircraft's encoder writes them, from a simulated camera pose.

The simulator's drone reports its attitude and its gimbal's angles against
local level and north (MAVLink's way); ST 0601 wants the gimbal against the
airframe: the relative azimuth, elevation and roll are the ZYX angles of
(airframe rotation)^T (gimbal rotation). Heights go out above the ellipsoid
(tags 75, 78 and 104): the simulator's world has no geoid. The frame centre
and corners are the ground points of the image centre and corners, as an
encoder with a terrain model states them.

Written from the standard, sharing nothing with the edge's decoder, so the
one tests the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.spatial.transform import Rotation

UAS_LS_KEY = bytes.fromhex("060e2b34020b01010e01030101000000")
VERSION = 19


@dataclass(frozen=True)
class SensorState:
    """What the packet states, in degrees, metres, m/s and UTC seconds."""

    time: float
    lat: float
    lon: float
    alt_hae: float
    heading: float
    pitch: float
    roll: float
    rel_azimuth: float
    rel_elevation: float
    rel_roll: float
    hfov: float
    vfov: float
    velocity_ne: tuple[float, float] = (0.0, 0.0)
    frame_centre: tuple[float, float, float] | None = None  # lat, lon, height (ellipsoid)
    corners: tuple[tuple[float, float], ...] | None = None  # four (lat, lon), clockwise from UL
    slant_range: float | None = None
    mission: str = "DUNEWATCH-SIM"
    tail: str = ""


def relative_pointing(roll, pitch, yaw, gimbal_roll, gimbal_pitch, gimbal_yaw):
    """(azimuth, elevation, roll) deg of a gimbal pointing (rad, against level and north)
    relative to an airframe whose attitude is (roll, pitch, yaw) rad."""
    airframe = Rotation.from_euler("ZYX", [yaw, pitch, roll])
    gimbal = Rotation.from_euler("ZYX", [gimbal_yaw, gimbal_pitch, gimbal_roll])
    azimuth, elevation, rel_roll = (airframe.inv() * gimbal).as_euler("ZYX", degrees=True)
    return azimuth % 360.0, elevation, rel_roll % 360.0


def encode_packet(state: SensorState) -> bytes:
    """One UAS Datalink LS packet, checksum last."""
    items = [
        (2, round(state.time * 1e6).to_bytes(8, "big")),
        (3, state.mission.encode()),
        (5, _unsigned(state.heading % 360.0, 2, 0.0, 360.0)),
        (6, _signed(state.pitch, 2, 20.0)),
        (7, _signed(state.roll, 2, 50.0)),
        (11, b"EO"),
        (12, b"Geodetic WGS84"),
        (13, _signed(state.lat, 4, 90.0)),
        (14, _signed(state.lon, 4, 180.0)),
        (16, _unsigned(state.hfov, 2, 0.0, 180.0)),
        (17, _unsigned(state.vfov, 2, 0.0, 180.0)),
        (18, _unsigned(state.rel_azimuth % 360.0, 4, 0.0, 360.0)),
        (19, _signed(state.rel_elevation, 4, 180.0)),
        (20, _unsigned(state.rel_roll % 360.0, 4, 0.0, 360.0)),
        (65, bytes([VERSION])),
        (75, _unsigned(state.alt_hae, 2, -900.0, 19000.0)),
        (79, _signed(state.velocity_ne[0], 2, 327.0)),
        (80, _signed(state.velocity_ne[1], 2, 327.0)),
        (90, _signed(state.pitch, 4, 90.0)),
        (91, _signed(state.roll, 4, 90.0)),
        (104, _imapb(state.alt_hae, 4, -900.0, 40000.0)),
    ]
    if state.tail:
        items.append((4, state.tail.encode()))
    if state.slant_range is not None:
        items.append((21, _unsigned(state.slant_range, 4, 0.0, 5_000_000.0)))
    if state.frame_centre is not None:
        lat, lon, height = state.frame_centre
        items += [(23, _signed(lat, 4, 90.0)), (24, _signed(lon, 4, 180.0)),
                  (78, _unsigned(height, 2, -900.0, 19000.0))]  # fmt: skip
        if state.corners is not None:
            for k, (corner_lat, corner_lon) in enumerate(state.corners):
                items += [(82 + 2 * k, _signed(corner_lat, 4, 90.0)),
                          (83 + 2 * k, _signed(corner_lon, 4, 180.0))]  # fmt: skip
                offsets = (corner_lat - lat, corner_lon - lon)
                if all(abs(o) <= 0.075 for o in offsets):
                    items += [(26 + 2 * k, _signed(offsets[0], 2, 0.075)),
                              (27 + 2 * k, _signed(offsets[1], 2, 0.075))]  # fmt: skip
    body = b"".join(_tag(tag) + _length(len(value)) + value for tag, value in items)
    body += b"\x01\x02"  # the checksum item's tag and length are summed too
    head = UAS_LS_KEY + _length(len(body) + 2)
    return head + body + checksum(head + body).to_bytes(2, "big")


def checksum(data: bytes) -> int:
    total = 0
    for index, octet in enumerate(data):
        total += octet << 8 if index % 2 == 0 else octet
    return total & 0xFFFF


def _unsigned(value: float, length: int, low: float, high: float) -> bytes:
    steps = (1 << (8 * length)) - 1
    value = min(max(value, low), high)
    return round((value - low) / (high - low) * steps).to_bytes(length, "big")


def _signed(value: float, length: int, bound: float) -> bytes:
    """Symmetric mapping; out of range -> the reserved "out of range" value."""
    steps = (1 << (8 * length)) - 2
    if not (math.isfinite(value) and -bound <= value <= bound):
        return (1 << (8 * length - 1)).to_bytes(length, "big")
    return round(value / (2 * bound) * steps).to_bytes(length, "big", signed=True)


def _imapb(value: float, length: int, low: float, high: float) -> bytes:
    b_pow = math.ceil(math.log2(high - low))
    scale = 2.0 ** (8 * length - 1 - b_pow)
    offset = scale * low - math.floor(scale * low) if low < 0 < high else 0.0
    return int(scale * (min(max(value, low), high) - low) + offset).to_bytes(length, "big")


def _tag(tag: int) -> bytes:
    out = [tag & 0x7F]
    tag >>= 7
    while tag:
        out.insert(0, 0x80 | (tag & 0x7F))
        tag >>= 7
    return bytes(out)


def _length(length: int) -> bytes:
    if length < 128:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body
