"""A live MJPEG stream over HTTP, as IP cameras serve it.

`GET /video.mjpg` answers `multipart/x-mixed-replace` with one JPEG part per
frame (each part carries Content-Length and the frame's UTC time in
X-Timestamp), which browsers, FFmpeg and `cv2.VideoCapture` read. Also:
`/frame.jpg` (the latest frame alone), `/truth.json` (the latest frame's
ground truth), `/metrics` (Prometheus text).

One producer publishes frames; each client has its own handler thread that
sends the newest frame whenever one arrives. A slow client skips frames rather
than holding up the producer or the other clients; a client that goes away is
counted and forgotten.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

BOUNDARY = "dunewatchframe"
STREAM_PATHS = ("/", "/video.mjpg", "/mjpeg")
WAIT_S = 1.0  # a client handler wakes this often to notice that the server is closing


@dataclass
class StreamCounters:
    frames_published: int = 0
    parts_sent: int = 0
    clients_connected: int = 0
    clients_gone: int = 0  # disconnected mid-stream
    requests_rejected: int = 0  # unknown paths


@dataclass(frozen=True)
class _Frame:
    seq: int
    jpeg: bytes
    time: float
    truth: dict | None


class MjpegServer:
    """Serves the latest published JPEG to every client; `port=0` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.counters = StreamCounters()
        self._count_lock = threading.Lock()  # handler threads count concurrently
        self._latest: _Frame | None = None
        self._changed = threading.Condition()
        self._closed = False
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True  # a stuck client never keeps the process alive
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mjpeg-http",
                                        daemon=True)  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/video.mjpg"

    def start(self) -> MjpegServer:
        self._thread.start()
        log.info("mjpeg serving url=%s", self.url)
        return self

    def publish(self, jpeg: bytes, time: float, truth: dict | None = None) -> None:
        """Make `jpeg` (the frame at UTC `time`) the frame every client gets next."""
        with self._changed:
            seq = 1 if self._latest is None else self._latest.seq + 1
            self._latest = _Frame(seq, jpeg, time, truth)
            self.count("frames_published")
            self._changed.notify_all()

    def next_frame(self, after_seq: int, timeout: float = WAIT_S) -> _Frame | None:
        """The latest frame once it is newer than `after_seq`; None on timeout or close."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or (
                self._latest is not None and self._latest.seq > after_seq), timeout)  # fmt: skip
            if self._closed or self._latest is None or self._latest.seq <= after_seq:
                return None
            return self._latest

    def count(self, counter: str) -> None:
        with self._count_lock:
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)

    @property
    def closed(self) -> bool:
        return self._closed

    def latest(self) -> _Frame | None:
        with self._changed:
            return self._latest

    def close(self) -> None:
        """End every stream and stop serving."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        log.info("mjpeg closed %s", self.counters)

    def metrics_text(self) -> str:
        c = self.counters
        lines = []
        for name, value in (("frames_published_total", c.frames_published),
                            ("parts_sent_total", c.parts_sent),
                            ("clients_connected_total", c.clients_connected),
                            ("clients_gone_total", c.clients_gone),
                            ("requests_rejected_total", c.requests_rejected)):  # fmt: skip
            lines += [f"# TYPE sim_camera_{name} counter", f"sim_camera_{name} {value}"]
        return "\n".join(lines) + "\n"


def _handler_for(server: MjpegServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the stream ends when the connection does
        server_version = "dunewatch-sim-camera/1"

        def do_GET(self):  # noqa: N802 (the name http.server calls)
            path = urlsplit(self.path).path
            try:
                if path in STREAM_PATHS:
                    self._stream()
                elif path in ("/frame.jpg", "/snapshot.jpg"):
                    frame = server.latest()
                    self._reply(frame.jpeg if frame else None, "image/jpeg")
                elif path == "/truth.json":
                    frame = server.latest()
                    body = json.dumps(frame.truth).encode() if frame and frame.truth else None
                    self._reply(body, "application/json")
                elif path == "/metrics":
                    self._reply(server.metrics_text().encode(), "text/plain; version=0.0.4")
                else:
                    server.count("requests_rejected")
                    self.send_error(404, f"no such stream: {path}; try /video.mjpg")
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                server.count("clients_gone")
                log.info("mjpeg client gone peer=%s path=%s", self.client_address[0], path)

        def _reply(self, body: bytes | None, content_type: str) -> None:
            if body is None:
                self.send_error(503, "no frame yet")
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            server.count("clients_connected")
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Pragma", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            seq = 0
            while not server.closed:
                frame = server.next_frame(seq)
                if frame is None:
                    continue
                seq = frame.seq
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(frame.jpeg)}\r\n"
                        f"X-Timestamp: {frame.time:.6f}\r\n\r\n").encode()  # fmt: skip
                self.wfile.write(head + frame.jpeg + b"\r\n")
                self.wfile.flush()
                server.count("parts_sent")
            self.wfile.write(f"--{BOUNDARY}--\r\n".encode())

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            log.debug("mjpeg %s " + format, self.client_address[0], *args)

    return Handler
