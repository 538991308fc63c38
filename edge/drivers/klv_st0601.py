"""MISB ST 0601 (UAS Datalink Local Set), versions 8 to 19: items to engineering units.

Each item's mapping is the standard's: an unsigned integer of n octets maps
linearly onto [low, high] (`low + x (high - low) / (2^8n - 1)`), a signed one
onto the symmetric range (`x (high - low) / (2^8n - 2)`), its most negative
value reserved as the "error / out of range" indicator; IMAPB items
(ST 1201) map with a power-of-two scale, their values with the top bit set
being special codes (below or above the range, infinities, NaN).

Liberal in what it reads, as real encoders need:
- an integer item shorter than its nominal length is read as the integer its
  octets hold (encoders drop leading zero octets) and mapped as if full;
  longer than nominal, it is skipped and counted;
- no checksum item (tag 1) is accepted and counted (`no_checksum`); where
  there is one it must match, or the whole packet is refused (`bad_checksum`);
- unknown tags (later versions, vendors) are kept as raw bytes and counted;
- nested sets: ST 0102 security (48) and ST 0903 VMTI (74) are read for their
  headline fields, Segment (100) and Amend (101) sets as ST 0601 items; other
  nested packs stay raw bytes.
An item whose value is an error indicator or special code decodes to None and
is counted (`error_values`). A packet whose framing is broken is refused whole
(`malformed`): its items cannot be told apart from its garbage.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from edge.drivers.klv import KlvError, KlvPacket, checksum16, local_set_items

log = logging.getLogger(__name__)

STANDARD = "ST0601"
CHECKSUM_TAG = 1
VERSIONS = range(8, 20)  # ST 0601.8 .. ST 0601.19, whose items this table holds


@dataclass(frozen=True)
class Item:
    name: str
    kind: str  # mapped, uint, int, text, time, imap, security, vmti, st0601, raw
    length: int | None = None  # nominal octets of mapped, uint and int items
    low: float = 0.0
    high: float = 0.0
    signed: bool = False


def _u(name, length, low, high):
    return Item(name, "mapped", length, low, high)


def _s(name, length, bound):
    return Item(name, "mapped", length, -bound, bound, signed=True)


def _imap(name, low, high):
    return Item(name, "imap", None, low, high)


ALTITUDE = (-900.0, 19000.0)
EXTENDED_ALTITUDE = (-900.0, 40000.0)
OFFSET = 0.075  # offset corners, degrees

ITEMS: dict[int, Item] = {
    1: Item("checksum", "uint", 2),
    2: Item("precision_time_stamp", "time", 8),
    3: Item("mission_id", "text"),
    4: Item("platform_tail_number", "text"),
    5: _u("platform_heading", 2, 0.0, 360.0),
    6: _s("platform_pitch", 2, 20.0),
    7: _s("platform_roll", 2, 50.0),
    8: Item("platform_true_airspeed", "uint", 1),
    9: Item("platform_indicated_airspeed", "uint", 1),
    10: Item("platform_designation", "text"),
    11: Item("image_source_sensor", "text"),
    12: Item("image_coordinate_system", "text"),
    13: _s("sensor_latitude", 4, 90.0),
    14: _s("sensor_longitude", 4, 180.0),
    15: _u("sensor_true_altitude", 2, *ALTITUDE),
    16: _u("sensor_hfov", 2, 0.0, 180.0),
    17: _u("sensor_vfov", 2, 0.0, 180.0),
    18: _u("sensor_relative_azimuth", 4, 0.0, 360.0),
    19: _s("sensor_relative_elevation", 4, 180.0),
    20: _u("sensor_relative_roll", 4, 0.0, 360.0),
    21: _u("slant_range", 4, 0.0, 5_000_000.0),
    22: _u("target_width", 2, 0.0, 10_000.0),
    23: _s("frame_center_latitude", 4, 90.0),
    24: _s("frame_center_longitude", 4, 180.0),
    25: _u("frame_center_elevation", 2, *ALTITUDE),
    26: _s("offset_corner_latitude_1", 2, OFFSET),
    27: _s("offset_corner_longitude_1", 2, OFFSET),
    28: _s("offset_corner_latitude_2", 2, OFFSET),
    29: _s("offset_corner_longitude_2", 2, OFFSET),
    30: _s("offset_corner_latitude_3", 2, OFFSET),
    31: _s("offset_corner_longitude_3", 2, OFFSET),
    32: _s("offset_corner_latitude_4", 2, OFFSET),
    33: _s("offset_corner_longitude_4", 2, OFFSET),
    34: Item("icing_detected", "uint", 1),
    35: _u("wind_direction", 2, 0.0, 360.0),
    36: _u("wind_speed", 1, 0.0, 100.0),
    37: _u("static_pressure", 2, 0.0, 5000.0),
    38: _u("density_altitude", 2, *ALTITUDE),
    39: Item("outside_air_temperature", "int", 1),
    40: _s("target_location_latitude", 4, 90.0),
    41: _s("target_location_longitude", 4, 180.0),
    42: _u("target_location_elevation", 2, *ALTITUDE),
    43: _u("target_track_gate_width", 1, 0.0, 510.0),
    44: _u("target_track_gate_height", 1, 0.0, 510.0),
    45: _u("target_error_ce90", 2, 0.0, 4095.0),
    46: _u("target_error_le90", 2, 0.0, 4095.0),
    47: Item("generic_flag_data", "uint", 1),
    48: Item("security_local_set", "security"),
    49: _u("differential_pressure", 2, 0.0, 5000.0),
    50: _s("platform_angle_of_attack", 2, 20.0),
    51: _s("platform_vertical_speed", 2, 180.0),
    52: _s("platform_sideslip_angle", 2, 20.0),
    53: _u("airfield_barometric_pressure", 2, 0.0, 5000.0),
    54: _u("airfield_elevation", 2, *ALTITUDE),
    55: _u("relative_humidity", 1, 0.0, 100.0),
    56: Item("platform_ground_speed", "uint", 1),
    57: _u("ground_range", 4, 0.0, 5_000_000.0),
    58: _u("platform_fuel_remaining", 2, 0.0, 10_000.0),
    59: Item("platform_call_sign", "text"),
    60: Item("weapon_load", "uint", 2),
    61: Item("weapon_fired", "uint", 1),
    62: Item("laser_prf_code", "uint", 2),
    63: Item("sensor_fov_name", "uint", 1),
    64: _u("platform_magnetic_heading", 2, 0.0, 360.0),
    65: Item("version", "uint", 1),
    66: Item("target_location_covariance", "raw"),  # deprecated
    67: _s("alternate_platform_latitude", 4, 90.0),
    68: _s("alternate_platform_longitude", 4, 180.0),
    69: _u("alternate_platform_altitude", 2, *ALTITUDE),
    70: Item("alternate_platform_name", "text"),
    71: _u("alternate_platform_heading", 2, 0.0, 360.0),
    72: Item("event_start_time", "time", 8),
    73: Item("rvt_local_set", "raw"),
    74: Item("vmti_local_set", "vmti"),
    75: _u("sensor_ellipsoid_height", 2, *ALTITUDE),
    76: _u("alternate_platform_ellipsoid_height", 2, *ALTITUDE),
    77: Item("operational_mode", "uint", 1),
    78: _u("frame_center_hae", 2, *ALTITUDE),
    79: _s("sensor_north_velocity", 2, 327.0),
    80: _s("sensor_east_velocity", 2, 327.0),
    81: Item("image_horizon_pixel_pack", "raw"),
    82: _s("corner_latitude_1", 4, 90.0),
    83: _s("corner_longitude_1", 4, 180.0),
    84: _s("corner_latitude_2", 4, 90.0),
    85: _s("corner_longitude_2", 4, 180.0),
    86: _s("corner_latitude_3", 4, 90.0),
    87: _s("corner_longitude_3", 4, 180.0),
    88: _s("corner_latitude_4", 4, 90.0),
    89: _s("corner_longitude_4", 4, 180.0),
    90: _s("platform_pitch_full", 4, 90.0),
    91: _s("platform_roll_full", 4, 90.0),
    92: _s("platform_angle_of_attack_full", 4, 90.0),
    93: _s("platform_sideslip_angle_full", 4, 180.0),
    94: Item("miis_core_identifier", "raw"),
    95: Item("sar_motion_imagery_local_set", "raw"),
    96: _imap("target_width_extended", 0.0, 1_500_000.0),
    97: Item("range_image_local_set", "raw"),
    98: Item("geo_registration_local_set", "raw"),
    99: Item("composite_imaging_local_set", "raw"),
    100: Item("segment_local_set", "st0601"),
    101: Item("amend_local_set", "st0601"),
    102: Item("sdcc_flp", "raw"),
    103: _imap("density_altitude_extended", *EXTENDED_ALTITUDE),
    104: _imap("sensor_ellipsoid_height_extended", *EXTENDED_ALTITUDE),
    105: _imap("alternate_platform_ellipsoid_height_extended", *EXTENDED_ALTITUDE),
    106: Item("stream_designator", "text"),
    107: Item("operational_base", "text"),
    108: Item("broadcast_source", "text"),
    109: _imap("range_to_recovery_location", 0.0, 21_000.0),  # km
    110: Item("time_airborne", "uint", 4),
    111: Item("propulsion_unit_speed", "uint", 4),
    112: _imap("platform_course_angle", 0.0, 360.0),
    113: _imap("altitude_agl", *EXTENDED_ALTITUDE),
    114: _imap("radar_altimeter", *EXTENDED_ALTITUDE),
    115: Item("control_command", "raw"),
    116: Item("control_command_verification_list", "raw"),
    117: _imap("sensor_azimuth_rate", -1000.0, 1000.0),
    118: _imap("sensor_elevation_rate", -1000.0, 1000.0),
    119: _imap("sensor_roll_rate", -1000.0, 1000.0),
    120: _imap("onboard_mi_storage_percent_full", 0.0, 100.0),
    121: Item("active_wavelength_list", "raw"),
    122: Item("country_codes", "raw"),
    123: Item("number_of_navsats_in_view", "uint", 1),
    124: Item("positioning_method_source", "uint", 1),
    125: Item("platform_status", "uint", 1),
    126: Item("sensor_control_mode", "uint", 1),
    127: Item("sensor_frame_rate_pack", "raw"),
    128: Item("wavelengths_list", "raw"),
    129: Item("target_id", "text"),
    130: Item("airbase_locations", "raw"),
    131: Item("take_off_time", "time", 8),
    132: _imap("transmission_frequency", 1.0, 99_999.0),  # MHz
    133: Item("onboard_mi_storage_capacity", "uint", 4),
    134: _imap("zoom_percentage", 0.0, 100.0),
    135: Item("communications_method", "text"),
    136: Item("leap_seconds", "int", 4),
    137: Item("correction_offset", "int", 8),
    138: Item("payload_list", "raw"),
    139: Item("active_payloads", "raw"),
    140: Item("weapons_stores", "raw"),
    141: Item("waypoint_list", "raw"),
    142: Item("view_domain", "raw"),
    143: Item("metadata_substream_id_pack", "raw"),
}
SECURITY_CLASSES = {1: "UNCLASSIFIED", 2: "RESTRICTED", 3: "CONFIDENTIAL", 4: "SECRET",
                    5: "TOP SECRET"}  # fmt: skip
VMTI_FIELDS = {3: ("system_name", "text"), 4: ("version", "uint"),
               5: ("targets_detected", "uint"), 6: ("targets_reported", "uint"),
               7: ("frame_number", "uint"), 8: ("frame_width", "uint"),
               9: ("frame_height", "uint")}  # fmt: skip


@dataclass
class St0601Counters:
    packets: int = 0
    decoded: int = 0
    bad_checksum: int = 0  # refused
    no_checksum: int = 0  # accepted
    malformed: int = 0  # refused: framing broken
    bad_items: int = 0  # an item longer than its type, or unreadable: skipped
    error_values: int = 0  # error indicators and special codes: None
    unknown_tags: int = 0
    versions: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class St0601Set:
    values: dict[str, object]  # item name -> engineering value (None: error indicator)
    tags: tuple[int, ...]  # in packet order
    checksum_ok: bool | None  # None: the packet carries none
    unknown: dict[int, bytes]

    @property
    def version(self) -> int | None:
        return self.values.get("version")


def problem(packet: KlvPacket) -> str | None:
    """Why a UAS Datalink LS packet is not sound (its items do not parse, its checksum does
    not match), or None: what a splitter checks before it trusts the packet's length."""
    try:
        items = local_set_items(packet.value)
    except KlvError:
        return "malformed"
    return "bad_checksum" if _check_checksum(packet, items) is False else None


