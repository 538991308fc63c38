"""The MAVLink driver on real sockets, with the simulator's replay as the vehicle."""

import json
import math
import random
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from edge.drivers.mavlink import MavlinkConfig, MavlinkDriver
from sim_hw.__main__ import main as sim_main
from sim_hw.tlog import read_tlog

pytestmark = pytest.mark.integration

SPEED = "50"


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def flights(tmp_path_factory):
    """Two simulated 60 s flights: system 3 on patrol, system 4 circling."""
    folder = tmp_path_factory.mktemp("driver")
    paths = {}
    for sysid, plan in ((3, "patrol"), (4, "loiter")):
        path = folder / f"vehicle{sysid}.tlog"
        assert sim_main(["generate", "--out", str(path), "--duration", "60",
                         "--sysid", str(sysid), "--plan", plan]) == 0  # fmt: skip
        paths[sysid] = path
    return paths


def truth_of(path) -> list[dict]:
    with open(f"{path}.truth.jsonl") as lines:
        return [json.loads(line) for line in lines]


def start_replay(path, port, *options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sim_hw", "replay", str(path),
         "--to", f"udpout:127.0.0.1:{port}", "--speed", SPEED, *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def frames_sent(process) -> int:
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    return int(re.match(r"sent (\d+) frames", stdout).group(1))


def wait_for(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def started(config: MavlinkConfig) -> MavlinkDriver:
    driver = MavlinkDriver(config).start()
    assert wait_for(lambda: driver.connected, 5.0)
    return driver


def assert_poses_match_truth(driver, sysid, truth):
    vehicle = driver.receiver.vehicles[sysid]
    first, last = vehicle.position.times[0], vehicle.position.times[-1]
    rows = [row for row in truth if first <= row["t"] <= last]
    assert len(rows) > 500
    position_errors, attitude_errors = [], []
    for row in rows:
        pose = driver.pose_at(sysid, row["t"])
        north = math.radians(pose.lat - row["lat"]) * 6_378_137
        east = math.radians(pose.lon - row["lon"]) * 6_378_137 * math.cos(math.radians(row["lat"]))
        position_errors.append(math.sqrt(north**2 + east**2 + (pose.alt - row["alt"]) ** 2))
        true = Rotation.from_euler("ZYX", [row["yaw"], row["pitch"], row["roll"]])
        attitude_errors.append(math.degrees((true.inv() * pose.attitude).magnitude()))
    assert max(position_errors) < 0.1
    assert np.median(attitude_errors) < 0.05 and np.percentile(attitude_errors, 99) < 0.5


def test_udp_replay_poses_match_truth_then_the_link_times_out_and_recovers(flights):
    port = free_port()
    driver = started(MavlinkConfig(f"udpin:127.0.0.1:{port}"))
    try:
        sent = frames_sent(start_replay(flights[3], port))
        ended = time.monotonic()
        assert wait_for(lambda: driver.status().counters.messages == sent)
        counters = driver.status().counters
        assert counters.lost == counters.duplicates == counters.bad_crc == 0
        assert_poses_match_truth(driver, 3, truth_of(flights[3]))

        # No heartbeat since the replay ended: ok for 3 s, then lost.
        time.sleep(max(0.0, ended + 2.0 - time.monotonic()))
        assert driver.status().vehicles[0].link.state == "ok"
        assert wait_for(lambda: driver.status().vehicles[0].link.state == "lost", 5.0)
        link = driver.status().vehicles[0].link
        assert link.heartbeat_age >= 3.0 and link.link_losses == 1

        # The vehicle comes back (the same log again: its boot clock restarts).
        frames_sent(start_replay(flights[3], port))
        vehicle = driver.status().vehicles[0]
        assert vehicle.link.state == "ok" and vehicle.link.link_losses == 1
        assert vehicle.reboots == 1
    finally:
        driver.stop()


def test_two_vehicles_at_once_on_one_port(flights):
    port = free_port()
    driver = started(MavlinkConfig(f"udpin:127.0.0.1:{port}"))
    try:
        replays = [start_replay(flights[sysid], port) for sysid in (3, 4)]
        sent = sum(frames_sent(process) for process in replays)
        assert wait_for(lambda: driver.status().counters.messages == sent)
        assert set(driver.receiver.vehicles) == {3, 4}
        for sysid in (3, 4):
            assert driver.receiver.vehicles[sysid].link.lost == 0
            assert_poses_match_truth(driver, sysid, truth_of(flights[sysid]))
    finally:
        driver.stop()


@pytest.mark.parametrize("sender_key", ["same", "other", "none"])
def test_a_signed_link_takes_only_frames_signed_with_its_key(flights, tmp_path, sender_key):
    key = bytes(range(32))
    options = []
    if sender_key != "none":
        key_file = tmp_path / "sender.key"
        key_file.write_text((key if sender_key == "same" else bytes(32)).hex())
        options = ["--signing-key-file", str(key_file)]
    port = free_port()
    driver = started(MavlinkConfig(f"udpin:127.0.0.1:{port}", signing_key=key))
    try:
        sent = frames_sent(start_replay(flights[3], port, *options))

        def handled():
            c = driver.status().counters
            return c.messages + c.bad_signature + c.unsigned_rejected == sent

        assert wait_for(handled)
        counters = driver.status().counters
    finally:
        driver.stop()
    if sender_key == "same":
        assert counters.messages == sent and counters.bad_signature == 0
        assert set(driver.receiver.vehicles) == {3}
    elif sender_key == "other":
        assert counters.messages == 0 and counters.bad_signature == sent
        assert driver.receiver.vehicles == {}
    else:
        assert counters.messages == 0 and counters.unsigned_rejected == sent
        assert driver.receiver.vehicles == {}


def test_tcp_client_reconnects_with_back_off_and_loses_nothing(flights):
    frames = [f.raw for f in read_tlog(flights[4])][:2000]
    port = free_port(socket.SOCK_STREAM)
    config = MavlinkConfig(f"tcp:127.0.0.1:{port}", reconnect_min=0.05, reconnect_max=0.2)
    driver = MavlinkDriver(config).start()
    delivered = []
    driver.receiver.listeners.append(lambda msg, _t: delivered.append(bytes(msg.get_msgbuf())))
    try:
        # Nobody listens yet: the driver keeps trying.
        assert wait_for(lambda: driver.status().counters.connect_failures >= 2, 5.0)
        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(5.0)
            # Half the frames, the vehicle hangs up, the driver calls again: the rest.
            for done in (1000, 2000):
                vehicle, _ = server.accept()
                with vehicle:
                    send_in_pieces(vehicle, b"".join(frames[done - 1000 : done]))
                    assert wait_for(lambda done=done: len(delivered) == done)
        counters = driver.status().counters
    finally:
        driver.stop()
    assert delivered == frames
    assert counters.connects == 2 and counters.disconnects >= 1
    assert counters.connect_failures >= 2


def send_in_pieces(sock, data: bytes) -> None:
    """Arbitrary segment sizes, so that frames straddle the driver's reads."""
    rng = random.Random(11)
    position = 0
    while position < len(data):
        size = rng.randrange(1, 700)
        sock.sendall(data[position : position + size])
        position += size
