"""EG 0104 (the legacy Predator universal set), from packets built here, into the same
record as ST 0601: IEEE floats or doubles, MSL heights to the ellipsoid through EGM96
(pyproj's transformation, reading PROJ's own grid, is the reference)."""

import struct

import pytest
from pyproj import Transformer, datadir
from scipy.spatial.transform import Rotation

from edge.drivers import klv_eg0104
from edge.drivers.klv import KlvSplitter, encode_ber_length
from edge.drivers.klv_metadata import KlvDecoder
from edge.geoid import Geoid

SET_KEY = bytes.fromhex("060e2b34020101010e01010201010000")


def item(tail: str, value: bytes, version: int = 1) -> bytes:
    key = bytes.fromhex("060e2b34010101") + bytes([version]) + bytes.fromhex(tail)
    return key + encode_ber_length(len(value)) + value


def packet(*items: bytes) -> bytes:
    body = b"".join(items)
    return SET_KEY + encode_ber_length(len(body)) + body


def legacy_packet(double: bool = True) -> bytes:
    number = (lambda x: struct.pack(">d", x)) if double else (lambda x: struct.pack(">f", x))
    return packet(
        item("0702010101050000", (1_234_567_890_123_456).to_bytes(8, "big"), version=3),
        item("0701100106000000", struct.pack(">f", 275.5), version=7),  # platform heading
        item("0701100105000000", struct.pack(">f", 2.0), version=7),  # pitch
        item("0701100104000000", struct.pack(">f", -4.0), version=7),  # roll
        item("0701020102040200", number(31.25), version=3),  # device latitude
        item("0701020102060200", number(-110.5), version=3),  # device longitude
        item("0701020102020000", struct.pack(">f", 3000.0)),  # device altitude, MSL
        item("0420020101080000", struct.pack(">f", 12.5), version=2),  # HFOV
        item("04200201010a0100", struct.pack(">f", 7.0), version=7),  # VFOV
        item("0701100102000000", struct.pack(">f", 300.0)),  # angle to north
        item("0701100103000000", struct.pack(">f", 225.0)),  # obliquity: 45 deg down
        item("0701020103020000", number(31.27)),  # frame centre lat
        item("0701020103040000", number(-110.52)),  # frame centre lon
        item("0701020103160000", struct.pack(">f", 1500.0), version=0x0A),  # its elevation, MSL
        item("0101200100000000", b"Predator"),
        item("0e01040103000000", b"MISSION"),
        item("0f0f0f0f0f0f0f0f", b"vendor"),  # an item this node does not know
    )


def pyproj_undulation(lat: float, lon: float) -> float:
    datadir.append_data_dir("/usr/share/proj")
    to_msl = Transformer.from_crs("EPSG:4979", "EPSG:4326+5773", always_xy=True)
    _, _, msl = to_msl.transform(lon, lat, 0.0)
    return -msl


@pytest.mark.parametrize("double", [True, False])
def test_a_legacy_packet_becomes_a_record_with_ellipsoid_heights(double):
    decoder = KlvDecoder(Geoid.find())
    record = decoder.decode(KlvSplitter().feed(legacy_packet(double))[0])
    assert record.standard == "EG0104"
    assert record.time == pytest.approx(1_234_567_890.123456, abs=1e-6)
    assert (record.platform_heading, record.platform_pitch, record.platform_roll) == (
        275.5, 2.0, -4.0)
    tolerance = 1e-12 if double else 1e-5
    assert record.sensor_lat == pytest.approx(31.25, abs=tolerance)
    assert record.sensor_lon == pytest.approx(-110.5, abs=tolerance)
    assert record.sensor_alt_hae == pytest.approx(3000.0 + pyproj_undulation(31.25, -110.5),
                                                  abs=0.005)
    assert record.frame_centre[2] == pytest.approx(1500.0 + pyproj_undulation(31.27, -110.52),
                                                   abs=0.005)
    assert (record.hfov, record.vfov) == (12.5, 7.0)
    assert record.pointing_frame == "earth"
    assert record.earth_pointing == pytest.approx((300.0, -45.0, 0.0))
    # Against the airframe: the rotation that, after the airframe's, gives the pointing.
    airframe = Rotation.from_euler("ZYX", [275.5, 2.0, -4.0], degrees=True)
    relative = Rotation.from_euler("ZYX", [record.rel_azimuth, record.rel_elevation,
                                           record.rel_roll], degrees=True)  # fmt: skip
    pointing = Rotation.from_euler("ZYX", [300.0, -45.0, 0.0], degrees=True)
    assert (airframe * relative * pointing.inv()).magnitude() < 1e-9
    assert decoder.counters.eg0104.unknown_keys == 1


def test_a_damaged_legacy_packet_is_refused_and_counted():
    good = legacy_packet()
    broken = good[:16] + encode_ber_length(len(good) - 17) + good[17:-3]  # last item cut
    counters = klv_eg0104.Eg0104Counters()
    from edge.drivers.klv import KlvPacket

    refused = klv_eg0104.decode(KlvPacket(broken[:16], broken[17:], broken), counters)
    assert refused is None and counters.malformed == 1
    odd = packet(item("0701020102040200", b"\x01\x02\x03"))  # a 3-octet "float"
    decoded = klv_eg0104.decode(KlvSplitter().feed(odd)[0], counters)
    assert decoded.values == {} and counters.bad_items == 1