def decode(packet: KlvPacket, counters: St0601Counters) -> St0601Set | None:
    """A UAS Datalink LS packet's items, or None when it is refused (counted)."""
    counters.packets += 1
    try:
        items = local_set_items(packet.value)
    except KlvError as error:
        counters.malformed += 1
        log.debug("st0601 packet malformed: %s", error)
        return None
    checksum_ok = _check_checksum(packet, items)
    if checksum_ok is False:
        counters.bad_checksum += 1
        return None
    if checksum_ok is None:
        counters.no_checksum += 1
    values, unknown = decode_items(packet.value, items, counters)
    version = values.get("version")
    if isinstance(version, int):
        counters.versions[version] = counters.versions.get(version, 0) + 1
    counters.decoded += 1
    return St0601Set(values, tuple(tag for tag, _, _ in items), checksum_ok, unknown)


def _check_checksum(packet: KlvPacket, items) -> bool | None:
    """The checksum covers every byte from the key up to its own value; None if absent."""
    for tag, start, end in reversed(items):
        if tag == CHECKSUM_TAG:
            if end - start != 2:
                return False
            value_offset = len(packet.raw) - len(packet.value) + start
            stated = int.from_bytes(packet.value[start:end], "big")
            return checksum16(packet.raw[:value_offset]) == stated
    return None


