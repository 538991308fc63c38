"""KLV packets -> one metadata record per packet, whichever standard sent it.

`KlvDecoder` sends each packet to its set's decoder by key (MISB ST 0601 or
the legacy EG 0104; other sets are counted and left) and restates what the
pose needs in one `KlvRecord`: UTC time, platform attitude, sensor position
above the ellipsoid, the sensor's pointing and fields of view, and the
packet's own frame centre and corners (kept to compare our georeferencing
with). Degrees and metres, as the standards give them; a field the packet
lacks is None.

Choices the standards leave open, made here:
- time: ST 0601's Precision Time Stamp (tag 2), corrected by its Correction
  Offset (137) and Leap Seconds (136) when the packet carries them; EG 0104's
  User Defined Time Stamp, else its Start Date-Time;
- heights: an ellipsoid height where the packet has one (tags 104, 75, 78),
  else the height above mean sea level (15, 25; EG 0104's) plus the EGM96
  undulation;
- attitude: the full-range pitch and roll (90, 91) before the short ones
  (6, 7), whose range a manoeuvre can exceed;
- corners: full (82-89) before offsets from the frame centre (26-33);
- position: ST 0601 states the sensor's position only; the platform's is
  taken to be the same;
- EG 0104's pointing is against true north and the horizon ("Angle to
  North"; "Obliquity Angle": 180 level ahead, 270 straight down, so elevation
  = 180 - obliquity), not against the airframe; its relative angles are
  derived from the platform's attitude.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from edge.drivers import klv_eg0104, klv_st0601
from edge.drivers.klv import PREDATOR_UAV_SET, UAS_DATALINK_LS, KlvPacket, key_matches
from edge.geoid import Geoid
from edge.georef import euler_zyx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KlvRecord:
    standard: str  # "ST0601" or "EG0104"
    time: float | None  # UTC s
    platform_heading: float | None  # deg from true north
    platform_pitch: float | None  # deg, nose up positive
    platform_roll: float | None  # deg, right wing down positive
    sensor_lat: float | None
    sensor_lon: float | None
    sensor_alt_hae: float | None  # m above the WGS84 ellipsoid
    rel_azimuth: float | None  # deg: the sensor against the airframe
    rel_elevation: float | None
    rel_roll: float | None
    hfov: float | None  # deg
    vfov: float | None
    frame_centre: tuple[float | None, float | None, float | None] = (None, None, None)
    corners: tuple[tuple[float, float], ...] | None = None  # four (lat, lon), as the packet says
    slant_range: float | None = None  # m
    velocity_ne: tuple[float, float] | None = None  # m/s north, east
    # How the pointing angles are stated: "body" (ST 0601: azimuth, elevation, roll
    # against the airframe) or "earth" (EG 0104: against true north and the horizon).
    pointing_frame: str = "body"
    earth_pointing: tuple[float, float, float] | None = None  # EG 0104's azimuth, elevation, roll


@dataclass
class DecoderCounters:
    packets: int = 0
    records: int = 0
    other_sets: int = 0  # keys of sets this node does not read
    st0601: klv_st0601.St0601Counters = field(default_factory=klv_st0601.St0601Counters)
    eg0104: klv_eg0104.Eg0104Counters = field(default_factory=klv_eg0104.Eg0104Counters)


class KlvDecoder:
    def __init__(self, geoid: Geoid | None = None):
        self.geoid = geoid or Geoid.find()
        self.counters = DecoderCounters()

    def decode(self, packet: KlvPacket) -> KlvRecord | None:
        """The packet's record, or None (a set not read here, or one refused; counted)."""
        self.counters.packets += 1
        record = None
        if key_matches(packet.key, UAS_DATALINK_LS):
            decoded = klv_st0601.decode(packet, self.counters.st0601)
            record = None if decoded is None else st0601_record(decoded.values, self.geoid)
        elif key_matches(packet.key, PREDATOR_UAV_SET):
            decoded = klv_eg0104.decode(packet, self.counters.eg0104)
            record = None if decoded is None else eg0104_record(decoded.values, self.geoid)
        else:
            self.counters.other_sets += 1
        if record is not None:
            self.counters.records += 1
        return record


def packet_problem(packet: KlvPacket) -> str | None:
    """Why a packet of a set read here is not sound, or None (also for other sets): the
    check a `KlvSplitter` makes before it trusts a packet's length."""
    if key_matches(packet.key, UAS_DATALINK_LS):
        return klv_st0601.problem(packet)
    if key_matches(packet.key, PREDATOR_UAV_SET):
        return klv_eg0104.problem(packet)
    return None


