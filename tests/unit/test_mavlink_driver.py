"""The MAVLink driver's parsing core, fed bytes directly: no sockets, times chosen by the test."""

import json
import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as dialect
from scipy.spatial.transform import Rotation

from edge.drivers.mavlink import MavlinkConfig, MavlinkReceiver
from edge.drivers.timeseries import PoseUnavailable
from edge.drivers.vehicle_state import VehicleConfig
from sim_hw.__main__ import main as sim_main
from sim_hw.signing import SIGNING_EPOCH, FrameSigner
from sim_hw.tlog import read_tlog
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.unit

REAL_FLIGHT = SHARED_DATA / "flights" / "arducopter-canberra-2015.tlog"
KEY = bytes(range(32))
POSITION = dialect.MAVLINK_MSG_ID_GLOBAL_POSITION_INT
ATTITUDE = dialect.MAVLINK_MSG_ID_ATTITUDE
GIMBAL = dialect.MAVLINK_MSG_ID_GIMBAL_DEVICE_ATTITUDE_STATUS
HEARTBEAT = dialect.MAVLINK_MSG_ID_HEARTBEAT


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    """A simulated 120 s flight of system 3: its frames and its true poses every 0.1 s."""
    path = tmp_path_factory.mktemp("flight") / "flight.tlog"
    assert sim_main(["generate", "--out", str(path), "--duration", "120", "--sysid", "3"]) == 0
    with open(f"{path}.truth.jsonl") as lines:
        truth = [json.loads(line) for line in lines]
    return list(read_tlog(path)), truth


def make_receiver(signing_key=None, **vehicle) -> MavlinkReceiver:
    vehicle.setdefault("history", 4096)  # the whole test flight
    return MavlinkReceiver(MavlinkConfig("test", signing_key=signing_key,
                                         vehicle=VehicleConfig(**vehicle)))  # fmt: skip


def feed(receiver, frames):
    for frame in frames:
        receiver.feed_datagram(frame.raw, frame.time)


def collect(receiver) -> list[bytes]:
    delivered = []
    receiver.listeners.append(lambda msg, _arrival: delivered.append(bytes(msg.get_msgbuf())))
    return delivered


def position_error_m(pose, row) -> float:
    north = math.radians(pose.lat - row["lat"]) * 6_378_137
    east = math.radians(pose.lon - row["lon"]) * 6_378_137 * math.cos(math.radians(row["lat"]))
    return math.sqrt(north**2 + east**2 + (pose.alt - row["alt"]) ** 2)


def enu_to_ned(enu) -> np.ndarray:
    east, north, up = enu
    return np.array([north, east, -up])


def angle_deg(rotation, yaw, pitch, roll) -> float:
    true = Rotation.from_euler("ZYX", [yaw, pitch, roll])
    return math.degrees((true.inv() * rotation).magnitude())


class Sender:
    """Packs messages as one MAVLink component, numbering them as a real sender does."""

    def __init__(self, sysid=7, compid=1, **signing):
        self.mav = dialect.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        if signing:
            self.mav.signing.secret_key = signing["key"]
            self.mav.signing.link_id = signing.get("link_id", 0)
            self.mav.signing.timestamp = signing["timestamp"]
            self.mav.signing.sign_outgoing = True

    def pack(self, message, mavlink1=False) -> bytes:
        frame = bytes(message.pack(self.mav, force_mavlink1=mavlink1))
        self.mav.seq = (self.mav.seq + 1) % 256
        return frame


def heartbeat(mav_type=dialect.MAV_TYPE_QUADROTOR):
    return dialect.MAVLink_heartbeat_message(mav_type, dialect.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                             0, 0, dialect.MAV_STATE_ACTIVE, 3)  # fmt: skip


def position(boot_s, index):
    """A GLOBAL_POSITION_INT whose latitude carries `index`, so a test can find its truth."""
    return dialect.MAVLink_global_position_int_message(
        round(boot_s * 1000), 100_000_000 + index * 100, 140_000_000, 700_000, 0, 0, 0, 0, 0
    )


# --- pose_at against the simulator's truth ----------------------------------


