"""Replays over real UDP sockets, read back by pymavlink's own parser."""

import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as dialect

from hq.broker import free_tcp_port
from sim_hw.__main__ import main as sim_main
from sim_hw.replay import ReplayStats, load, replay
from stack.process import free_udp_port

pytestmark = pytest.mark.integration




@contextmanager
def udp_link():
    """(receiving socket, link): what the link writes arrives at the socket, over loopback."""
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:  # fmt: skip
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock.bind(("127.0.0.1", port))
        sender.connect(("127.0.0.1", port))

        class Link:
            def write(self, data):
                sender.send(data)

        yield sock, Link()


def receive_frames(sock, expected, timeout=20.0):
    """Datagrams parsed by pymavlink, until `expected` messages or a quiet timeout."""
    parser = dialect.MAVLink(None)
    parser.robust_parsing = True
    messages = []
    sock.settimeout(timeout)
    while len(messages) < expected:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        messages += [m for m in parser.parse_buffer(data) or [] if m.get_type() != "BAD_DATA"]
    return messages


@pytest.fixture(scope="module")
def generated_flight(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "flight.tlog"
    assert sim_main(["generate", "--out", str(path), "--duration", "60", "--sysid", "3"]) == 0
    return path


def test_replay_delivers_every_vehicle_frame_in_order(generated_flight):
    stats = ReplayStats()
    frames = load(str(generated_flight), stats)
    with udp_link() as (sock, link):
        thread = threading.Thread(target=replay, args=(frames, link, 30.0, stats))
        thread.start()
        messages = receive_frames(sock, len(frames))
        thread.join()
    assert stats.sent == len(frames)
    assert len(messages) == len(frames)
    assert [m.get_msgbuf() for m in messages] == [f.raw for f in frames]
    # At 30x the 60 s flight lasts 2 s; the recorded spacing is kept.
    assert stats.lateness_percentiles()["p50_ms"] < 50


def test_command_line_replay_to_udpout(generated_flight):
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock.bind(("127.0.0.1", port))
        process = subprocess.Popen(
            [sys.executable, "-m", "sim_hw", "replay", str(generated_flight),
             "--to", f"udpout:127.0.0.1:{port}", "--speed", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Read while it sends, so that the socket buffer never overflows.
        messages = receive_frames(sock, 10**9, timeout=5.0)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    positions = [m for m in messages if m.get_type() == "GLOBAL_POSITION_INT"]
    assert len(positions) == 600 and {m.get_srcSystem() for m in messages} == {3}
    assert stdout.startswith(f"sent {len(messages)} frames")


def test_replay_answers_a_ground_station_like_an_autopilot(generated_flight):
    port = free_udp_port()
    ground_station = mavutil.mavlink_connection(
        f"udpin:127.0.0.1:{port}", source_system=255, dialect="ardupilotmega"
    )
    replayer = subprocess.Popen(
        [sys.executable, "-m", "sim_hw", "replay", str(generated_flight),
         "--to", f"udpout:127.0.0.1:{port}", "--speed", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        heartbeat = ground_station.recv_match(type="HEARTBEAT", blocking=True, timeout=20)
        assert heartbeat is not None and heartbeat.get_srcSystem() == 3
        replies = {}
        for wanted in ("AUTOPILOT_VERSION", "HOME_POSITION"):
            msgid = getattr(dialect, f"MAVLINK_MSG_ID_{wanted}")
            ground_station.mav.command_long_send(
                3, 1, dialect.MAV_CMD_REQUEST_MESSAGE, 0, msgid, 0, 0, 0, 0, 0, 0
            )
            ack = ground_station.recv_match(type="COMMAND_ACK", blocking=True, timeout=10)
            assert ack is not None and ack.result == dialect.MAV_RESULT_ACCEPTED
            replies[wanted] = ground_station.recv_match(type=wanted, blocking=True, timeout=10)
        ground_station.mav.command_long_send(
            3, 1, dialect.MAV_CMD_DO_SET_MODE, 0, 1, 4, 0, 0, 0, 0, 0
        )
        ack = ground_station.recv_match(type="COMMAND_ACK", blocking=True, timeout=10)
        assert ack is not None and ack.result == dialect.MAV_RESULT_UNSUPPORTED
    finally:
        replayer.kill()
        replayer.wait()
        ground_station.close()
    assert replies["AUTOPILOT_VERSION"].capabilities & dialect.MAV_PROTOCOL_CAPABILITY_MAVLINK2
    home = replies["HOME_POSITION"]
    assert home.get_srcSystem() == 3
    assert (home.latitude, home.longitude) == (round(22.694 * 1e7), round(14.180 * 1e7))


@pytest.mark.parametrize("receiver_key_matches", [True, False])
def test_signed_replay_is_accepted_only_with_the_key(generated_flight, tmp_path,
                                                     receiver_key_matches):  # fmt: skip
    key = bytes(range(32))
    key_file = tmp_path / "signing.key"
    key_file.write_text(key.hex())
    port = free_udp_port()
    receiver = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", dialect="ardupilotmega")
    receiver.setup_signing(key if receiver_key_matches else bytes(32), sign_outgoing=False,
                           allow_unsigned_callback=lambda *_: False)  # fmt: skip
    replayer = subprocess.Popen(
        [sys.executable, "-m", "sim_hw", "replay", str(generated_flight),
         "--to", f"udpout:127.0.0.1:{port}", "--speed", "30",
         "--signing-key-file", str(key_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    accepted = []
    try:
        while (msg := receiver.recv_match(blocking=True, timeout=5)) is not None:
            if msg.get_type() != "BAD_DATA":
                accepted.append(msg)
        replayer.communicate(timeout=60)
    finally:
        replayer.kill()
        receiver.close()
    signing = receiver.mav.signing
    if receiver_key_matches:
        assert len(accepted) > 1000 and signing.badsig_count == 0
        assert all(m.get_signed() for m in accepted)
    else:
        assert accepted == [] and signing.badsig_count > 1000


def test_restamped_replay_reports_the_present_with_the_recorded_spacing(generated_flight):
    stats = ReplayStats()
    frames = load(str(generated_flight), stats)
    with udp_link() as (sock, link):
        started = time.time()
        thread = threading.Thread(target=replay, args=(frames, link, 30.0, stats),
                                  kwargs={"restamp": True})  # fmt: skip
        thread.start()
        messages = receive_frames(sock, len(frames))
        thread.join()
    recorded = [dialect.MAVLink(None).decode(bytearray(f.raw)) for f in frames if f.msgid == 2]
    replayed = [m for m in messages if m.get_type() == "SYSTEM_TIME"]
    assert len(replayed) == len(recorded) > 50
    assert abs(replayed[0].time_unix_usec / 1e6 - started) < 1.0
    assert [m.time_unix_usec - replayed[0].time_unix_usec for m in replayed] == [
        m.time_unix_usec - recorded[0].time_unix_usec for m in recorded
    ]
    # Our simulator's GPS_RAW_INT carries UTC too; it moves by the same amount.
    shift = replayed[0].time_unix_usec - recorded[0].time_unix_usec
    gps_recorded = [dialect.MAVLink(None).decode(bytearray(f.raw)) for f in frames if f.msgid == 24]
    gps_replayed = [m for m in messages if m.get_type() == "GPS_RAW_INT"]
    assert [m.time_usec for m in gps_replayed] == [m.time_usec + shift for m in gps_recorded]
    assert [m.time_boot_ms for m in replayed] == [m.time_boot_ms for m in recorded]


def test_command_line_replay_applies_a_fault_plan(generated_flight, tmp_path):
    plan = tmp_path / "faults.toml"
    plan.write_text("seed = 4\nloss = 0.05\ncuts = [[20.0, 10.0]]\ngps_dropouts = [[5.0, 5.0]]\n")
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock.bind(("127.0.0.1", port))
        process = subprocess.Popen(
            [sys.executable, "-m", "sim_hw", "replay", str(generated_flight),
             "--to", f"udpout:127.0.0.1:{port}", "--speed", "30", "--faults", str(plan)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        messages = receive_frames(sock, 10**9, timeout=5.0)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    total = len(load(str(generated_flight), ReplayStats()))
    # 10 of 60 s cut, then 5 % of the rest lost at random.
    assert 0.75 * total < len(messages) < 0.82 * total
    no_fix = [m for m in messages if m.get_type() == "GPS_RAW_INT" and m.fix_type == 0]
    assert 15 <= len(no_fix) <= 25  # 5 s of a 5 Hz GPS, less the random loss
    assert f"sent {len(messages)} frames" in stdout and "cut=" in stdout


def test_replay_serves_a_tcp_client_every_frame_whole(generated_flight):
    port = free_tcp_port()
    replayer = subprocess.Popen(
        [sys.executable, "-m", "sim_hw", "replay", str(generated_flight),
         "--to", f"tcpin:127.0.0.1:{port}", "--speed", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = None
    try:
        deadline = time.monotonic() + 20
        while client is None and time.monotonic() < deadline:
            try:
                client = mavutil.mavlink_connection(f"tcp:127.0.0.1:{port}", retries=0,
                                                    source_system=255)  # fmt: skip
            except OSError:
                time.sleep(0.1)
        assert client is not None, "the replay never listened"
        received = []
        while (msg := client.recv_match(blocking=True, timeout=5)) is not None:
            received.append(msg)
        replayer.communicate(timeout=60)
    finally:
        replayer.kill()
        if client is not None:
            client.close()
    assert not [m for m in received if m.get_type() == "BAD_DATA"]
    # A TCP client that connects late misses the start, then gets the rest, whole and in order.
    sent = [f.raw for f in load(str(generated_flight), ReplayStats())]
    got = [bytes(m.get_msgbuf()) for m in received]
    first = sent.index(got[0])
    assert len(got) > 0.5 * len(sent)
    assert got == sent[first : first + len(got)] and first + len(got) == len(sent)


def test_a_scenario_set_in_the_present_replays_at_the_wall_clock(tmp_path):
    # Scenario time 0 was 30 s ago: the replay skips to now (less its lead) and then
    # sends every frame when the wall clock reaches the UTC the vehicle reports in it.
    epoch = time.time() - 30.0
    assert sim_main(["scenario", "configs/scenarios/small.toml", "--out", str(tmp_path),
                     "--epoch", str(epoch)]) == 0  # fmt: skip
    stats = ReplayStats()
    frames = load(str(tmp_path / "small-sysid1.tlog"), stats)
    assert abs(frames[0].time - epoch) < 60.0  # the log itself is in the present

    stop = threading.Event()
    with udp_link() as (sock, link):
        thread = threading.Thread(target=replay, args=(frames, link, 1.0, stats),
                                  kwargs={"stop": stop, "wall_clock_lead_s": 2.0})  # fmt: skip
        started = time.time()
        thread.start()
        parser = dialect.MAVLink(None)
        arrivals = []  # (wall time of arrival, UTC the frame reports)
        sock.settimeout(5.0)
        while time.time() - started < 4.0:
            for message in parser.parse_buffer(sock.recv(65535)) or []:
                if message.get_type() == "SYSTEM_TIME":
                    arrivals.append((time.time(), message.time_unix_usec * 1e-6))
        stop.set()
        thread.join()
    assert stats.skipped_past > 0
    reported = [utc for _, utc in arrivals]
    assert min(reported) >= started - 2.5  # nothing from before the lead
    live = [(wall, utc) for wall, utc in arrivals if wall > started + 1.0]
    assert len(live) >= 2
    assert all(abs(wall - utc) < 0.25 for wall, utc in live)