def st0601_record(v: dict, geoid: Geoid) -> KlvRecord:
    lat, lon = v.get("sensor_latitude"), v.get("sensor_longitude")
    centre_lat, centre_lon = v.get("frame_center_latitude"), v.get("frame_center_longitude")
    north, east = v.get("sensor_north_velocity"), v.get("sensor_east_velocity")
    return KlvRecord(
        standard=klv_st0601.STANDARD,
        time=_st0601_time(v),
        platform_heading=v.get("platform_heading"),
        platform_pitch=_first(v, "platform_pitch_full", "platform_pitch"),
        platform_roll=_first(v, "platform_roll_full", "platform_roll"),
        sensor_lat=lat,
        sensor_lon=lon,
        sensor_alt_hae=_hae(geoid, lat, lon, _first(v, "sensor_ellipsoid_height_extended",
                                                    "sensor_ellipsoid_height"),
                            v.get("sensor_true_altitude")),  # fmt: skip
        rel_azimuth=v.get("sensor_relative_azimuth"),
        rel_elevation=v.get("sensor_relative_elevation"),
        rel_roll=v.get("sensor_relative_roll"),
        hfov=v.get("sensor_hfov"),
        vfov=v.get("sensor_vfov"),
        frame_centre=(centre_lat, centre_lon,
                      _hae(geoid, centre_lat, centre_lon, v.get("frame_center_hae"),
                           v.get("frame_center_elevation"))),  # fmt: skip
        corners=_st0601_corners(v, centre_lat, centre_lon),
        slant_range=v.get("slant_range"),
        velocity_ne=None if north is None or east is None else (north, east),
    )


def _st0601_time(v: dict) -> float | None:
    stamp = v.get("precision_time_stamp")
    if stamp is None:
        return None
    return stamp + (v.get("correction_offset") or 0) / 1e6 - (v.get("leap_seconds") or 0)


def _st0601_corners(v: dict, centre_lat, centre_lon):
    full = [(v.get(f"corner_latitude_{k}"), v.get(f"corner_longitude_{k}")) for k in range(1, 5)]
    if all(lat is not None and lon is not None for lat, lon in full):
        return tuple(full)
    if centre_lat is None or centre_lon is None:
        return None
    offsets = [(v.get(f"offset_corner_latitude_{k}"), v.get(f"offset_corner_longitude_{k}"))
               for k in range(1, 5)]  # fmt: skip
    if all(lat is not None and lon is not None for lat, lon in offsets):
        return tuple((centre_lat + dlat, centre_lon + dlon) for dlat, dlon in offsets)
    return None


def eg0104_record(v: dict, geoid: Geoid) -> KlvRecord:
    lat, lon = v.get("device_latitude"), v.get("device_longitude")
    heading, pitch, roll = (v.get(f"platform_{n}") for n in ("heading", "pitch", "roll"))
    centre_lat, centre_lon = v.get("frame_center_latitude"), v.get("frame_center_longitude")
    azimuth, obliquity = v.get("angle_to_north"), v.get("obliquity_angle")
    earth = None
    if azimuth is not None and obliquity is not None:
        elevation = (180.0 - obliquity + 180.0) % 360.0 - 180.0
        earth = (azimuth % 360.0, elevation, v.get("sensor_relative_roll") or 0.0)
    relative = _relative_pointing(earth, heading, pitch, roll)
    corners = [(v.get(f"corner_latitude_{k}"), v.get(f"corner_longitude_{k}")) for k in range(1, 5)]
    return KlvRecord(
        standard=klv_eg0104.STANDARD,
        time=_first(v, "user_defined_time_stamp", "start_datetime"),
        platform_heading=heading,
        platform_pitch=pitch,
        platform_roll=roll,
        sensor_lat=lat,
        sensor_lon=lon,
        sensor_alt_hae=_hae(geoid, lat, lon, None, v.get("device_altitude")),
        rel_azimuth=relative[0],
        rel_elevation=relative[1],
        rel_roll=relative[2],
        hfov=v.get("horizontal_fov"),
        vfov=v.get("vertical_fov"),
        frame_centre=(centre_lat, centre_lon,
                      _hae(geoid, centre_lat, centre_lon, None,
                           v.get("frame_center_elevation"))),  # fmt: skip
        corners=(tuple(corners) if all(a is not None and b is not None for a, b in corners)
                 else None),  # fmt: skip
        slant_range=v.get("slant_range"),
        pointing_frame="earth",
        earth_pointing=earth,
    )


def _relative_pointing(earth, heading, pitch, roll):
    """(azimuth, elevation, roll) deg against the airframe of an earth-frame pointing."""
    if earth is None or heading is None:
        return None, None, None
    body = euler_zyx(*(math.radians(a or 0.0) for a in (roll, pitch, heading)))
    camera = euler_zyx(math.radians(earth[2]), math.radians(earth[1]), math.radians(earth[0]))
    r = body.T @ camera
    azimuth = math.degrees(math.atan2(r[1, 0], r[0, 0])) % 360.0
    elevation = math.degrees(math.asin(float(np.clip(-r[2, 0], -1.0, 1.0))))
    rel_roll = math.degrees(math.atan2(r[2, 1], r[2, 2])) % 360.0
    return azimuth, elevation, rel_roll


def _first(values: dict, *names: str):
    for name in names:
        if values.get(name) is not None:
            return values[name]
    return None


def _hae(geoid: Geoid, lat, lon, ellipsoid_height, msl_height) -> float | None:
    if ellipsoid_height is not None:
        return float(ellipsoid_height)
    if msl_height is None or lat is None or lon is None:
        return None
    return float(geoid.ellipsoid_height(lat, lon, msl_height))