def test_pose_between_samples_matches_truth(flight):
    frames, truth = flight
    # Every other position, attitude and gimbal frame left out: half the truth
    # rows then fall midway between two samples, where pose_at must interpolate.
    seen = Counter()
    thinned = []
    for frame in frames:
        seen[frame.msgid] += 1
        if frame.msgid in (POSITION, ATTITUDE, GIMBAL) and seen[frame.msgid] % 2 == 0:
            continue
        thinned.append(frame)
    receiver = make_receiver()
    feed(receiver, thinned)
    vehicle = receiver.vehicles[3]
    times = vehicle.position.times
    rows = [row for row in truth if times[0] <= row["t"] <= times[-1]]
    assert len(rows) > 1000

    poses = [vehicle.pose_at(row["t"]) for row in rows]
    position_errors = [position_error_m(p, r) for p, r in zip(poses, rows, strict=True)]
    attitude_errors = [angle_deg(p.attitude, r["yaw"], r["pitch"], r["roll"])
                       for p, r in zip(poses, rows, strict=True)]  # fmt: skip
    gimbal_errors = [angle_deg(p.gimbal, r["gimbal_yaw"], r["gimbal_pitch"], 0.0)
                     for p, r in zip(poses, rows, strict=True)]  # fmt: skip
    velocity_errors = [np.linalg.norm(p.velocity_ned - enu_to_ned(r["velocity_enu"]))
                       for p, r in zip(poses, rows, strict=True)]  # fmt: skip
    assert max(position_errors) < 0.1
    assert max(velocity_errors) < 0.1
    # The simulated attitude steps where a leg ends; no interpolation follows a
    # step, so the few samples around one are left out by the percentile.
    assert np.median(attitude_errors) < 0.05 and np.percentile(attitude_errors, 99) < 0.5
    assert np.median(gimbal_errors) < 0.05 and np.percentile(gimbal_errors, 99) < 0.5
    assert all(p.extrapolated == 0.0 for p in poses)
    assert poses[0].hfov == pytest.approx(math.radians(60.0))
    assert vehicle.camera is not None and vehicle.camera.width == 1280


def test_pose_is_refused_beyond_the_horizon_and_across_gaps(flight):
    frames, _ = flight
    start = frames[0].time
    # A 5 s hole in the telemetry 40 s into the flight.
    holed = [f for f in frames if not start + 40 <= f.time < start + 45]
    receiver = make_receiver(horizon=0.5, max_gap=2.0)
    feed(receiver, holed)
    vehicle = receiver.vehicles[3]
    first, last = vehicle.position.times[0], vehicle.position.times[-1]

    newest = vehicle.pose_at(last)
    ahead = vehicle.pose_at(last + 0.4)
    speed = np.linalg.norm(newest.velocity_ned[:2])
    assert ahead.extrapolated == pytest.approx(0.4)
    assert speed > 1.0  # moving, so dead reckoning has something to do
    moved = position_error_m(ahead, {"lat": newest.lat, "lon": newest.lon, "alt": ahead.alt})
    assert moved == pytest.approx(speed * 0.4, rel=0.02)

    with pytest.raises(PoseUnavailable, match="horizon"):
        vehicle.pose_at(last + 0.6)
    with pytest.raises(PoseUnavailable, match="horizon"):
        vehicle.pose_at(first - 0.6)
    with pytest.raises(PoseUnavailable, match="gap"):
        vehicle.pose_at(start + 42.5)
    with pytest.raises(KeyError):
        receiver.pose_at(99, last)


def test_gimbal_yaw_in_the_vehicle_frame_is_turned_by_the_vehicle_heading():
    autopilot, gimbal = Sender(compid=1), Sender(compid=dialect.MAV_COMP_ID_GIMBAL)
    receiver = make_receiver()
    pitch, relative_yaw, heading = math.radians(-30), math.radians(10), math.radians(90)
    q = Rotation.from_euler("ZYX", [relative_yaw, pitch, 0.0]).as_quat()  # x, y, z, w
    for k in range(5):
        boot = 10.0 + 0.1 * k
        arrival = 1_700_000_000.0 + boot
        receiver.feed_datagram(autopilot.pack(position(boot, k)), arrival)
        receiver.feed_datagram(autopilot.pack(dialect.MAVLink_attitude_message(
            round(boot * 1000), 0.0, 0.0, heading, 0.0, 0.0, 0.0)), arrival)  # fmt: skip
        receiver.feed_datagram(gimbal.pack(dialect.MAVLink_gimbal_device_attitude_status_message(
            0, 0, round(boot * 1000), dialect.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME,
            [q[3], q[0], q[1], q[2]], 0.0, 0.0, 0.0, 0)), arrival)  # fmt: skip
    vehicle = receiver.vehicles[7]
    pose = vehicle.pose_at(vehicle.position.times[2])
    yaw, gimbal_pitch, _ = pose.gimbal.as_euler("ZYX")
    # MAVLink carries the quaternion as float32.
    assert math.degrees(yaw) == pytest.approx(100.0, abs=1e-4)
    assert math.degrees(gimbal_pitch) == pytest.approx(-30.0, abs=1e-4)


