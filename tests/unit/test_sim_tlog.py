"""Reading tlogs: real ones as pymavlink reads them, damaged ones without losing the rest."""

import pytest
from pymavlink.dialects.v10 import common as mavlink1
from pymavlink.dialects.v20 import common as mavlink2

from sim_hw.__main__ import main as sim_main
from sim_hw.replay import ReplayStats, load, vehicle_frames
from sim_hw.tlog import ReadCounters, read_tlog, write_tlog
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.unit

REAL_FLIGHT = SHARED_DATA / "flights" / "arducopter-canberra-2015.tlog"
T0 = 1_767_225_600.0


def heartbeats(count, version=2, sysid=1, mav_type=mavlink2.MAV_TYPE_QUADROTOR):
    dialect = mavlink2 if version == 2 else mavlink1
    link = dialect.MAVLink(None, srcSystem=sysid, srcComponent=1)
    return [
        (T0 + k, dialect.MAVLink_heartbeat_message(mav_type, 3, 0, 0, 4, 3).pack(link))
        for k in range(count)
    ]


def test_round_trip(tmp_path):
    path = tmp_path / "a.tlog"
    entries = heartbeats(5)
    write_tlog(path, entries)
    frames = list(read_tlog(path))
    assert [(f.time, f.raw) for f in frames] == entries


@pytest.mark.skipif(not REAL_FLIGHT.exists(), reason="../shared/data is not present")
def test_real_flight_reads_like_pymavlink():
    counters = ReadCounters()
    frames = list(read_tlog(REAL_FLIGHT, counters))
    # pymavlink's mavutil reads 76,791 messages of which 1,314 are BAD_DATA.
    assert counters.frames == len(frames) == 76_791 - 1_314
    assert counters.bad_crc == 1_314
    kept, dropped = vehicle_frames(frames)
    assert {f.sysid for f in kept} == {1, 51}  # the autopilot and its SiK radio
    assert dropped == sum(f.sysid == 255 for f in frames) > 0


def test_corrupted_and_truncated_files_keep_every_intact_frame(tmp_path):
    entries = heartbeats(20)
    path = tmp_path / "damaged.tlog"
    write_tlog(path, entries)
    data = bytearray(path.read_bytes())
    entry_size = len(data) // 20
    data[5 * entry_size + 12] ^= 0xFF  # a payload byte of frame 5: bad checksum
    data[9 * entry_size : 9 * entry_size] = b"\x00garbage\xfd\xfe"  # noise before frame 9
    data = data[: len(data) - 4]  # the last frame cut short
    path.write_bytes(bytes(data))
    counters = ReadCounters()
    frames = list(read_tlog(path, counters))
    times = [f.time - T0 for f in frames]
    assert times == [k for k in range(19) if k != 5]
    assert counters.bad_crc >= 1 and counters.skipped_bytes > 0 and counters.truncated >= 1


def test_mavlink1_frames_are_read(tmp_path):
    path = tmp_path / "v1.tlog"
    write_tlog(path, heartbeats(3, version=1))
    frames = list(read_tlog(path))
    assert [f.version for f in frames] == [1, 1, 1]


def test_a_file_with_nothing_usable_is_a_clear_error(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(ValueError, match="no usable vehicle frames"):
        load(str(path), ReplayStats())


def test_ground_station_frames_are_left_out(tmp_path):
    entries = heartbeats(3) + heartbeats(3, sysid=200, mav_type=mavlink2.MAV_TYPE_GCS)
    path = tmp_path / "both.tlog"
    write_tlog(path, sorted(entries))
    stats = ReplayStats()
    frames = load(str(path), stats)
    assert {f.sysid for f in frames} == {1} and stats.ground_station_frames == 3


def test_the_command_line_says_why_it_cannot_replay_a_file(tmp_path, capsys):
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 10)
    argv = ["replay", str(noise), "--to", "udpout:127.0.0.1:9"]
    assert sim_main(argv) == 1
    assert "no usable vehicle frames" in capsys.readouterr().err
    assert sim_main(["replay", str(tmp_path / "absent.tlog"), "--to", "udpout:127.0.0.1:9"]) == 1
    assert "absent.tlog" in capsys.readouterr().err
