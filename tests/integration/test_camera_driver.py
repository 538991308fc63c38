"""The camera driver against a real MJPEG server over HTTP and a real video file.

The server here is a few lines of http.server that play a script of JPEG
parts per connection (multipart/x-mixed-replace, as IP cameras serve it), so
that tests choose what arrives, when, and when the server goes away.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from edge.drivers.camera import CameraConfig, CameraDriver

pytestmark = pytest.mark.integration

BOUNDARY = "testframe"


class ScriptedMjpegServer:
    """Plays `script(connection_number)` to each client: (body, X-Timestamp or None, pause s)."""

    def __init__(self, script, port: int = 0):
        self.script = script
        self.connections = 0
        self._closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def close(self) -> None:
        """Stop listening and end every stream (its handler sees the flag at the next part)."""
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802 (the name http.server calls)
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type",
                                 f"multipart/x-mixed-replace; boundary={BOUNDARY}")  # fmt: skip
                self.end_headers()
                try:
                    for body, stamp, pause in server.script(server.connections):
                        if server._closing.is_set():
                            return
                        head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        head += f"Content-Length: {len(body)}\r\n"
                        if stamp is not None:
                            head += f"X-Timestamp: {stamp:.6f}\r\n"
                        self.wfile.write(head.encode() + b"\r\n" + body + b"\r\n")
                        self.wfile.flush()
                        if server._closing.wait(pause):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    return  # the driver hung up: fine

            def log_message(self, *args):
                pass

        return Handler


def scene(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """A grey test image with texture, so no check mistakes it for a blank frame."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    return np.clip(ramp + rng.normal(0, 8, (height, width)), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def collect(driver: CameraDriver, count: int, timeout: float, pause: float = 0.0) -> list:
    """Up to `count` frames from the driver within `timeout` s, taking one every `pause` s."""
    frames = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frame = driver.latest(timeout=0.2)
        if frame is not None:
            frames.append(frame)
            time.sleep(pause)
        elif driver.status().ended:
            break
    return frames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.close()


def test_reads_mjpeg_frames_with_the_parts_timestamps(servers):
    body = jpeg(scene())
    server = ScriptedMjpegServer(lambda _: ((body, 1000.0 + k, 0.02) for k in range(40)))
    servers.append(server)
    with CameraDriver(CameraConfig(server.url, latency=0.25)) as driver:
        frames = collect(driver, 10, timeout=10.0)
        status, metrics = driver.status(), driver.metrics()
    assert len(frames) == 10
    times = [f.time for f in frames]
    assert times == sorted(set(times)), "each frame once, in order"
    assert all(t == int(t) and 1000 <= t < 1040 for t in times), "X-Timestamp, not arrival"
    assert all(f.source_time for f in frames)
    assert frames[0].image.shape == (120, 160)
    assert status.connected and status.fps > 0
    assert status.counters.connects == 1 and status.counters.rejected == {}
    assert metrics["camera_frames_accepted_total"] >= 10 and metrics["camera_fps"] > 0


def test_a_server_that_stops_mid_stream_is_reconnected_and_frames_resume(servers):
    body = jpeg(scene())
    epoch = {"value": 1000.0}

    def endless(_connection):
        k = 0
        while True:
            yield body, epoch["value"] + k, 0.02
            k += 1

    first = ScriptedMjpegServer(endless)
    servers.append(first)
    config = CameraConfig(first.url, reconnect_min=0.1, reconnect_max=0.3)
    with CameraDriver(config) as driver:
        assert len(collect(driver, 5, timeout=10.0)) == 5
        first.close()
        time.sleep(0.5)  # down for a while: the driver's attempts fail and back off
        epoch["value"] = 2000.0
        second = ScriptedMjpegServer(endless, port=first.port)
        servers.append(second)
        resumed = [f for f in collect(driver, 30, timeout=10.0) if f.time >= 2000.0]
        counters = driver.status().counters
    assert resumed, "frames of the restarted server arrive"
    assert counters.disconnects >= 1
    assert counters.reconnects >= 1


def test_a_stalled_stream_is_reopened(servers):
    body = jpeg(scene())

    def stall_once(connection):
        for k in range(3):
            yield body, 100.0 * connection + k, 0.02
        if connection == 1:
            yield body, 100.0 + 3, 30.0  # then silence, the connection left open
        for k in range(4, 40):
            yield body, 100.0 * connection + k, 0.02

    server = ScriptedMjpegServer(stall_once)
    servers.append(server)
    config = CameraConfig(server.url, stall_timeout=0.5, reconnect_min=0.1)
    with CameraDriver(config) as driver:
        frames = collect(driver, 12, timeout=10.0)
        counters = driver.status().counters
    assert counters.stalls >= 1 and counters.reconnects >= 1
    assert any(f.time >= 200.0 for f in frames), "frames of the second connection"


