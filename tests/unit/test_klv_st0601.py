"""MISB ST 0601 decoding: the shared KWIVER file against a decode written here from the
standard's ranges (not the decoder's formulas), the simulator's independent encoder,
and damaged input: bad checksums, truncation, garbage, torn and merged packets."""

import math
import random
import struct
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drivers import klv_st0601
from edge.drivers.klv import KlvSplitter, checksum16, encode_ber_length, encode_ber_oid
from sim_hw.klv_encoder import SensorState, encode_packet
from tests.conftest import SHARED_DATA

KWIVER_FILE = SHARED_DATA / "video" / "misb0601-synthetic-h264.ts"
KEY = bytes.fromhex("060e2b34020b01010e01030101000000")

# The standard's items as (octets, signed, low, high): the integer range maps linearly onto
# [low, high]; signed ranges are symmetric, their most negative integer reserved.
LINEAR = {
    5: (2, 0, 0, 360), 6: (2, 1, -20, 20), 7: (2, 1, -50, 50), 13: (4, 1, -90, 90),
    14: (4, 1, -180, 180), 15: (2, 0, -900, 19000), 16: (2, 0, 0, 180), 17: (2, 0, 0, 180),
    18: (4, 0, 0, 360), 19: (4, 1, -180, 180), 20: (4, 0, 0, 360), 21: (4, 0, 0, 5_000_000),
    22: (2, 0, 0, 10_000), 23: (4, 1, -90, 90), 24: (4, 1, -180, 180), 25: (2, 0, -900, 19000),
    **{t: (2, 1, Fraction(-3, 40), Fraction(3, 40)) for t in range(26, 34)},
    35: (2, 0, 0, 360), 36: (1, 0, 0, 100), 37: (2, 0, 0, 5000), 38: (2, 0, -900, 19000),
    40: (4, 1, -90, 90), 41: (4, 1, -180, 180), 42: (2, 0, -900, 19000), 43: (1, 0, 0, 510),
    44: (1, 0, 0, 510), 45: (2, 0, 0, 4095), 46: (2, 0, 0, 4095), 49: (2, 0, 0, 5000),
    50: (2, 1, -20, 20), 51: (2, 1, -180, 180), 52: (2, 1, -20, 20), 53: (2, 0, 0, 5000),
    54: (2, 0, -900, 19000), 55: (1, 0, 0, 100), 57: (4, 0, 0, 5_000_000),
    58: (2, 0, 0, 10_000), 64: (2, 0, 0, 360), 67: (4, 1, -90, 90), 68: (4, 1, -180, 180),
    69: (2, 0, -900, 19000), 71: (2, 0, 0, 360), 75: (2, 0, -900, 19000),
    76: (2, 0, -900, 19000), 78: (2, 0, -900, 19000), 79: (2, 1, -327, 327),
    80: (2, 1, -327, 327), **{t: (4, 1, -90, 90) for t in (82, 84, 86, 88, 90, 91, 92)},
    **{t: (4, 1, -180, 180) for t in (83, 85, 87, 89, 93)},
}
IMAPB = {96: (0, 1_500_000), 103: (-900, 40000), 104: (-900, 40000), 105: (-900, 40000),
         109: (0, 21000), 112: (0, 360), 113: (-900, 40000), 114: (-900, 40000),
         117: (-1000, 1000), 118: (-1000, 1000), 119: (-1000, 1000), 120: (0, 100),
         132: (1, 99999), 134: (0, 100)}  # fmt: skip
TEXT = {3, 4, 10, 11, 12, 59, 70, 106, 107, 108, 129, 135}
UNSIGNED = {8, 9, 34, 47, 56, 60, 61, 62, 63, 65, 77, 110, 111, 123, 124, 125, 126, 133}


def reference_items(value: bytes) -> list[tuple[int, bytes]]:
    """Tags and values, read octet by octet."""
    items, pos = [], 0
    while pos < len(value):
        tag = 0
        while True:
            octet = value[pos]
            pos += 1
            tag = tag * 128 + (octet & 0x7F)
            if octet < 128:
                break
        length = value[pos]
        pos += 1
        if length >= 128:
            count = length - 128
            length = int.from_bytes(value[pos : pos + count], "big")
            pos += count
        items.append((tag, value[pos : pos + length]))
        pos += length
    return items


