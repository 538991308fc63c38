"""A real ground-station stack, MAVSDK, reads a replayed generated flight over UDP."""

import subprocess
import sys
import time

import pytest
from pymavlink import mavutil

from sim_hw.__main__ import main as sim_main
from stack.process import free_udp_port

mavsdk = pytest.importorskip("mavsdk", reason="MAVSDK (the test extra) is not installed")
from mavsdk.plugins.telemetry import Telemetry  # noqa: E402

pytestmark = pytest.mark.integration




def logged_positions(path):
    """(lat e7, lon e7, relative alt mm) of every GLOBAL_POSITION_INT in the log."""
    log = mavutil.mavlink_connection(str(path))
    positions = set()
    while (msg := log.recv_match(type="GLOBAL_POSITION_INT")) is not None:
        positions.add((msg.lat, msg.lon, msg.relative_alt))
    return positions


def test_mavsdk_sees_the_vehicle_and_the_logged_positions(tmp_path):
    path = tmp_path / "flight.tlog"
    assert sim_main(["generate", "--out", str(path), "--duration", "120", "--sysid", "4"]) == 0
    port = free_udp_port()
    config = mavsdk.Configuration.create_with_component_type(mavsdk.ComponentType.GROUND_STATION)
    ground_station = mavsdk.Mavsdk(config)
    replay = None
    try:
        ground_station.add_any_connection(f"udpin://127.0.0.1:{port}")
        replay = subprocess.Popen(
            [sys.executable, "-m", "sim_hw", "replay", str(path),
             "--to", f"udpout:127.0.0.1:{port}", "--speed", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        vehicle = ground_station.first_autopilot(15.0)
        assert vehicle is not None, "MAVSDK found no autopilot"
        received = []
        telemetry = Telemetry(vehicle)
        telemetry.subscribe_position(lambda position, _: received.append(position))
        time.sleep(4.0)
    finally:
        if replay is not None:
            replay.kill()
            replay.wait()
        ground_station.destroy()

    logged = logged_positions(path)
    assert len(received) > 100  # 10 Hz x 10 speed for 4 s, less start-up
    for position in received:
        key = (
            round(position.latitude_deg * 1e7),
            round(position.longitude_deg * 1e7),
            round(position.relative_altitude_m * 1000),
        )
        assert key in logged
    assert max(p.relative_altitude_m for p in received) > 50  # it took off
