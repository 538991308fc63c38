"""MISB EG 0104 (the Predator UAV Basic Universal Metadata Set): the legacy set, read.

A universal set: each item is a 16-byte SMPTE dictionary key, a BER length and
a value; numbers are IEEE floats (4 or 8 octets, whichever the encoder
chose), heights are above mean sea level, times a microsecond count or a
"YYYYMMDDThhmmss" string. Items are recognised by octets 9-16 of their key:
encoders vary the registry and version octets in front.

The set has no checksum; an item that runs past the end refuses the whole
packet (`malformed`), an item of an unexpected size is skipped (`bad_items`).
"""

from __future__ import annotations

import calendar
import logging
import struct
import time
from dataclasses import dataclass

from edge.drivers.klv import KEY_LENGTH, UL_PREFIX, KlvError, KlvPacket, ber_length

log = logging.getLogger(__name__)

STANDARD = "EG0104"

# Octets 9-16 of each item's key -> (name, kind).
ITEMS: dict[bytes, tuple[str, str]] = {
    bytes.fromhex(key): item
    for key, item in {
        "0702010101050000": ("user_defined_time_stamp", "microseconds"),
        "0702010201010000": ("start_datetime", "datetime"),
        "0702010207010000": ("event_start_datetime", "datetime"),
        "0105050000000000": ("episode_number", "text"),
        "0101200100000000": ("device_designation", "text"),
        "0420010201010000": ("image_source_device", "text"),
        "0701010100000000": ("image_coordinate_system", "text"),
        "0701100106000000": ("platform_heading", "float"),
        "0701100105000000": ("platform_pitch", "float"),
        "0701100104000000": ("platform_roll", "float"),
        "0701020102040200": ("device_latitude", "float"),
        "0701020102060200": ("device_longitude", "float"),
        "0701020102020000": ("device_altitude", "float"),  # above mean sea level
        "0420020101080000": ("horizontal_fov", "float"),
        "04200201010a0100": ("vertical_fov", "float"),
        "0701080101000000": ("slant_range", "float"),
        "0701090201000000": ("target_width", "float"),
        "0701020103020000": ("frame_center_latitude", "float"),
        "0701020103040000": ("frame_center_longitude", "float"),
        "0701020103160000": ("frame_center_elevation", "float"),  # above mean sea level
        "0701020103070100": ("corner_latitude_1", "float"),
        "0701020103080100": ("corner_latitude_2", "float"),
        "0701020103090100": ("corner_latitude_3", "float"),
        "07010201030a0100": ("corner_latitude_4", "float"),
        "07010201030b0100": ("corner_longitude_1", "float"),
        "07010201030c0100": ("corner_longitude_2", "float"),
        "07010201030d0100": ("corner_longitude_3", "float"),
        "07010201030e0100": ("corner_longitude_4", "float"),
        "0701100101000000": ("sensor_roll_angle", "float"),
        "0701100102000000": ("angle_to_north", "float"),
        "0701100103000000": ("obliquity_angle", "float"),
        "0e01010206000000": ("sensor_relative_roll", "float"),
        "0e0101010a000000": ("platform_true_airspeed", "float"),
        "0e0101010b000000": ("platform_indicated_airspeed", "float"),
        "0e0101010d000000": ("wind_direction", "float"),
        "0e0101010e000000": ("wind_speed", "float"),
        "0e01040101000000": ("platform_call_sign", "text"),
        "0e01040102000000": ("platform_tail_number", "text"),
        "0e01040103000000": ("mission_id", "text"),
        "0e01020202000000": ("fov_name", "text"),
        "0e01030302000000": ("security_local_set", "skip"),  # ST 0102, nested
    }.items()
}


@dataclass
class Eg0104Counters:
    packets: int = 0
    decoded: int = 0
    malformed: int = 0
    bad_items: int = 0
    unknown_keys: int = 0


@dataclass(frozen=True)
class Eg0104Set:
    values: dict[str, object]
    unknown: dict[bytes, bytes]  # key -> value of items not in ITEMS


def problem(packet: KlvPacket) -> str | None:
    """"malformed" when the set's items do not parse, else None (the set has no checksum)."""
    try:
        _items(packet.value)
    except KlvError:
        return "malformed"
    return None


def decode(packet: KlvPacket, counters: Eg0104Counters) -> Eg0104Set | None:
    counters.packets += 1
    try:
        items = _items(packet.value)
    except KlvError as error:
        counters.malformed += 1
        log.debug("eg0104 packet malformed: %s", error)
        return None
    values: dict[str, object] = {}
    unknown: dict[bytes, bytes] = {}
    for key, data in items:
        item = ITEMS.get(key[8:]) if key[:4] == UL_PREFIX else None
        if item is None:
            counters.unknown_keys += 1
            unknown[key] = data
            continue
        name, kind = item
        try:
            value = _value(kind, data)
        except (ValueError, struct.error) as error:
            counters.bad_items += 1
            log.debug("eg0104 item skipped name=%s reason=%s", name, error)
            continue
        if value is not None:
            values[name] = value
    counters.decoded += 1
    return Eg0104Set(values, unknown)


def _items(value: bytes) -> list[tuple[bytes, bytes]]:
    items = []
    pos = 0
    while pos < len(value):
        if len(value) - pos < KEY_LENGTH:
            raise KlvError(f"{len(value) - pos} stray octets at the end")
        key = value[pos : pos + KEY_LENGTH]
        length, start = ber_length(value, pos + KEY_LENGTH)
        end = start + length
        if end > len(value):
            raise KlvError(f"item {key.hex()} claims {length} octets, {len(value) - start} left")
        items.append((key, value[start:end]))
        pos = end
    return items


def _value(kind: str, data: bytes):
    if kind == "float":
        if len(data) == 4:
            return struct.unpack(">f", data)[0]
        if len(data) == 8:
            return struct.unpack(">d", data)[0]
        raise ValueError(f"a float of {len(data)} octets")
    if kind == "microseconds":
        if not 1 <= len(data) <= 8:
            raise ValueError(f"a time stamp of {len(data)} octets")
        return int.from_bytes(data, "big") / 1e6
    if kind == "datetime":
        return _datetime(data.decode("ascii").rstrip("\x00"))
    if kind == "text":
        return data.decode("utf-8", errors="replace").rstrip("\x00")
    return None  # a nested set this node does not use


def _datetime(text: str) -> float:
    """UTC seconds of "YYYYMMDDThhmmss" (the T may be missing)."""
    compact = text.replace("T", "")
    if len(compact) != 14 or not compact.isdigit():
        raise ValueError(f"date-time {text!r} is not YYYYMMDDThhmmss")
    return float(calendar.timegm(time.strptime(compact, "%Y%m%d%H%M%S")))