# --- time sync ---------------------------------------------------------------


def vehicle_link(seed, duration=100.0, gps_from=20.0, reboot_at=None, rtc_error=0.0,
                 rtc_until=0.0, jitter=0.02, outliers=0.1):  # fmt: skip
    """Frames of a vehicle with a known clock: (arrival, bytes) and each position's true UTC.

    Positions at 10 Hz; SYSTEM_TIME at 1 Hz with GPS time from `gps_from` s,
    jittered, with a share of far outliers once the first samples are in (before
    that, a wrong first sample is outvoted by the next: a jump); arrivals late by
    20..300 ms, in order. A reboot restarts the boot clock after 2 s of silence. Before
    `rtc_until` the vehicle's UTC is off by `rtc_error` (a clock not yet set).
    """
    rng = np.random.default_rng(seed)
    sender = Sender(sysid=7)
    epoch = 1_700_000_000.0  # UTC when the boot clock read 0
    frames, truth = [], {}
    t = 0.0
    for k in range(int(duration * 10)):
        t = 0.1 * k
        if reboot_at is not None and t >= reboot_at and epoch == 1_700_000_000.0:
            epoch = 1_700_000_000.0 + reboot_at + 2.0
        if reboot_at is not None and reboot_at <= t < reboot_at + 3.0:
            continue  # rebooting: silent
        utc = 1_700_000_000.0 + t
        boot = utc - epoch
        # A radio link delivers in order: a frame waits behind a late one.
        arrival = max(utc + rng.uniform(0.02, 0.3), frames[-1][0] if frames else 0.0)
        frames.append((arrival, sender.pack(position(boot, k))))
        truth[k] = utc
        if k % 10 == 0:
            frames.append((arrival, sender.pack(heartbeat())))
            clock = system_time(rng, t, utc, boot, gps_from, jitter, outliers, rtc_error,
                                rtc_until)  # fmt: skip
            frames.append((arrival, sender.pack(clock)))
    return frames, truth


def system_time(rng, t, utc, boot, gps_from, jitter, outliers, rtc_error, rtc_until):
    if t < gps_from:
        unix = 0.0
    elif t >= gps_from + 5.0 and rng.random() < outliers:
        unix = utc + rng.choice([-1, 1]) * rng.uniform(1.5, 3.0)
    else:
        unix = utc + rng.normal(0.0, jitter) + (rtc_error if t < rtc_until else 0.0)
    return dialect.MAVLink_system_time_message(round(unix * 1e6), round(boot * 1000))


def stamp_errors(vehicle, truth) -> dict[int, float]:
    """Stamp minus true UTC of every position sample, by index."""
    errors = {}
    for t, values in zip(vehicle.position.times, vehicle.position.values, strict=True):
        index = round((values[0] - 10.0) / 1e-5)
        errors[index] = t - truth[index]
    return errors


