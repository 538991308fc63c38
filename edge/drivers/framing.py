"""Bytes to checked MAVLink messages: framing, checksum, signature.

pymavlink decodes and checks each frame (checksum, signature, payload). The
splitting into frames is done here because pymavlink's own parser throws away
the whole claimed length of a frame that fails its checks; after a truncated
frame that can swallow the good frame behind it. Here a failed frame costs
one byte: the search for the next start marker resumes right after the
failed one, so no good frame next to bad bytes is lost.

Signing (MAVLink 2) uses pymavlink's checks: signature, per-stream timestamps
that must increase, new streams at most one minute behind the newest
timestamp. One gap is closed here: pymavlink records a frame's timestamp for
its stream before it checks the signature, so one forged frame with a far
future timestamp would make every genuine frame after it look replayed. The
stream's timestamp is restored when a frame is rejected.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator

from pymavlink.dialects.v20 import ardupilotmega as dialect

from edge.drivers.link_health import MavlinkCounters

log = logging.getLogger(__name__)

MAGIC_V1 = dialect.PROTOCOL_MARKER_V1
MAGIC_V2 = dialect.PROTOCOL_MARKER_V2
SIGNED_FLAG = dialect.MAVLINK_IFLAG_SIGNED
SIGNATURE_LEN = dialect.MAVLINK_SIGNATURE_BLOCK_LEN
SIGNING_EPOCH = 1_420_070_400  # 2015-01-01 UTC; signing timestamps count 10 µs from here
_MARKER = re.compile(rb"[\xfd\xfe]")
_TLOG_STAMP_RANGE = (946_684_800 * 10**6, 4_102_444_800 * 10**6)  # 2000..2100 in µs


class FrameDecoder:
    """Turns received bytes into pymavlink messages, counting what it rejects."""

    def __init__(self, counters: MavlinkCounters, signing_key: bytes | None = None,
                 unsigned_allowed: tuple[str, ...] = ()):  # fmt: skip
        self.counters = counters
        self.mav = dialect.MAVLink(None)
        self._key = signing_key
        self._pending = bytearray()  # a stream's bytes not yet framed
        if signing_key is not None:
            self._enable_signing(signing_key, unsigned_allowed)

    def _enable_signing(self, key: bytes, unsigned_allowed: tuple[str, ...]) -> None:
        if len(key) != 32:
            raise ValueError(f"a MAVLink signing key is 32 bytes, got {len(key)}")
        allowed = {getattr(dialect, f"MAVLINK_MSG_ID_{name}") for name in unsigned_allowed}
        signing = self.mav.signing
        signing.secret_key = key
        signing.allow_unsigned_callback = lambda _mav, msgid: msgid in allowed
        # The spec's local timestamp: never behind our own clock.
        signing.timestamp = int((time.time() - SIGNING_EPOCH) * 1e5)

    def stream(self, data: bytes) -> list:
        """Messages completed by `data` from a byte stream (TCP, serial)."""
        self.counters.bytes_in += len(data)
        self._pending += data
        messages, used = self._split(self._pending, final=False)
        del self._pending[:used]
        return messages

    def datagram(self, data: bytes) -> list:
        """Messages of one self-contained chunk (a UDP datagram, a tlog entry)."""
        self.counters.bytes_in += len(data)
        messages, _ = self._split(data, final=True)
        return messages

    def _split(self, buf, final: bool) -> tuple[list, int]:
        """(messages, bytes used); a stream keeps an incomplete frame for later."""
        counters = self.counters
        messages = []
        pos, end = 0, len(buf)
        while pos < end:
            start = pos if buf[pos] in (MAGIC_V1, MAGIC_V2) else _next_marker(buf, pos)
            if start < 0:
                counters.skipped_bytes += end - pos
                return messages, end
            counters.skipped_bytes += start - pos
            length = _frame_length(buf, start, end)
            if length is None or start + length > end:
                if not final:
                    return messages, start  # the rest of the frame is still on its way
                counters.truncated += 1
                pos = start + 1
                continue
            message = self._decode(bytearray(buf[start : start + length]))
            if message is None:
                pos = start + 1  # resynchronise just after the rejected start marker
                continue
            counters.frames += 1
            messages.append(message)
            pos = start + length
        return messages, end

    def _decode(self, frame: bytearray):
        """The message of one candidate frame, or None (counted) when it is rejected."""
        if frame[0] == MAGIC_V2 and frame[2] & ~SIGNED_FLAG:
            self.counters.malformed += 1  # incompatibility flags we do not understand
            return None
        stream, stamp_before = self._signing_stream(frame)
        try:
            message = self.mav.decode(frame)
        except dialect.MAVError as error:
            self._restore_stream(stream, stamp_before)
            self._count_rejection(frame, error.message)
            return None
        except Exception as error:  # a payload pymavlink cannot unpack must not stop the link
            self._restore_stream(stream, stamp_before)
            self.counters.malformed += 1
            log.debug("undecodable frame skipped error=%r", error)
            return None
        if isinstance(message, dialect.MAVLink_unknown):
            # No CRC_EXTRA, so the checksum cannot be checked: it may be noise.
            self.counters.unknown_message += 1
            return None
        return message

    def _signing_stream(self, frame: bytearray):
        """(stream key, its last timestamp) of a signed frame when signing is on."""
        if self._key is None or frame[0] != MAGIC_V2 or not frame[2] & SIGNED_FLAG:
            return None, None
        stream = (frame[-SIGNATURE_LEN], frame[5], frame[6])  # link id, system, component
        return stream, self.mav.signing.stream_timestamps.get(stream)

    def _restore_stream(self, stream, stamp_before) -> None:
        if stream is None:
            return
        stamps = self.mav.signing.stream_timestamps
        if stamp_before is None:
            stamps.pop(stream, None)
        else:
            stamps[stream] = stamp_before

    def _count_rejection(self, frame: bytearray, reason: str) -> None:
        counters = self.counters
        if "CRC" in reason:
            counters.bad_crc += 1
        elif "signature" in reason:
            self._count_signature_rejection(frame)
        else:
            counters.malformed += 1
            log.debug("malformed frame skipped reason=%r", reason)

    def _count_signature_rejection(self, frame: bytearray) -> None:
        counters = self.counters
        signed = frame[0] == MAGIC_V2 and frame[2] & SIGNED_FLAG
        if not signed:
            counters.unsigned_rejected += 1
        elif not self._signature_matches(frame):
            counters.bad_signature += 1
        else:
            counters.stale_signature += 1  # a good signature with an old timestamp: a replay

    def _signature_matches(self, frame: bytearray) -> bool:
        digest = hashlib.sha256(self._key + bytes(frame[:-6])).digest()
        return digest[:6] == bytes(frame[-6:])

    def heartbeat_frame(self, sysid: int, compid: int) -> bytes:
        """A ground-station HEARTBEAT from us, signed when the link is signed."""
        sender = dialect.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        if self._key is not None:
            sender.signing = self.mav.signing  # one timestamp for the link, as the spec asks
            sender.signing.sign_outgoing = True
        heartbeat = dialect.MAVLink_heartbeat_message(
            dialect.MAV_TYPE_GCS, dialect.MAV_AUTOPILOT_INVALID, 0, 0, dialect.MAV_STATE_ACTIVE, 3
        )
        return bytes(heartbeat.pack(sender))


def _next_marker(buf, pos: int) -> int:
    found = _MARKER.search(buf, pos)
    return found.start() if found else -1


def _frame_length(buf, start: int, end: int) -> int | None:
    """Whole length of the frame starting at `start`, or None while its header is incomplete."""
    if end - start < 3:
        return None
    if buf[start] == MAGIC_V2:
        signature = SIGNATURE_LEN if buf[start + 2] & SIGNED_FLAG else 0
        return dialect.HEADER_LEN_V2 + buf[start + 1] + 2 + signature
    return dialect.HEADER_LEN_V1 + buf[start + 1] + 2


def tlog_entries(data: bytes) -> Iterator[tuple[float, bytes]]:
    """(UTC seconds, frame bytes) of each entry of a .tlog file's contents.

    An entry is an 8-byte big-endian microsecond timestamp and one frame. The
    frame is handed on as recorded, bad or not (the decoder judges it); where
    the next entry does not start where this one's header said, the search for
    a plausible timestamp and start marker resumes just after this entry's start.
    """
    pos, end = 0, len(data)
    while pos + 9 <= end:
        if not _plausible_entry(data, pos):
            pos += 1
            continue
        # A header cut short by the end of the file: hand on what is left.
        length = _frame_length(data, pos + 8, end) or end - pos - 8
        yield int.from_bytes(data[pos : pos + 8], "big") / 1e6, data[pos + 8 : pos + 8 + length]
        following = pos + 8 + length
        pos = following if following >= end or _plausible_entry(data, following) else pos + 1


def _plausible_entry(data: bytes, pos: int) -> bool:
    if pos + 9 > len(data) or data[pos + 8] not in (MAGIC_V1, MAGIC_V2):
        return False
    stamp = int.from_bytes(data[pos : pos + 8], "big")
    return _TLOG_STAMP_RANGE[0] <= stamp <= _TLOG_STAMP_RANGE[1]