def reference_linear(data: bytes, octets: int, signed: bool, low, high):
    raw = int.from_bytes(data, "big", signed=bool(signed))
    if signed:
        top = 2 ** (8 * octets - 1) - 1
        if raw == -top - 1:
            return None
        return float(Fraction(low) + (Fraction(raw) + top) * (Fraction(high) - low) / (2 * top))
    return float(Fraction(low) + Fraction(raw) * (Fraction(high) - low) / (2 ** (8 * octets) - 1))


def reference_imapb(data: bytes, low, high):
    """ST 1201's reverse map, from its definition."""
    if data[0] >= 0x80:
        return None
    b_pow = math.ceil(math.log2(high - low))
    d_pow = 8 * len(data) - 1
    s_f = Fraction(2) ** (d_pow - b_pow)
    z = s_f * low - math.floor(s_f * low) if low < 0 < high else 0
    return float((Fraction(int.from_bytes(data, "big")) - z) / s_f + low)


def kwiver_packets():
    if not KWIVER_FILE.exists():
        pytest.skip(f"shared data not present: {KWIVER_FILE}")
    import av

    with av.open(str(KWIVER_FILE)) as container:
        stream = next(s for s in container.streams if s.type == "data")
        return [bytes(p) for p in container.demux(stream) if p.size]


def test_every_item_of_the_shared_file_matches_a_decode_from_the_standard():
    splitter, counters = KlvSplitter(), klv_st0601.St0601Counters()
    checked = set()
    packets = [k for chunk in kwiver_packets() for k in splitter.feed(chunk, new_unit=True)]
    assert len(packets) == 30
    for packet in packets:
        decoded = klv_st0601.decode(packet, counters)
        assert decoded is not None and decoded.checksum_ok is True
        for tag, data in reference_items(packet.value):
            name = klv_st0601.ITEMS[tag].name
            ours = decoded.values[name]
            if tag in LINEAR:
                expected = reference_linear(data, *LINEAR[tag])
            elif tag in IMAPB:
                expected = reference_imapb(data, *IMAPB[tag])
            elif tag in TEXT:
                expected = data.decode()
            elif tag in UNSIGNED:
                expected = int.from_bytes(data, "big")
            elif tag in (2, 72, 131):
                expected = int.from_bytes(data, "big") / 1e6
            elif tag in (39, 136, 137):
                expected = int.from_bytes(data, "big", signed=True)
            elif tag == 1:
                expected = int.from_bytes(data, "big")
            else:
                continue  # nested sets and packs, below
            if isinstance(expected, float):
                assert ours == pytest.approx(expected, rel=1e-12, abs=1e-9), (tag, name)
            else:
                assert ours == expected, (tag, name)
            checked.add(tag)
    # Every item this file carries that has a scalar value was compared: 117 of them.
    assert len(checked) == 117, sorted(set(range(1, 143)) - checked)
    first = klv_st0601.decode(packets[0], counters).values
    assert first["security_local_set"]["classification"] == "UNCLASSIFIED"
    assert first["vmti_local_set"]["frame_width"] == 1920
    assert first["version"] == 17
    assert counters.bad_checksum == counters.malformed == counters.bad_items == 0


def state(**changes) -> SensorState:
    values = dict(time=1_767_225_660.04, lat=22.70003, lon=14.180084, alt_hae=850.0,
                  heading=271.5, pitch=-3.25, roll=12.5, rel_azimuth=95.25,
                  rel_elevation=-35.5, rel_roll=0.75, hfov=60.0, vfov=35.0,
                  velocity_ne=(-2.5, 17.25), frame_centre=(22.6994, 14.18, 620.0),
                  corners=((22.7, 14.17), (22.7, 14.19), (22.69, 14.19), (22.69, 14.17)),
                  slant_range=1234.5)  # fmt: skip
    return SensorState(**(values | changes))