def test_time_sync_follows_truth_through_jitter_outliers_and_a_reboot():
    frames, truth = vehicle_link(seed=4, reboot_at=60.0)
    receiver = make_receiver(latency=0.02)
    for arrival, frame in frames:
        receiver.feed_datagram(frame, arrival)
    vehicle = receiver.vehicles[7]
    errors = stamp_errors(vehicle, truth)

    assert vehicle.reboots == 1 and receiver.counters.reboots == 1
    assert receiver.counters.time_jumps == 0  # the GPS time appeared without a jump
    assert vehicle.clock.source == "system_time" and vehicle.clock.outliers > 0
    before_gps = [abs(e) for k, e in errors.items() if 50 <= k < 200]  # arrival-based
    with_gps = [abs(e) for k, e in errors.items() if 250 <= k < 600]
    after_reboot = [abs(e) for k, e in errors.items() if k >= 680]
    assert len(before_gps) > 100 and len(with_gps) > 300 and len(after_reboot) > 250
    # Outliers of 1.5..3 s never reach a stamp; the jitter (20 ms) is averaged down.
    assert max(before_gps) < 0.05
    assert max(with_gps) < 0.03 and np.percentile(with_gps, 90) < 0.015
    assert max(after_reboot) < 0.03


def test_a_vehicle_clock_set_late_drops_the_history_stamped_before():
    # The vehicle reports UTC an hour off until 40 s, then the right UTC.
    frames, truth = vehicle_link(seed=5, duration=60.0, gps_from=0.0, rtc_error=-3600.0,
                                 rtc_until=40.0, outliers=0.0)  # fmt: skip
    receiver = make_receiver(latency=0.02)
    for arrival, frame in frames:
        receiver.feed_datagram(frame, arrival)
    vehicle = receiver.vehicles[7]
    errors = stamp_errors(vehicle, truth)
    # Two jumps: when the vehicle's time is first taken over the arrival times,
    # and when it is set right.
    assert receiver.counters.time_jumps == 2
    # Nothing stamped with the hour-off clock is kept; what came after is right.
    assert min(errors) >= 400 and max(abs(e) for e in errors.values()) < 0.05


# --- bad input -----------------------------------------------------------------


def test_garbage_truncated_bad_crc_unknown_and_duplicate_frames_lose_no_good_frame(flight):
    frames, _ = flight
    good = [f.raw for f in frames[:60]]
    rng = random.Random(3)
    corrupt = bytearray(good[10])
    corrupt[12] ^= 0xFF  # a payload byte: the checksum no longer matches
    unknown_id = bytes([0xFD, 4, 0, 0, 9, 3, 1, 0x50, 0xC3, 0x00, 1, 2, 3, 4, 0x12, 0x34])
    bad_flags = bytearray(good[11])
    bad_flags[2] = 0x04  # an incompatibility flag nobody defined
    pieces = []
    for k, raw in enumerate(good):
        if k == 5:
            pieces.append(bytes(rng.randrange(256) for _ in range(300)) + b"\xfd\xfe\xfd")
        if k == 20:
            pieces.append(good[40][:15])  # truncated: its claimed length covers the next frame
        if k == 30:
            pieces.append(corrupt)
        if k == 35:
            pieces += [unknown_id, bytes(bad_flags)]
        pieces.append(raw)
        if k == 45:
            pieces.append(raw)  # the same frame twice: same sequence number
    stream = b"".join(pieces)

    as_stream = make_receiver()
    delivered = collect(as_stream)
    position = 0
    while position < len(stream):  # arbitrary read sizes, as a serial port gives them
        size = rng.randrange(1, 90)
        as_stream.feed_stream(stream[position : position + size], 1_795_000_000.0)
        position += size
    assert delivered == good
    counters = as_stream.counters
    assert counters.duplicates == 1 and counters.bad_crc >= 1 and counters.malformed >= 1
    assert counters.unknown_message >= 1 and counters.skipped_bytes >= 300
    assert counters.frames == len(good) + 1  # the duplicate passed framing, then was dropped

    as_datagrams = make_receiver()
    delivered = collect(as_datagrams)
    for piece in pieces:
        as_datagrams.feed_datagram(piece, 1_795_000_000.0)
    assert delivered == good
    assert as_datagrams.counters.truncated >= 1 and as_datagrams.counters.bad_crc >= 1


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes_never_raise(data, chunk):
    receiver = make_receiver()
    for start in range(0, len(data), chunk):
        receiver.feed_stream(data[start : start + chunk], 1_795_000_000.0)
    receiver.feed_datagram(data, 1_795_000_000.0)
    counters = receiver.counters
    assert counters.bytes_in == 2 * len(data)
    assert counters.messages <= counters.frames


