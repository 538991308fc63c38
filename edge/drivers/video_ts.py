"""Video frames and KLV packets out of a motion-imagery stream, through FFmpeg (PyAV).

Sources are whatever FFmpeg opens: an MPEG transport stream file, UDP
unicast or multicast (`udp://@239.1.2.3:15004`; FFmpeg joins the group),
RTP carrying MPEG-TS, RTSP (`rtsp://...`, interleaved over TCP unless the
URL's options say otherwise), or a container file.

Every data stream is treated as a candidate KLV stream: its packets go
through a `KlvSplitter` of their own, so a PES holding several KLV packets,
or a KLV packet split over several PES, comes out whole, and the cell header
of a synchronous metadata stream is skipped. A packet of a set read here that
is not sound (bad checksum, broken items) is refused there and counted, and
the search for the next packet resumes inside it. Synchronous KLV (stream type
0x15) and asynchronous KLV written with a PES time stamp carry their own
presentation time; asynchronous KLV without one is stamped with the
presentation time of the last video packet before it in the stream (its
time of arrival, which is what ST 1402 associates it with).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np

from edge.drivers.klv import KlvPacket, KlvSplitter, SplitterCounters
from edge.drivers.klv_metadata import packet_problem

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("udp://", "rtp://", "rtsp://", "rtsps://", "srt://", "tcp://", "http://",
                   "https://")  # fmt: skip


@dataclass(frozen=True)
class VideoFrame:
    pts: float  # s on the stream's clock
    image: np.ndarray | None  # BGR; None when the demuxer was asked not to decode


@dataclass(frozen=True)
class KlvUnit:
    pts: float | None  # s on the stream's clock: the PES's own time stamp, if it had one
    arrival_pts: float | None  # the last video frame's time before it
    packet: KlvPacket


@dataclass
class DemuxCounters:
    video_packets: int = 0
    frames: int = 0
    undecodable: int = 0  # video packets the decoder refused: skipped
    data_packets: int = 0
    klv: SplitterCounters = field(default_factory=SplitterCounters)


def open_options(source: str, rtsp_transport: str = "tcp") -> dict[str, str]:
    """FFmpeg options for a live source: keep reading past a full socket buffer (UDP),
    interleave RTSP over TCP (no lost RTP behind a firewall)."""
    if source.startswith(("udp://", "rtp://")):
        return {"overrun_nonfatal": "1", "fifo_size": "278876", "buffer_size": "4194304"}
    if source.startswith(("rtsp://", "rtsps://")):
        return {"rtsp_transport": rtsp_transport}
    return {}


class TsDemuxer:
    """Frames and KLV units of one source, in stream order."""

    def __init__(self, source: str, decode_video: bool = True, timeout_s: float = 5.0,
                 threads: int = 0, options: dict[str, str] | None = None,
                 pixel_format: str = "bgr24",
                 klv_counters: SplitterCounters | None = None):  # fmt: skip
        """`pixel_format`: "bgr24" (colour, OpenCV's order) or "gray" (the luma plane as it
        is decoded, no conversion: a thermal camera's picture). `klv_counters`: where the
        KLV splitting counts (kept across reopenings of a source), else its own."""
        self.source = source
        self.decode_video = decode_video
        self.pixel_format = pixel_format
        self.counters = DemuxCounters(klv=klv_counters or SplitterCounters())
        self.is_file = not source.startswith(NETWORK_SCHEMES)
        merged = open_options(source) | dict(options or {})
        # OSError (or av.error.*, an OSError) when it cannot be opened.
        self._container = av.open(source, options=merged, timeout=(timeout_s, timeout_s))
        video = self._container.streams.video
        self._video = video[0] if video else None
        if self._video is not None:
            self._video.thread_type = "AUTO"
            self._video.codec_context.thread_count = threads
        self._data = {s.index for s in self._container.streams if s.type == "data"}
        for stream in self._container.streams:
            if stream.index not in self._data and stream is not self._video:
                stream.discard = "all"
        self._splitters = {index: KlvSplitter(self.counters.klv, check=packet_problem)
                           for index in self._data}  # fmt: skip
        self._last_video_pts: float | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the video as its stream states it."""
        if self._video is None or not self._video.codec_context.width:
            return None
        return self._video.codec_context.width, self._video.codec_context.height

    def __iter__(self) -> Iterator[VideoFrame | KlvUnit]:
        streams = [s for s in self._container.streams if s.index in self._data]
        if self._video is not None:
            streams.append(self._video)
        for packet in self._container.demux(streams):
            if packet.stream.index in self._data:
                yield from self._klv_units(packet)
            elif packet.size or self.decode_video:  # the flush packet drains the decoder
                yield from self._frames(packet)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> TsDemuxer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _klv_units(self, packet) -> Iterator[KlvUnit]:
        if not packet.size:
            return
        self.counters.data_packets += 1
        pts = None if packet.pts is None else float(packet.pts * packet.time_base)
        for klv in self._splitters[packet.stream.index].feed(bytes(packet), new_unit=True):
            yield KlvUnit(pts, self._last_video_pts, klv)

    def _frames(self, packet) -> Iterator[VideoFrame]:
        if packet.size:
            self.counters.video_packets += 1
        if packet.pts is not None:  # arrival in stream order, not the decoder's output order
            self._last_video_pts = float(packet.pts * packet.time_base)
        if not self.decode_video:
            if packet.pts is not None:
                yield VideoFrame(self._last_video_pts, None)
            return
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as error:  # damaged: the next key frame heals it
            self.counters.undecodable += 1
            log.debug("video packet undecodable source=%s error=%s", self.source, error)
            return
        for frame in frames:
            if frame.pts is None:
                continue
            self.counters.frames += 1
            image = frame.to_ndarray(format=self.pixel_format)
            yield VideoFrame(float(frame.pts * frame.time_base), image)
