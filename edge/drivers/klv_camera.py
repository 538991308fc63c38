"""A motion-imagery stream with KLV metadata as a camera: frames stamped in UTC, and poses.

`KlvStreamSource` is a `CameraDriver` source (`CameraDriver(config,
opener=KlvCamera().open)`): the driver's thread reads the stream through
`TsDemuxer`, the metadata packets go into a `PoseSeries` (the camera's
`pose_at` for the node) and the frames come out stamped in UTC.

A frame's UTC is its presentation time plus the stream's offset between the
two clocks, measured on the metadata: each packet's Precision Time Stamp
less its presentation time (its own, or its arrival's for asynchronous KLV
without one), the median of the recent ones. A jump of more than a second
(an encoder restarted, a file looped) starts the measurement over. Frames
before the first timed packet have no UTC and are refused (`no_klv_time`).

A frame is handed on once the packet after it has arrived (or the next
frame has), so that the pose at its time is interpolated between two packets
rather than extrapolated from one.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from dataclasses import dataclass, field

from edge.drivers.camera import CameraConfig, SourceEnded, SourceLost, SourceRead
from edge.drivers.klv import SplitterCounters
from edge.drivers.klv_metadata import KlvDecoder, KlvRecord
from edge.drivers.klv_pose import PoseSeries, camera_pose
from edge.drivers.video_ts import KlvUnit, TsDemuxer, VideoFrame
from edge.georef import Pose

log = logging.getLogger(__name__)

CLOCK_WINDOW = 15  # packets whose offsets the median is over
CLOCK_JUMP_S = 1.0


class StreamClock:
    """Presentation time -> UTC, from (presentation time, UTC) pairs of metadata packets."""

    def __init__(self):
        self._offsets: deque[float] = deque(maxlen=CLOCK_WINDOW)
        self.jumps = 0

    def observe(self, pts: float | None, utc: float | None) -> None:
        if pts is None or utc is None:
            return
        offset = utc - pts
        if self._offsets and abs(offset - statistics.median(self._offsets)) > CLOCK_JUMP_S:
            self.jumps += 1
            self._offsets.clear()
        self._offsets.append(offset)

    def utc(self, pts: float) -> float | None:
        return pts + statistics.median(self._offsets) if self._offsets else None


@dataclass
class KlvSourceCounters:
    packets: int = 0
    timed_packets: int = 0  # packets with a time and a pose: in the pose series
    frames_without_time: int = 0
    splitting: SplitterCounters = field(default_factory=SplitterCounters)


class KlvStreamSource:
    def __init__(self, config: CameraConfig, poses: PoseSeries, decoder: KlvDecoder,
                 counters: KlvSourceCounters, clock: StreamClock,
                 pixel_format: str = "bgr24"):  # fmt: skip
        self.poses = poses
        self.decoder = decoder
        self.counters = counters
        self.clock = clock
        try:
            self._demuxer = TsDemuxer(config.source, timeout_s=config.stall_timeout,
                                      pixel_format=pixel_format,
                                      klv_counters=counters.splitting)  # fmt: skip
        except av_errors() as error:
            raise OSError(f"cannot open {config.source}: {error}") from error
        self.is_file = self._demuxer.is_file
        self._units = iter(self._demuxer)
        self._held: VideoFrame | None = None
        self._first_pts: float | None = None
        self._first_monotonic = 0.0
        self._last_pts = 0.0

    def read(self) -> SourceRead:
        while True:
            try:
                unit = next(self._units)
            except StopIteration:
                if self._held is not None:
                    frame, self._held = self._held, None
                    return self._stamped(frame)
                if self.is_file:
                    raise SourceEnded() from None
                raise SourceLost("stream ended") from None
            except av_errors() as error:
                raise SourceLost(f"{type(error).__name__}: {error}",
                                 stalled="timed out" in str(error).lower()) from error  # fmt: skip
            if isinstance(unit, KlvUnit):
                self._take_metadata(unit)
                if self._held is not None:
                    frame, self._held = self._held, None
                    return self._stamped(frame)
            elif self._held is None:
                self._held = unit
            else:
                frame, self._held = self._held, unit
                return self._stamped(frame)

    def due_in(self) -> float:
        """s until the last frame read is due, at the file's own spacing from its first."""
        if self._first_pts is None:
            return 0.0
        due = self._first_monotonic + (self._last_pts - self._first_pts)
        return max(0.0, due - time.monotonic())

    def close(self) -> None:
        self._demuxer.close()

    def _take_metadata(self, unit: KlvUnit) -> None:
        self.counters.packets += 1
        record = self.decoder.decode(unit.packet)
        if record is None:
            return
        self.clock.observe(unit.pts if unit.pts is not None else unit.arrival_pts, record.time)
        if self.poses.add(record):
            self.counters.timed_packets += 1

    def _stamped(self, frame: VideoFrame) -> SourceRead:
        if self._first_pts is None:
            self._first_pts, self._first_monotonic = frame.pts, time.monotonic()
        self._last_pts = frame.pts
        utc = self.clock.utc(frame.pts)
        if utc is None:
            self.counters.frames_without_time += 1
            return SourceRead(None, None, "no_klv_time")
        return SourceRead(frame.image, utc)


def av_errors() -> tuple[type[Exception], ...]:
    """What FFmpeg raises through PyAV for a source that fails (its errors are OSErrors)."""
    import av

    return (OSError, av.error.FFmpegError)


class KlvCamera:
    """One KLV stream's shared state: the poses its metadata gives, its counters, and the
    opener a `CameraDriver` calls (again after each reconnect)."""

    def __init__(self, decoder: KlvDecoder | None = None, poses: PoseSeries | None = None,
                 pixel_format: str = "bgr24"):  # fmt: skip
        """`pixel_format`: "gray" for a thermal camera (white-hot luma, no colour)."""
        self.pixel_format = pixel_format
        self.decoder = decoder or KlvDecoder()
        self.poses = poses or PoseSeries()
        self.counters = KlvSourceCounters()
        self.clock = StreamClock()
        self.last_record: KlvRecord | None = None  # that of the last pose asked for

    def open(self, config: CameraConfig) -> KlvStreamSource:
        return KlvStreamSource(config, self.poses, self.decoder, self.counters, self.clock,
                               self.pixel_format)  # fmt: skip

    def refusals(self) -> dict[str, int]:
        """Metadata packets refused so far, by reason (checksum, framing, garbage)."""
        decoder = self.decoder.counters
        counts = dict(self.counters.splitting.refused)
        for reason, count in (("bad_checksum", decoder.st0601.bad_checksum),
                              ("malformed", decoder.st0601.malformed + decoder.eg0104.malformed),
                              ("other_set", decoder.other_sets)):  # fmt: skip
            counts[reason] = counts.get(reason, 0) + count
        return counts

    def pose_at(self, t: float) -> Pose:
        """The camera's pose at t (LookupError when the metadata has none near t)."""
        record = self.poses.record_at(t)
        pose = camera_pose(record)
        self.last_record = record
        return pose