def test_the_simulators_encoder_round_trips_within_the_items_resolution():
    packet = next(iter(KlvSplitter().feed(encode_packet(state()))))
    values = klv_st0601.decode(packet, klv_st0601.St0601Counters()).values
    expected = {"precision_time_stamp": 1_767_225_660.04, "sensor_latitude": 22.70003,
                "sensor_longitude": 14.180084, "sensor_ellipsoid_height": 850.0,
                "sensor_ellipsoid_height_extended": 850.0, "platform_heading": 271.5,
                "platform_pitch_full": -3.25, "platform_roll_full": 12.5,
                "platform_pitch": -3.25, "platform_roll": 12.5,
                "sensor_relative_azimuth": 95.25, "sensor_relative_elevation": -35.5,
                "sensor_relative_roll": 0.75, "sensor_hfov": 60.0, "sensor_vfov": 35.0,
                "sensor_north_velocity": -2.5, "sensor_east_velocity": 17.25,
                "frame_center_latitude": 22.6994, "frame_center_longitude": 14.18,
                "frame_center_hae": 620.0, "corner_latitude_3": 22.69,
                "corner_longitude_4": 14.17, "offset_corner_latitude_1": 0.0006,
                "slant_range": 1234.5}  # fmt: skip
    for name, value in expected.items():
        # Half a step of the coarsest of these items: 19900 m over 16 bits, 0.15 m.
        assert values[name] == pytest.approx(value, abs=0.16), name
    assert values["sensor_latitude"] == pytest.approx(22.70003, abs=1e-7)


def test_a_bad_checksum_refuses_the_packet_and_the_next_one_still_decodes():
    good = encode_packet(state())
    bad = bytearray(good)
    bad[40] ^= 0x01
    counters = klv_st0601.St0601Counters()
    decoded = [klv_st0601.decode(p, counters) for p in KlvSplitter().feed(bytes(bad) + good)]
    assert decoded[0] is None and decoded[1] is not None
    assert counters.bad_checksum == 1 and counters.decoded == 1
    # A splitter that checks refuses it before the decoder sees it, and counts why.
    splitter = KlvSplitter(check=klv_st0601.problem)
    assert [p.raw for p in splitter.feed(bytes(bad) + good)] == [good]
    assert splitter.counters.refused == {"bad_checksum": 1}


def without_checksum(packet: bytes) -> bytes:
    body = packet[17 + (packet[16] >= 128) * (packet[16] - 127) - 1 :]
    items = reference_items(body)
    kept = b"".join(encode_ber_oid(t) + encode_ber_length(len(v)) + v for t, v in items if t != 1)
    return KEY + encode_ber_length(len(kept)) + kept


def test_a_packet_without_checksum_is_accepted_and_counted():
    counters = klv_st0601.St0601Counters()
    packets = KlvSplitter().feed(without_checksum(encode_packet(state())))
    decoded = klv_st0601.decode(packets[0], counters)
    assert decoded is not None and decoded.checksum_ok is None
    assert decoded.values["sensor_latitude"] == pytest.approx(22.70003, abs=1e-7)
    assert counters.no_checksum == 1


def test_garbage_truncated_and_split_packets_in_any_chunking():
    good = [encode_packet(state(time=1_767_225_660.0 + k)) for k in range(4)]
    rng = random.Random(7)
    stream = (bytes(rng.randrange(256) for _ in range(300)) + good[0]
              + good[1][:40]  # a packet cut short, its tail lost with a PES
              + good[1] + b"\x06\x0e\x2b\x34\xff\xff" + good[2]
              + bytes(rng.randrange(256) for _ in range(50)) + good[3])  # fmt: skip
    for trial in range(20):
        splitter = KlvSplitter(check=klv_st0601.problem)
        counters = klv_st0601.St0601Counters()
        times, pos = [], 0
        while pos < len(stream):
            step = rng.randrange(1, 200)
            for packet in splitter.feed(stream[pos : pos + step]):
                decoded = klv_st0601.decode(packet, counters)
                if decoded is not None:
                    times.append(decoded.values["precision_time_stamp"])
            pos += step
        # The cut packet, framed with the next one's bytes, fails its checks (its items or
        # its checksum); the search resumes inside it and finds the next: every whole
        # packet decodes.
        assert times == [1_767_225_660.0 + k for k in range(4)], trial
        refused = splitter.counters.refused
        assert refused.get("bad_checksum", 0) + refused.get("malformed", 0) == 1, refused
        assert refused["not_a_key"] == 1
        assert splitter.counters.skipped_bytes >= 300 + 40 + 6 + 50


