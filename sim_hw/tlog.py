"""The .tlog format: each entry an 8-byte big-endian microsecond UTC timestamp
followed by one raw MAVLink frame, as ground stations record them."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pymavlink.dialects.v20 import ardupilotmega as dialect
from pymavlink.generator.mavcrc import x25crc

_STAMP = struct.Struct(">Q")
MAVLINK1_MAGIC = 0xFE
MAVLINK2_MAGIC = 0xFD
# A timestamp outside 2000..2100 is not the start of an entry.
_PLAUSIBLE_US = (946_684_800 * 10**6, 4_102_444_800 * 10**6)


def write_tlog(path: str | Path, entries: Iterable[tuple[float, bytes]]) -> int:
    """Write (UTC seconds, frame bytes) entries; returns how many were written."""
    count = 0
    with open(path, "wb") as out:
        for t, frame in entries:
            out.write(_STAMP.pack(round(t * 1e6)))
            out.write(frame)
            count += 1
    return count


@dataclass(frozen=True)
class Frame:
    """One MAVLink frame of a tlog, as recorded."""

    time: float  # UTC seconds
    raw: bytes  # the whole frame, header to checksum (and signature)
    version: int  # 1 or 2
    sysid: int
    compid: int
    msgid: int


@dataclass
class ReadCounters:
    frames: int = 0
    skipped_bytes: int = 0  # bytes passed over while looking for the next entry
    bad_crc: int = 0
    unknown_message: int = 0  # no CRC_EXTRA known: cannot be checked
    truncated: int = 0  # the file ended inside an entry


def read_tlog(path: str | Path, counters: ReadCounters | None = None) -> Iterator[Frame]:
    """Every well-formed frame of a tlog, in file order.

    What cannot be parsed (a stray byte, a frame with a bad checksum, an
    unknown message id, a truncated tail) is skipped and counted; reading
    resynchronises on the next plausible timestamp and start marker.
    """
    counters = counters if counters is not None else ReadCounters()
    data = Path(path).read_bytes()
    position = 0
    while position + _STAMP.size + 1 <= len(data):
        frame, length = _frame_at(data, position, counters)
        if frame is None:
            position += 1
            counters.skipped_bytes += 1
            continue
        counters.frames += 1
        position += length
        yield frame


def _frame_at(data: bytes, position: int, counters: ReadCounters):
    """(Frame, entry length) at `position`, or (None, 0) when none starts there."""
    (stamp_us,) = _STAMP.unpack_from(data, position)
    if not _PLAUSIBLE_US[0] <= stamp_us <= _PLAUSIBLE_US[1]:
        return None, 0
    start = position + _STAMP.size
    magic = data[start]
    if magic == MAVLINK2_MAGIC:
        header = 10
    elif magic == MAVLINK1_MAGIC:
        header = 6
    else:
        return None, 0
    if start + header > len(data):
        counters.truncated += 1
        return None, 0
    payload_length = data[start + 1]
    signed = magic == MAVLINK2_MAGIC and data[start + 2] & 0x01
    end = start + header + payload_length + 2 + (13 if signed else 0)
    if end > len(data):
        counters.truncated += 1
        return None, 0
    if magic == MAVLINK2_MAGIC:
        sysid, compid = data[start + 5], data[start + 6]
        msgid = int.from_bytes(data[start + 7 : start + 10], "little")
    else:
        sysid, compid, msgid = data[start + 3], data[start + 4], data[start + 5]
    known = dialect.mavlink_map.get(msgid)
    if known is None:
        counters.unknown_message += 1
        return None, 0
    checked = data[start + 1 : start + header + payload_length]
    crc = x25crc(checked)
    crc.accumulate(bytes([known.crc_extra]))
    crc_at = start + header + payload_length
    received = int.from_bytes(data[crc_at : crc_at + 2], "little")
    if crc.crc != received:
        counters.bad_crc += 1
        return None, 0
    frame = Frame(stamp_us / 1e6, bytes(data[start:end]), 2 if magic == MAVLINK2_MAGIC else 1,
                  sysid, compid, msgid)  # fmt: skip
    return frame, end - position
