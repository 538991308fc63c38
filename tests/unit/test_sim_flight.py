"""Generated flights: readable by pymavlink, at realistic rates, consistent with their truth."""

import json
import math
from collections import defaultdict

import numpy as np
import pytest
from pymavlink import mavutil
from pyproj import Geod

from sim_hw.__main__ import main as sim_main
from sim_hw.flight import FIXED_WING, MULTIROTOR, fly, loiter_waypoints
from sim_hw.telemetry import RATES
from sim_hw.terrain import ground_up
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

DURATION = 240.0
TARGET = (500.0, 900.0)


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("flight") / "patrol.tlog"
    argv = ["generate", "--out", str(out), "--duration", str(DURATION), "--sysid", "7",
            "--start", "1767225600", "--gimbal-target", *map(str, TARGET)]  # fmt: skip
    assert sim_main(argv) == 0
    messages = defaultdict(list)
    log = mavutil.mavlink_connection(str(out))
    while (msg := log.recv_match()) is not None:
        messages[msg.get_type()].append(msg)
    truth = [json.loads(line) for line in open(f"{out}.truth.jsonl")]
    return messages, truth


def test_every_message_type_at_its_rate(flight):
    messages, _ = flight
    assert set(messages) == set(RATES)
    for name, period in RATES.items():
        expected = DURATION / period
        assert abs(len(messages[name]) - expected) <= max(2, 0.02 * expected), name
    assert {m.get_srcSystem() for ms in messages.values() for m in ms} == {7}


def test_positions_match_the_truth(flight):
    messages, truth = flight
    by_time = {round(row["t"] - 1767225600, 2): row for row in truth}
    checked = 0
    for msg in messages["GLOBAL_POSITION_INT"]:
        t = round(msg.time_boot_ms / 1000 - 60.0, 2)
        row = by_time.get(t)
        if row is None:
            continue
        assert msg.lat / 1e7 == pytest.approx(row["lat"], abs=2e-7)
        assert msg.lon / 1e7 == pytest.approx(row["lon"], abs=2e-7)
        assert msg.relative_alt / 1000 == pytest.approx(row["enu"][2], abs=2e-3)
        checked += 1
    assert checked > 0.9 * len(messages["GLOBAL_POSITION_INT"])


def test_camera_footprint_centre_is_the_commanded_ground_point(flight):
    messages, _ = flight
    frame = EnuFrame(22.694, 14.180, 700.0)
    target_lat, target_lon, _ = frame.to_geodetic(*TARGET, ground_up(frame, *TARGET))
    geod = Geod(ellps="WGS84")
    for msg in messages["CAMERA_FOV_STATUS"]:
        if msg.lat_image == 2**31 - 1 or msg.alt_camera - 700_000 < 10_000:
            continue  # on the ground or below 10 m: no footprint worth checking
        *_, distance = geod.inv(target_lon, target_lat, msg.lon_image / 1e7, msg.lat_image / 1e7)
        assert distance < 0.05
        # The ground is flat at the post's ellipsoid height, not the ENU tangent plane.
        assert msg.alt_image / 1000 == pytest.approx(700.0, abs=0.005)


def test_battery_drains(flight):
    messages, _ = flight
    remaining = [m.battery_remaining for m in messages["BATTERY_STATUS"]]
    assert remaining[0] == 100 and remaining[-1] < remaining[0]
    assert all(b <= a for a, b in zip(remaining, remaining[1:], strict=False))


def test_multirotor_tilts_into_its_acceleration():
    trajectory = fly(MULTIROTOR, [np.array([0.0, 1500.0, 100.0])], duration=200.0)
    acceleration = np.gradient(trajectory.velocity[:, 1], trajectory.t)
    outbound = trajectory.velocity[:, 1] > 1.0  # flying north, nose north
    speeding_up = outbound & (acceleration > 1.0)
    slowing_down = outbound & (acceleration < -1.0)
    assert speeding_up.any() and slowing_down.any()
    # Flying north (yaw 0): nose down to accelerate, nose up to brake.
    assert np.all(trajectory.pitch[speeding_up] < 0)
    assert np.all(trajectory.pitch[slowing_down] > 0)
    assert np.max(np.abs(trajectory.velocity[:, :2])) <= MULTIROTOR.cruise_speed + 0.5


def test_fixed_wing_banks_as_a_coordinated_turn():
    waypoints = loiter_waypoints((0.0, 2000.0), radius=400.0, altitude=150.0, turns=3)
    trajectory = fly(FIXED_WING, waypoints, duration=400.0)
    # Sample k holds the heading after the step flown with sample k's bank.
    yaw_rate = np.diff(np.unwrap(trajectory.yaw)) / np.diff(trajectory.t)
    speed = np.linalg.norm(trajectory.velocity[1:], axis=1)
    roll = trajectory.roll[1:]
    turning = np.abs(yaw_rate) > 0.01
    assert turning.mean() > 0.5
    expected = np.arctan(speed[turning] * yaw_rate[turning] / 9.80665)
    assert np.allclose(roll[turning], expected, atol=math.radians(0.5))
    assert np.max(np.abs(trajectory.roll)) <= FIXED_WING.max_bank + 1e-9


def test_each_component_numbers_its_frames_one_by_one(tmp_path):
    out = tmp_path / "short.tlog"
    assert sim_main(["generate", "--out", str(out), "--duration", "60"]) == 0
    by_component = defaultdict(list)
    log = mavutil.mavlink_connection(str(out))
    while (msg := log.recv_match()) is not None:
        by_component[msg.get_srcComponent()].append(msg.get_seq())
    assert set(by_component) == {1, 100, 154}
    for numbers in by_component.values():
        assert len(numbers) > 256  # wraps at least once
        assert all((b - a) % 256 == 1 for a, b in zip(numbers, numbers[1:], strict=False))