def test_a_pes_that_starts_a_new_packet_drops_the_torn_one_before_it():
    good = [encode_packet(state(time=100.0 + k)) for k in range(3)]
    splitter, counters = KlvSplitter(), klv_st0601.St0601Counters()
    units = [good[0] + good[1][:30], good[2]]  # two packets in one PES, the second cut
    packets = [p for unit in units for p in splitter.feed(unit, new_unit=True)]
    times = [klv_st0601.decode(p, counters).values["precision_time_stamp"] for p in packets]
    assert times == [100.0, 102.0]
    assert splitter.counters.torn == 1


def test_a_packet_split_over_several_pes_is_joined():
    good = encode_packet(state())
    splitter = KlvSplitter()
    pieces = [good[:10], good[10:50], good[50:]]
    packets = [p for k, piece in enumerate(pieces) for p in splitter.feed(piece, new_unit=k == 0)]
    assert len(packets) == 1 and packets[0].raw == good


def test_a_synchronous_streams_cell_header_is_skipped():
    good = encode_packet(state())
    cell = bytes([0, 1, 0xDF]) + len(good).to_bytes(2, "big")  # ISO 13818-1 metadata AU cell
    packets = KlvSplitter().feed(cell + good, new_unit=True)
    assert [p.raw for p in packets] == [good]


def test_short_items_longer_items_error_indicators_and_key_variants():
    items = [(2, (1_000_000).to_bytes(8, "big")),
             (13, (1000).to_bytes(2, "big")),  # 4-octet item sent in 2: leading zeros dropped
             (14, (0x80000000).to_bytes(4, "big")),  # the reserved value: out of range
             (16, (1).to_bytes(3, "big")),  # longer than its 2 octets: skipped
             (104, bytes([0xE1, 0, 0, 0])),  # IMAPB above its range
             (200, b"\x01\x02")]  # a tag from the future
    body = b"".join(encode_ber_oid(t) + encode_ber_length(len(v)) + v for t, v in items)
    body += b"\x01\x02"
    key = bytearray(KEY)
    key[5], key[7] = 0x03, 0x02  # 1-octet-tag coding and another registry version
    head = bytes(key) + encode_ber_length(len(body) + 2)
    packet = head + body + checksum16(head + body).to_bytes(2, "big")
    counters = klv_st0601.St0601Counters()
    decoded = klv_st0601.decode(KlvSplitter().feed(packet)[0], counters)
    assert decoded.values["sensor_latitude"] == pytest.approx(1000 * 180 / (2**32 - 2))
    assert decoded.values["sensor_longitude"] is None
    assert "sensor_hfov" not in decoded.values
    assert decoded.values["sensor_ellipsoid_height_extended"] is None
    assert decoded.unknown == {200: b"\x01\x02"}
    assert (counters.bad_items, counters.error_values, counters.unknown_tags) == (1, 2, 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 2000), st.binary(max_size=3))
def test_any_bytes_never_crash_the_splitter_or_decoder(noise, cut, patch):
    """Random bytes, and a good packet with a stretch overwritten, anywhere in a stream."""
    good = bytearray(encode_packet(state()))
    at = cut % len(good)
    good[at : at + len(patch)] = patch
    counters = klv_st0601.St0601Counters()
    for packet in KlvSplitter().feed(noise + bytes(good) + noise):
        decoded = klv_st0601.decode(packet, counters)
        if decoded is not None:
            for value in decoded.values.values():
                assert not isinstance(value, float) or math.isfinite(value)


def test_reference_linear_agrees_with_struct_for_a_known_value():
    # 0x7FFF in the ±20° pitch item is +20°: the top of the range (the standard's example).
    assert reference_linear(struct.pack(">h", 0x7FFF), 2, 1, -20, 20) == pytest.approx(20.0)