def test_gps_without_fix_and_positions_without_a_fix_are_counted_not_stored():
    sender = Sender()
    receiver = make_receiver()
    no_fix = dialect.MAVLink_gps_raw_int_message(0, 1, 0, 0, 0, 65535, 65535, 0, 0, 3)
    nowhere = dialect.MAVLink_global_position_int_message(1000, 0, 0, 0, 0, 0, 0, 0, 0)
    for k in range(3):
        receiver.feed_datagram(sender.pack(no_fix), 1_795_000_000.0 + k)
        receiver.feed_datagram(sender.pack(nowhere), 1_795_000_000.0 + k)
    vehicle = receiver.vehicles[7]
    assert receiver.counters.gps_no_fix == 3 and receiver.counters.invalid_values == 3
    assert len(vehicle.position) == 0
    assert vehicle.status(1_795_000_003.0).gps["fix_type"] == 1


# --- link health -----------------------------------------------------------------


def test_loss_from_sequence_gaps_equals_the_frames_removed(flight):
    frames, _ = flight
    # A gap shows only between two frames of the same sender: not the first or last ones.
    first, last = {}, {}
    for k, frame in enumerate(frames):
        first.setdefault(frame.compid, k)
        last[frame.compid] = k
    inner = [k for k, f in enumerate(frames) if first[f.compid] < k < last[f.compid]]
    removed = set(random.Random(7).sample(inner, 400))
    kept = [f for k, f in enumerate(frames) if k not in removed]
    receiver = make_receiver()
    feed(receiver, kept)
    link = receiver.vehicles[3].link
    assert link.lost == 400 and receiver.counters.lost == 400
    assert link.received == len(kept) and link.duplicates == 0
    assert link.status(kept[-1].time).loss_fraction == pytest.approx(400 / len(frames))


def test_a_late_frame_is_not_counted_as_lost(flight):
    frames, _ = flight
    autopilot = [k for k, f in enumerate(frames) if f.compid == 1]
    a, b = autopilot[100], autopilot[101]
    swapped = list(frames)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    receiver = make_receiver()
    feed(receiver, swapped)
    link = receiver.vehicles[3].link
    assert link.out_of_order == 1 and link.lost == 0 and link.received == len(frames)


def test_heartbeat_timeout_marks_the_link_lost_after_3_s_and_it_recovers(flight):
    frames, _ = flight
    first_part = [f for f in frames if f.time < frames[0].time + 30]
    receiver = make_receiver()
    feed(receiver, first_part)
    last_heartbeat = max(f.time for f in first_part if f.msgid == HEARTBEAT)
    status = receiver.vehicle_status

    assert status(last_heartbeat + 2.9)[0].link.state == "ok"
    assert status(last_heartbeat + 3.1)[0].link.state == "lost"
    assert receiver.counters.link_losses == 1
    receiver.tick(last_heartbeat + 10.0)
    assert receiver.counters.link_losses == 1  # lost once, counted once

    later = [f for f in frames if f.time >= frames[0].time + 40]
    feed(receiver, later[:50])  # the link comes back: the next heartbeat restores it
    assert status(later[49].time)[0].link.state == "ok"
    # The frames of the outage are the outage, not sequence loss.
    assert receiver.vehicles[3].link.lost == 0


def test_ground_stations_are_not_vehicles(flight):
    frames, _ = flight
    gcs_by_sysid, gcs_by_type = Sender(sysid=255, compid=190), Sender(sysid=200, compid=190)
    receiver = make_receiver()
    receiver.feed_datagram(gcs_by_type.pack(position(1.0, 0)), frames[0].time)
    assert 200 in receiver.vehicles  # not known for a ground station yet
    receiver.feed_datagram(gcs_by_type.pack(heartbeat(dialect.MAV_TYPE_GCS)), frames[0].time)
    receiver.feed_datagram(gcs_by_sysid.pack(heartbeat(dialect.MAV_TYPE_GCS)), frames[0].time)
    receiver.feed_datagram(gcs_by_type.pack(position(2.0, 1)), frames[0].time)
    feed(receiver, frames[:200])
    assert set(receiver.vehicles) == {3}
    assert receiver.counters.ground_station == 3


# --- signing -----------------------------------------------------------------------


def signing_now() -> int:
    import time

    return int((time.time() - SIGNING_EPOCH) * 1e5)