def decode_items(value: bytes, items, counters: St0601Counters):
    """(name -> value, unknown tag -> bytes) of already framed items."""
    values: dict[str, object] = {}
    unknown: dict[int, bytes] = {}
    for tag, start, end in items:
        item = ITEMS.get(tag)
        data = value[start:end]
        if item is None:
            counters.unknown_tags += 1
            unknown[tag] = data
            continue
        try:
            decoded = _decode_item(item, data, counters)
        except (KlvError, ValueError) as error:
            counters.bad_items += 1
            log.debug("st0601 item skipped tag=%d reason=%s", tag, error)
            continue
        if item.kind == "st0601" and tag == 100:  # segments repeat: a list of them
            values.setdefault(item.name, []).append(decoded)
        else:
            values[item.name] = decoded
    return values, unknown


def _decode_item(item: Item, data: bytes, counters: St0601Counters):
    kind = item.kind
    if kind == "mapped":
        return _mapped(item, data, counters)
    if kind in ("uint", "time"):
        _check_length(item, data)
        number = int.from_bytes(data, "big")
        return number / 1e6 if kind == "time" else number
    if kind == "int":
        _check_length(item, data)
        return int.from_bytes(data, "big", signed=True)
    if kind == "text":
        return data.decode("utf-8", errors="replace").rstrip("\x00")
    if kind == "imap":
        return _imapb(item, data, counters)
    if kind == "security":
        return _security(data)
    if kind == "vmti":
        return _vmti(data)
    if kind == "st0601":
        return decode_items(data, local_set_items(data), counters)[0]
    return data