def test_a_slow_consumer_sees_only_the_newest_frame_and_memory_stays_bounded(servers):
    body = jpeg(scene(640, 512))  # 330 kB decoded: a queue of them would show at once

    def fast(_connection):
        while True:
            yield body, time.time(), 0.005

    server = ScriptedMjpegServer(fast)
    servers.append(server)
    with CameraDriver(CameraConfig(server.url)) as driver:
        assert driver.latest(timeout=10.0) is not None
        tracemalloc.start()
        try:
            frames, pending = [], []
            for _ in range(8):
                time.sleep(0.15)  # the consumer's slow work
                frame = driver.latest(timeout=1.0)
                frames.append((frame, time.time()))
                pending.append(driver.status().pending)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        counters = driver.status().counters
    assert all(frame is not None for frame, _ in frames)
    assert max(pending) <= 1
    assert counters.dropped > 0
    assert counters.frames_delivered < counters.frames_accepted
    sequences = [frame.sequence for frame, _ in frames]
    assert all(b - a > 1 for a, b in zip(sequences, sequences[1:], strict=False)), sequences
    # The newest frame: stamped by the server a moment before the consumer took it,
    # where a queue would hand out frames ever more consumer periods (0.15 s) old.
    ages = [taken - frame.time for frame, taken in frames]
    assert float(np.median(ages)) < 0.1, ages
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB: frames are queuing"


def test_corrupt_blank_and_wrong_size_frames_are_counted_and_skipped(servers):
    good = scene()
    script = [
        (jpeg(good), 1.0),
        (b"not a jpeg at all" * 20, 2.0),
        (jpeg(good)[:300], 3.0),  # cut short
        (jpeg(np.zeros_like(good)), 4.0),
        (jpeg(np.full_like(good, 255)), 5.0),
        (jpeg(scene(80, 60)), 6.0),
        (b"", 7.0),
        (jpeg(np.full_like(good, 128)), 8.0),  # a shutter (flat-field) frame
        (jpeg(good), 9.0),
        (jpeg(good), 10.0),
    ]
    server = ScriptedMjpegServer(
        lambda n: ((body, stamp, 0.05) for body, stamp in script) if n == 1 else iter(()))
    servers.append(server)
    with CameraDriver(CameraConfig(server.url, reconnect_min=5.0)) as driver:
        frames = collect(driver, 3, timeout=10.0)
        counters, metrics = driver.status().counters, driver.metrics()
    assert [f.time for f in frames] == [1.0, 9.0, 10.0]
    assert metrics['camera_rejected_total{reason="corrupt"}'] == 2
    assert counters.rejected == {"corrupt": 2, "black": 1, "saturated": 1, "wrong_size": 1,
                                 "empty": 1, "flat": 1}  # fmt: skip
    assert counters.frames_read == 10 and counters.frames_accepted == 3


def test_a_video_file_takes_its_sidecars_times(tmp_path):
    video = tmp_path / "flight.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    assert writer.isOpened()
    base = 1_760_000_000.0
    times = [base + 0.1 * k + 0.003 * (k % 3) for k in range(12)]  # jittered, as real clocks are
    for k in range(12):
        image = np.zeros((120, 160), np.uint8) if k == 5 else scene(seed=k)
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    with open(f"{video}.frames.jsonl", "w") as sidecar:
        for k, t in enumerate(times):
            sidecar.write(json.dumps({"frame": k, "time": t}) + "\n")

    with CameraDriver(CameraConfig(str(video), pacing="every")) as driver:
        frames = collect(driver, 20, timeout=10.0)
        status = driver.status()
    assert [f.time for f in frames] == [t for k, t in enumerate(times) if k != 5]
    assert all(f.source_time for f in frames)
    assert status.ended and status.counters.rejected == {"black": 1}
    assert status.counters.dropped == 0


def test_an_unreachable_source_is_retried_without_raising():
    config = CameraConfig(f"http://127.0.0.1:{free_port()}/video.mjpg", reconnect_min=0.05,
                          reconnect_max=0.1)  # fmt: skip
    with CameraDriver(config) as driver:
        assert driver.latest(timeout=0.6) is None
        status = driver.status()
    assert status.counters.connect_failures >= 3
    assert not status.connected


def test_asking_a_silent_camera_for_a_frame_does_not_wait():
    # The node's loop asks each camera in turn; a camera that sends nothing must not stall
    # it (nor the track batches and status it publishes between frames).
    config = CameraConfig(f"http://127.0.0.1:{free_port()}/video.mjpg")
    with CameraDriver(config) as driver:
        began = time.monotonic()
        assert driver.latest() is None
        assert time.monotonic() - began < 0.1
