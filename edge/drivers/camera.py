"""Camera frame source: a video file, RTSP, HTTP MJPEG or a V4L2 device, newest frame first.

`CameraDriver` runs one reader thread per camera. It opens the source, reads
frames as fast as they come (a live stream left unread queues up inside the
network stack and FFmpeg, and its frames grow stale), checks and stamps each
one, and keeps only the newest: a consumer that falls behind gets the latest
frame and the ones it missed are counted as dropped, never queued. When the
stream fails or stalls the driver reopens it with back-off.

Sources:
- HTTP(S) serving `multipart/x-mixed-replace` (MJPEG, as IP cameras and
  `sim_hw.camera.mjpeg` do) is read part by part here: FFmpeg ends the whole stream
  at the first undecodable part and hides the parts' headers, where a bad part
  should only be counted and skipped, and where `X-Timestamp` gives each
  frame's UTC time.
- Anything else goes to `cv2.VideoCapture`: files, RTSP, other HTTP video,
  `/dev/video*` or a device index ("0").

Timestamps (UTC seconds), best first: the part's `X-Timestamp`; for a file its
sidecar `VIDEO.frames.jsonl` (one JSON object with "time" per frame, in frame
order); else the time of arrival less the configured latency. A file without
a sidecar keeps its own frame spacing: the first frame's arrival plus the
container's position.

Bad frames are counted by reason and skipped: empty, undecodable (corrupt),
of another size than the stream's, black, saturated or flat (a thermal
camera's shutter frame).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

PACINGS = ("realtime", "every")
BLACK_LEVEL = 8 / 255  # fraction of full scale: a frame whose bright end is below is black
SATURATED_LEVEL = 247 / 255  # ... whose dark end is above is saturated
# Sensor levels: a frame whose whole range is narrower is flat. A 14-bit thermal core
# in a cold, even scene spans a few hundred counts, a shutter frame a few.
FLAT_LEVELS = {np.dtype(np.uint8): 2, np.dtype(np.uint16): 16}
FPS_WINDOW = 30  # frames the frame rate is measured over
MJPEG_TYPE = "multipart/x-mixed-replace"
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class CameraConfig:
    source: str  # file path, rtsp://..., http(s)://..., /dev/videoN or a device index ("0")
    latency: float = 0.0  # s from exposure to arrival: taken off arrival times
    frame_size: tuple[int, int] | None = None  # (width, height); None: the first good frame's
    reconnect_min: float = 0.5  # s, first back-off
    reconnect_max: float = 10.0  # s, longest back-off
    stall_timeout: float = 5.0  # s without a frame before a live source is reopened
    pacing: str = "realtime"  # files: "realtime" plays at the frame times, "every" drops none
    loop: bool = False  # a file starts over at its end (and so do its sidecar's times)

    def __post_init__(self):
        if self.pacing not in PACINGS:
            raise ValueError(f"pacing {self.pacing!r} is not one of {PACINGS}")
        if not (self.latency >= 0 and self.stall_timeout > 0
                and 0 < self.reconnect_min <= self.reconnect_max):  # fmt: skip
            raise ValueError(f"CameraConfig: bad latency, timeout or back-off: {self}")


@dataclass(frozen=True)
class Frame:
    time: float  # UTC s of exposure, as well as known
    image: np.ndarray
    sequence: int  # accepted frames since the driver started, from 1
    source_time: bool  # the time came from the source, not from arrival less latency


@dataclass
class CameraCounters:
    frames_read: int = 0  # decoded or not
    frames_accepted: int = 0
    frames_delivered: int = 0  # handed to the consumer
    dropped: int = 0  # accepted, then replaced by a newer frame before the consumer took it
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> frames
    connects: int = 0
    reconnects: int = 0  # connects after the first
    connect_failures: int = 0
    disconnects: int = 0  # a source that failed after opening
    stalls: int = 0  # of those, failures by silence
    errors: int = 0  # of those, failures nobody foresaw (logged with their traceback)


@dataclass(frozen=True)
class CameraStatus:
    source: str
    connected: bool
    ended: bool  # a file played to its end
    fps: float  # accepted frames per second, recently
    pending: int  # accepted frames waiting for the consumer: 0 or 1
    counters: CameraCounters


class SourceLost(Exception):
    """The source failed or fell silent; `stalled` says which."""

    def __init__(self, message: str, stalled: bool = False):
        super().__init__(message)
        self.stalled = stalled


class SourceEnded(Exception):
    """A file has no more frames."""


@dataclass(frozen=True)
class _Read:
    """One frame as a source gives it: an image or why there is none, and its source time."""

    image: np.ndarray | None
    source_time: float | None = None
    problem: str | None = None


class CameraDriver:
    """Reads one camera on a thread; `latest()` hands the newest frame to one consumer."""

    def __init__(self, config: CameraConfig):
        self.config = config
        self.counters = CameraCounters()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: Frame | None = None
        self._sequence = 0
        self._size: tuple[int, int] | None = config.frame_size
        self._arrivals: deque[float] = deque(maxlen=FPS_WINDOW)
        self._connected = False
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CameraDriver:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera {self.config.source}",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> CameraDriver:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def latest(self, timeout: float | None = 0.0) -> Frame | None:
        """The newest frame not yet handed out; None after `timeout` s (None: no limit) or once
        stopped or ended. It does not wait by default: the node's loop serves every camera
        and its publishing in turn, and one silent camera must not hold up the rest."""
        with self._changed:
            ready = self._changed.wait_for(
                lambda: self._pending is not None or self._stop.is_set() or self._ended, timeout)
            if not ready or self._pending is None:
                return None
            frame, self._pending = self._pending, None
            self.counters.frames_delivered += 1
            self._changed.notify_all()  # a file paced "every" waits for this
            return frame

    def status(self) -> CameraStatus:
        with self._lock:
            counters = replace(self.counters, rejected=dict(self.counters.rejected))
            return CameraStatus(self.config.source, self._connected, self._ended, self._fps(),
                                int(self._pending is not None), counters)  # fmt: skip

    def metrics(self) -> dict[str, float]:
        """Prometheus-style name -> value: the counters (rejections by reason), then gauges."""
        status = self.status()
        values = {f"camera_{name}_total": float(value)
                  for name, value in vars(status.counters).items() if name != "rejected"}
        values |= {f'camera_rejected_total{{reason="{reason}"}}': float(count)
                   for reason, count in status.counters.rejected.items()}
        values |= {"camera_connected": float(status.connected), "camera_fps": status.fps,
                   "camera_pending_frames": float(status.pending)}
        return values  # fmt: skip

    # --- the reader thread ---------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.config.reconnect_min
        while not self._stop.is_set():
            source = self._open()
            if source is not None:
                try:
                    if self._pump(source):
                        backoff = self.config.reconnect_min  # it worked for a while: retry soon
                except SourceEnded:
                    if not self.config.loop:
                        self._finish()
                        return
                    backoff = 0.0
                finally:
                    self._set_connected(False)
                    source.close()
            if self._stop.wait(backoff):
                break
            backoff = min(max(2 * backoff, self.config.reconnect_min), self.config.reconnect_max)

    def _open(self):
        try:
            source = open_source(self.config)
        except Exception as error:  # refused, unreachable, not found, not a video, bad URL
            self._count("connect_failures")
            log.warning("camera connect failed source=%s error=%s", self.config.source, error)
            return None
        with self._lock:
            self.counters.connects += 1
            if self.counters.connects > 1:
                self.counters.reconnects += 1
            self._connected = True
            self._size = self.config.frame_size  # a camera may come back at another size
        log.info("camera connected source=%s kind=%s", self.config.source, type(source).__name__)
        return source

    def _pump(self, source) -> bool:
        """Read until the source fails or ends or the driver stops; True if a frame came."""
        got_any = False
        while not self._stop.is_set():
            try:
                read = source.read()
                arrival = time.time()
                self._count("frames_read")
                problem = read.problem or self._check(read.image)
            except SourceLost as error:
                self._count("disconnects")
                if error.stalled:
                    self._count("stalls")
                log.warning("camera lost source=%s stalled=%s error=%s",
                            self.config.source, error.stalled, error)  # fmt: skip
                return got_any
            except SourceEnded:
                raise
            except Exception:  # an OpenCV or decoder failure: reopen rather than die
                self._count("disconnects")
                self._count("errors")
                log.exception("camera read failed source=%s", self.config.source)
                return got_any
            if problem is not None:
                self._reject(problem)
                continue
            got_any = True
            if source.is_file and self.config.pacing == "realtime":
                self._stop.wait(source.due_in())  # the file's own frame spacing
            self._publish(read, arrival)
            if source.is_file and self.config.pacing == "every":
                self._wait_taken()
        return got_any

    def _check(self, image: np.ndarray | None) -> str | None:
        problem = frame_problem(image, self._size)
        if problem is None and self._size is None:
            self._size = (image.shape[1], image.shape[0])  # the stream's size from now on
        return problem

    def _publish(self, read: _Read, arrival: float) -> None:
        stamped = read.source_time is not None
        stamp = read.source_time if stamped else arrival - self.config.latency
        with self._changed:
            self._sequence += 1
            if self._pending is not None:
                self.counters.dropped += 1
            self._pending = Frame(stamp, read.image, self._sequence, stamped)
            self.counters.frames_accepted += 1
            self._arrivals.append(time.monotonic())
            self._changed.notify_all()

    def _wait_taken(self) -> None:
        """A file paced "every" reads on only once the consumer has its frame: none dropped."""
        with self._changed:
            self._changed.wait_for(lambda: self._pending is None or self._stop.is_set())

    def _reject(self, reason: str) -> None:
        with self._lock:
            rejected = self.counters.rejected
            rejected[reason] = rejected.get(reason, 0) + 1
            count = rejected[reason]
        if count == 1 or count % 100 == 0:  # a camera sending only bad frames must not flood
            log.warning("camera frame rejected source=%s reason=%s count=%d",
                        self.config.source, reason, count)  # fmt: skip

    def _finish(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()
        log.info("camera file ended source=%s frames=%d", self.config.source,
                 self.counters.frames_accepted)  # fmt: skip

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.counters, name, getattr(self.counters, name) + 1)

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected

    def _fps(self) -> float:
        arrivals = self._arrivals
        if len(arrivals) < 2 or time.monotonic() - arrivals[-1] > 2.0:
            return 0.0  # too few frames, or none lately: no rate to speak of
        return (len(arrivals) - 1) / max(arrivals[-1] - arrivals[0], 1e-9)


def frame_problem(image: np.ndarray | None, size: tuple[int, int] | None) -> str | None:
    """Why a decoded frame is unusable, or None: empty, malformed, wrong_size, black, ..."""
    if image is None or image.size == 0:
        return "empty"
    if image.ndim not in (2, 3) or image.dtype not in (np.uint8, np.uint16):
        return "malformed"
    if size is not None and (image.shape[1], image.shape[0]) != size:
        return "wrong_size"
    full_scale = float(np.iinfo(image.dtype).max)
    # Percentiles of a sparse sample: one dead or hot pixel does not make a frame usable.
    low, high = np.percentile(image[::4, ::4], [0.5, 99.5])
    if high <= BLACK_LEVEL * full_scale:
        return "black"
    if low >= SATURATED_LEVEL * full_scale:
        return "saturated"
    if high - low < FLAT_LEVELS[image.dtype]:
        return "flat"
    return None


def open_source(config: CameraConfig):
    """The source of `config`: an MJPEG reader for multipart HTTP, else OpenCV. OSError if none."""
    if config.source.startswith(("http://", "https://")):
        response = urllib.request.urlopen(config.source, timeout=config.stall_timeout)
        if response.headers.get_content_type() == MJPEG_TYPE:
            return MjpegSource(response, config.stall_timeout)
        response.close()  # some other video over HTTP: FFmpeg's to read
    return OpenCvSource(config)


class MjpegSource:
    """Parts of a multipart/x-mixed-replace HTTP response, decoded one by one."""

    is_file = False

    def __init__(self, response, stall_timeout: float):
        boundary = response.headers.get_param("boundary")
        if not boundary:
            response.close()
            raise OSError("multipart response without a boundary")
        self._response = response
        self._boundary = b"--" + boundary.strip('"').encode()
        self._stall_timeout = stall_timeout
        self._after_boundary = False  # a part without a length ends where the next begins

    def read(self) -> _Read:
        try:
            headers = self._part_headers()
            body = self._part_body(headers)
        except TimeoutError as error:
            raise SourceLost(f"no data for {self._stall_timeout} s", stalled=True) from error
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise SourceLost(f"{type(error).__name__}: {error}") from error
        return _decode_jpeg(body, _timestamp(headers))

    def close(self) -> None:
        self._response.close()

    def _line(self) -> bytes:
        line = self._response.readline()
        if not line:
            raise SourceLost("stream closed by the server")
        return line

    def _is_boundary(self, line: bytes) -> bool:
        line = line.rstrip(b"\r\n")
        if line == self._boundary + b"--":
            raise SourceLost("stream ended by the server")
        return line == self._boundary

    def _part_headers(self) -> dict[str, str]:
        """Skip to the next boundary; the part's headers, names lower-cased."""
        if not self._after_boundary:
            while not self._is_boundary(self._line()):
                pass
        self._after_boundary = False
        headers = {}
        while line := self._line().rstrip(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers

    def _part_body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            length = int(headers["content-length"])
            body = self._response.read(length)
            if len(body) < length:
                raise SourceLost("stream closed inside a part")
            return body
        lines = []
        while not self._is_boundary(line := self._line()):
            lines.append(line)
        self._after_boundary = True
        return b"".join(lines).removesuffix(b"\r\n")


def _timestamp(headers: dict[str, str]) -> float | None:
    try:
        return float(headers["x-timestamp"])
    except (KeyError, ValueError):
        return None


def _decode_jpeg(body: bytes, source_time: float | None) -> _Read:
    if not body:
        return _Read(None, source_time, "empty")
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return _Read(None, source_time, "corrupt")
    return _Read(image, source_time)


class OpenCvSource:
    """Frames of cv2.VideoCapture; for a file, its sidecar's times and its pace."""

    def __init__(self, config: CameraConfig):
        target: str | int = int(config.source) if config.source.isdigit() else config.source
        self.is_file = isinstance(target, str) and Path(target).is_file()
        self._stall_timeout = config.stall_timeout
        params = []
        if isinstance(target, str) and target.startswith(NETWORK_SCHEMES):
            timeout_ms = int(config.stall_timeout * 1000)  # FFmpeg's own wait, else unbounded
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]  # fmt: skip
        self._capture = cv2.VideoCapture(target, cv2.CAP_ANY, params)
        if not self._capture.isOpened():
            self._capture.release()
            raise OSError(f"OpenCV cannot open {config.source}")
        self._sidecar = read_sidecar(Path(config.source)) if self.is_file else None
        self._index = -1
        self._media = 0.0  # s: the last frame's time in the file
        self._first_media: float | None = None
        self._first_wall = 0.0  # UTC s and monotonic s of the first frame's arrival
        self._first_monotonic = 0.0

    def read(self) -> _Read:
        began = time.monotonic()
        ok, image = self._capture.read()
        if not ok:
            if self.is_file:
                raise SourceEnded()
            waited = time.monotonic() - began
            raise SourceLost(f"no frame (waited {waited:.1f} s)",
                             stalled=waited >= 0.9 * self._stall_timeout)  # fmt: skip
        if not self.is_file:
            return _Read(image)
        self._index += 1
        return _Read(image, self._file_time())

    def due_in(self) -> float:
        """s until the last frame read is due, at the file's own spacing from its first."""
        if self._first_media is None:
            return 0.0
        due = self._first_monotonic + (self._media - self._first_media)
        return max(0.0, due - time.monotonic())

    def close(self) -> None:
        self._capture.release()

    def _file_time(self) -> float:
        """The sidecar's time of this frame, else the first arrival plus the container's clock."""
        stamped = self._sidecar is not None and self._index < len(self._sidecar)
        self._media = (self._sidecar[self._index] if stamped
                       else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)  # fmt: skip
        if self._first_media is None:
            self._first_media = self._media
            self._first_wall, self._first_monotonic = time.time(), time.monotonic()
        if stamped:
            return self._media
        return self._first_wall + (self._media - self._first_media)


def read_sidecar(video: Path) -> list[float] | None:
    """Frame times of `VIDEO.frames.jsonl` beside the video; None when there is none.

    A line that is not a JSON object with a numeric "time" ends the list there,
    so that later frames are not paired with the wrong times.
    """
    path = video.with_name(video.name + ".frames.jsonl")
    if not path.is_file():
        return None
    times = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            try:
                times.append(float(json.loads(line)["time"]))
            except (ValueError, KeyError, TypeError):
                log.warning("camera sidecar line unreadable path=%s line=%d: times end here",
                            path, number)  # fmt: skip
                break
    return times