def _check_length(item: Item, data: bytes) -> None:
    if not data or (item.length is not None and len(data) > item.length):
        raise KlvError(f"{item.name}: {len(data)} octets, at most {item.length}")


def _mapped(item: Item, data: bytes, counters: St0601Counters) -> float | None:
    _check_length(item, data)
    bits = 8 * item.length
    if item.signed:
        raw = int.from_bytes(data, "big", signed=True)
        if len(data) == item.length and raw == -(1 << (bits - 1)):
            counters.error_values += 1
            return None
        return raw * (item.high - item.low) / ((1 << bits) - 2) + (item.high + item.low) / 2
    raw = int.from_bytes(data, "big")
    return item.low + raw * (item.high - item.low) / ((1 << bits) - 1)


def _imapb(item: Item, data: bytes, counters: St0601Counters) -> float | None:
    """ST 1201 IMAPB: the length is the value's own; a set top bit marks a special code."""
    if not 1 <= len(data) <= 8:
        raise KlvError(f"{item.name}: IMAPB of {len(data)} octets")
    if data[0] & 0x80:
        counters.error_values += 1
        return None
    binary_point = math.ceil(math.log2(item.high - item.low))
    scale = 2.0 ** (8 * len(data) - 1 - binary_point)
    offset = 0.0
    if item.low < 0 < item.high:
        scaled_low = scale * item.low
        offset = scaled_low - math.floor(scaled_low)
    return (int.from_bytes(data, "big") - offset) / scale + item.low


def _security(data: bytes) -> dict:
    """ST 0102's headline: classification, country, version; the rest stays unread."""
    result: dict[str, object] = {}
    for tag, start, end in local_set_items(data):
        value = data[start:end]
        if tag == 1 and len(value) == 1:
            result["classification"] = SECURITY_CLASSES.get(value[0], f"code {value[0]}")
        elif tag == 3:
            result["classifying_country"] = value.decode("ascii", errors="replace")
        elif tag == 22:
            result["version"] = int.from_bytes(value, "big")
    return result


def _vmti(data: bytes) -> dict:
    """ST 0903's headline: system, version, target counts, frame number and size."""
    result: dict[str, object] = {}
    for tag, start, end in local_set_items(data):
        if tag in VMTI_FIELDS and end > start:
            name, kind = VMTI_FIELDS[tag]
            value = data[start:end]
            result[name] = (value.decode("utf-8", errors="replace") if kind == "text"
                            else int.from_bytes(value, "big"))  # fmt: skip
    return result