def test_signed_frames_replayed_old_forged_or_unsigned_are_rejected(flight):
    frames, _ = flight
    signer = FrameSigner(KEY)
    signed = [signer.sign(f.raw) for f in frames[:40]]
    receiver = make_receiver(signing_key=KEY)
    delivered = collect(receiver)
    arrival = frames[0].time

    for frame in signed[:10]:
        receiver.feed_datagram(frame, arrival)
    assert len(delivered) == 10
    receiver.feed_datagram(signed[5], arrival)  # replayed: its timestamp is not newer
    assert receiver.counters.stale_signature == 1

    # A new stream (link 7) whose timestamps are two minutes old.
    old = Sender(sysid=3, compid=1, key=KEY, link_id=7, timestamp=signing_now() - 120 * 10**5)
    receiver.feed_datagram(old.pack(heartbeat()), arrival)
    assert receiver.counters.stale_signature == 2

    # A forged frame (bad signature) claiming a far-future timestamp must not
    # make the genuine frames after it look replayed.
    forger = Sender(sysid=3, compid=1, key=bytes(32), timestamp=signing_now() + 10**9)
    receiver.feed_datagram(forger.pack(heartbeat()), arrival)
    assert receiver.counters.bad_signature == 1
    for frame in signed[10:20]:
        receiver.feed_datagram(frame, arrival)
    assert len(delivered) == 20

    receiver.feed_datagram(frames[20].raw, arrival)  # unsigned MAVLink 2
    receiver.feed_datagram(Sender(sysid=3).pack(heartbeat(), mavlink1=True), arrival)
    assert receiver.counters.unsigned_rejected == 2
    assert len(delivered) == 20 and all(m in signed for m in delivered)


def test_pymavlink_alone_would_let_a_forged_timestamp_block_the_stream(flight):
    """Why the driver restores stream timestamps: without it the genuine frame is refused."""
    frames, _ = flight
    signer = FrameSigner(KEY)
    genuine = [signer.sign(f.raw) for f in frames[:2]]
    forger = Sender(sysid=3, compid=1, key=bytes(32), timestamp=signing_now() + 10**9)
    plain = dialect.MAVLink(None)
    plain.signing.secret_key = KEY
    plain.robust_parsing = True
    plain.parse_buffer(genuine[0])
    plain.parse_buffer(forger.pack(heartbeat()))
    after = plain.parse_buffer(genuine[1])
    assert after[0].get_type() == "BAD_DATA"


# --- the real flight -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_flight():
    if not REAL_FLIGHT.exists():
        pytest.skip(f"real flight log not found at {REAL_FLIGHT} (../shared/data is absent)")
    return REAL_FLIGHT


def test_real_flight_every_vehicle_frame_pymavlink_reads(real_flight):
    reference = mavutil.mavlink_connection(str(real_flight))
    expected, no_fix, no_position = [], 0, 0
    while (msg := reference.recv_msg()) is not None:
        if msg.get_type() == "BAD_DATA" or msg.get_srcSystem() == 255:
            continue
        expected.append(bytes(msg.get_msgbuf()))
        no_fix += msg.get_type() == "GPS_RAW_INT" and msg.fix_type < 3
        no_position += msg.get_type() == "GLOBAL_POSITION_INT" and msg.lat == 0
    reference.close()

    receiver = make_receiver(history=1024)
    delivered = collect(receiver)
    receiver.read_tlog(real_flight)
    counters = receiver.counters
    assert delivered == expected
    assert counters.gps_no_fix == no_fix > 100 and counters.invalid_values == no_position > 100
    assert counters.ground_station > 1000 and counters.bad_crc > 1000  # the GCS's garbled frames

    vehicle = receiver.vehicles[1]
    link = vehicle.link
    # The autopilot rebooted during the 18.8 s gap; the radio dropped out twice for 3+ s.
    assert vehicle.reboots == 1 and link.link_losses == 2
    # Loss from sequence gaps: small but not zero on this SiK link, and never
    # more than pymavlink's own count (which also counts the outages' wraps).
    assert 0 < link.lost < 0.02 * link.received
    assert link.lost <= reference.mav_loss
    assert receiver.radio is not None and receiver.radio.rssi is not None
