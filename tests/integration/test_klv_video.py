"""KLV motion imagery end to end: the simulator's MPEG-TS (file, UDP unicast, UDP multicast
on this host's loopback only) through PyAV into frames in UTC, poses and georeferenced
frame centres, against the simulator's truth; and `python -m edge klv` on it and on the
shared KWIVER file."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from pyproj import Geod

from edge.drivers.camera import CameraConfig, CameraDriver
from edge.drivers.klv_camera import KlvCamera
from edge.drivers.video_ts import KlvUnit, TsDemuxer
from edge.georef import camera_to_ned
from stack.process import free_udp_port
from tests.conftest import PROJECT_ROOT, SHARED_DATA

pytestmark = pytest.mark.integration

SCENARIO = PROJECT_ROOT / "configs" / "scenarios" / "small.toml"
KWIVER_FILE = SHARED_DATA / "video" / "misb0601-synthetic-h264.ts"
GEOD = Geod(ellps="WGS84")
KEYS = {"time", "standard", "platform", "sensor", "klv_frame_centre", "georef_frame_centre"}
SUBKEYS = {"platform": {"lat", "lon", "alt_hae", "heading", "pitch", "roll"},
           "sensor": {"lat", "lon", "alt_hae", "rel_azimuth", "rel_elevation", "rel_roll",
                      "hfov", "vfov"},
           "klv_frame_centre": {"lat", "lon", "alt_hae"},
           "georef_frame_centre": {"lat", "lon", "alt_hae", "covariance_enu_m2"}}  # fmt: skip


def sim(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim_hw", "klv-video", str(SCENARIO),
                             "--sysid", "1", "--width", "640", "--height", "360", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Six seconds of the small scenario's drone camera, the drone banking on its patrol."""
    path = tmp_path_factory.mktemp("klv") / "drone1.ts"
    process = sim("--out", str(path), "--start", "60", "--duration", "6")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    truth = [json.loads(line) for line in open(f"{path}.frames.jsonl")]
    return path, truth


def klv_lines(source) -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "edge", "klv", str(source), "--json"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def distance(a: dict, b: dict) -> float:
    return GEOD.inv(a["lon"], a["lat"], b["lon"], b["lat"])[2]


def test_the_command_prints_the_issues_keys_and_meets_the_simulators_frame_centre(recording):
    path, truth = recording
    lines = klv_lines(path)
    assert len(lines) == len(truth) == 150
    for line, frame in zip(lines, truth, strict=True):
        assert set(line) == KEYS
        for key, names in SUBKEYS.items():
            assert set(line[key]) == names, key
        assert line["standard"] == "ST0601"
        assert line["time"] == pytest.approx(frame["time"], abs=1e-6)
        assert line["platform"]["lat"] == pytest.approx(frame["pose"]["lat"], abs=1e-7)
        # The simulator's encoder wrote its own ground truth as the frame centre; ours comes
        # from the pose alone. Quantisation of the angles (84 ndeg) and heights (0.3 m)
        # keeps them within centimetres.
        assert distance(line["georef_frame_centre"], line["klv_frame_centre"]) < 0.5
        covariance = np.array(line["georef_frame_centre"]["covariance_enu_m2"])
        assert np.all(np.linalg.eigvalsh(covariance) > 0)


def test_the_shared_kwiver_file_through_the_command():
    if not KWIVER_FILE.exists():
        pytest.skip(f"shared data not present: {KWIVER_FILE}")
    lines = klv_lines(KWIVER_FILE)
    assert len(lines) == 30
    assert all(set(line) == KEYS and line["standard"] == "ST0601" for line in lines)
    # The file's frame centres are synthetic values unrelated to its sensor (the sensor over
    # Siberia, the centre in Africa): stated as the packet says, whatever they are.
    assert lines[0]["klv_frame_centre"]["lat"] == pytest.approx(-10.5423886, abs=1e-6)
    assert lines[0]["platform"]["alt_hae"] == pytest.approx(23456.234375)


def pointing(pose) -> np.ndarray:
    """The optical axis in the local NED frame."""
    return camera_to_ned(pose)[:, 0]


def test_frames_come_in_utc_with_the_pose_of_their_moment(recording):
    path, truth = recording
    klv = KlvCamera()
    driver = CameraDriver(CameraConfig(str(path), pacing="every"), opener=klv.open).start()
    frames = []
    try:
        while (frame := driver.latest(timeout=20.0)) is not None:
            frames.append((frame.time, klv.pose_at(frame.time)))
    finally:
        driver.stop()
    times = {round(f["time"], 3): f["pose"] for f in truth}
    assert len(frames) >= len(truth) - 1  # the last frame waits for a packet that never comes
    from edge.georef import Pose

    for t, pose in frames:
        true = Pose(**(times[round(t, 3)] | {"gimbal_frame": "earth"}))
        assert pose.lat == pytest.approx(true.lat, abs=1e-7)
        assert pose.alt == pytest.approx(true.alt, abs=0.1)
        angle = math.degrees(math.acos(min(1.0, float(pointing(pose) @ pointing(true)))))
        assert angle < 0.01, t
    assert klv.counters.frames_without_time == 0


def read_live(url: str, frames_wanted: int) -> tuple[int, int]:
    demuxer = TsDemuxer(url, timeout_s=20.0)
    frames = packets = 0
    try:
        for unit in demuxer:
            if isinstance(unit, KlvUnit):
                packets += 1
            elif unit.image is not None:
                frames += 1
                if frames >= frames_wanted:
                    break
    finally:
        demuxer.close()
    return frames, packets


@pytest.mark.parametrize("group", [None, "239.255.42.7"])
def test_live_over_udp_unicast_and_multicast(group):
    """Multicast with a time to live of 0 on the loopback interface: it never leaves."""
    port = free_udp_port()
    epoch = time.time() - 60.0
    address = group or "127.0.0.1"
    extra = ["--ttl", "0", "--interface", "127.0.0.1"] if group else []
    sender = sim("--udp", f"{address}:{port}", "--epoch", repr(epoch), "--start", "63",
                 "--duration", "40", *extra)  # fmt: skip
    try:
        url = f"udp://{address}:{port}" + ("?localaddr=127.0.0.1" if group else "")
        frames, packets = read_live(url, frames_wanted=40)
    finally:
        sender.kill()
        sender.wait()
    assert frames == 40 and packets >= 35


def test_a_damaged_recording_is_read_with_the_damage_counted(recording, tmp_path):
    """Bytes flipped all through the transport stream: the command goes on to the end,
    prints only packets that passed their checks, and counts the rest."""
    path, _ = recording
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(11)
    for at in rng.integers(0, len(data), 3000):
        data[at] ^= 0xFF
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    result = subprocess.run([sys.executable, "-m", "edge", "klv", str(damaged), "--json"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    counters = json.loads(result.stderr.split("klv counters: ", 1)[1])
    refused = counters["demux"]["klv"]["refused"]
    assert 50 < len(lines) < 150 and sum(refused.values()) > 0, (len(lines), counters)
    for line in lines:  # what passed the checksum is right: our centre meets the packet's
        if line["georef_frame_centre"]["lat"] is not None:
            assert distance(line["georef_frame_centre"], line["klv_frame_centre"]) < 0.5
